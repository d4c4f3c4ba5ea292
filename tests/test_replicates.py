"""Replicates are identical serially, on several cores (joblib) and on a Dask cluster.

Each replicate draws from its own child of numpy's SeedSequence(seed), so the worker that
runs it cannot change its numbers (issue 15).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import MLMError
from mlm.simulation.replicates import RefitTemplate, replicate_seeds, run_replicates


@pytest.fixture(scope="module")
def crt_fit():
    d = mlm.simulate_dataset(16, 8, icc=0.25, fixed={"treat": 0.4}, level2=["treat"],
                             binary=["treat"], seed=7)
    return mlm.lmer("y ~ treat + (1 | group)", d)


def fixef_and_sd(f):
    return pd.concat([f.fixef, pd.Series({"sd": float(np.sqrt(f.varcorr["vcov"].iloc[0]))})])


def test_power_is_identical_serially_and_on_two_cores(crt_fit):
    kw = dict(effect=0.4, n_groups=[8, 24], nsim=40, seed=11, progress=False)
    serial = mlm.power(crt_fit, "treat", n_jobs=1, **kw)
    parallel = mlm.power(crt_fit, "treat", n_jobs=2, **kw)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_bootstrap_is_identical_serially_and_on_two_cores(crt_fit):
    serial = mlm.bootstrap(crt_fit, fixef_and_sd, nsim=30, seed=3, progress=False)
    parallel = mlm.bootstrap(crt_fit, fixef_and_sd, nsim=30, seed=3, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial.replicates, parallel.replicates, check_exact=True)
    assert serial.failures == parallel.failures == 0


def test_batches_do_not_change_the_draws():
    """Replicate i uses child i however the replicates are split into batches."""
    seeds = replicate_seeds(5, 7)

    def draw(payload, rng):
        return rng.standard_normal(2)

    serial = run_replicates(draw, None, seeds, n_jobs=1, progress=False)
    again = run_replicates(draw, None, replicate_seeds(5, 7)[:3], n_jobs=1, progress=False)
    np.testing.assert_array_equal(np.array(serial[:3]), np.array(again))
    threads = _with_backend("threading", lambda: run_replicates(draw, None, seeds, n_jobs=3,
                                                                  progress=False))
    np.testing.assert_array_equal(np.array(serial), np.array(threads))


def _with_backend(backend, f):
    import joblib

    with joblib.parallel_config(backend=backend):
        return f()


def test_template_pickles_without_patsy(crt_fit):
    template = RefitTemplate.from_fit(crt_fit)
    clone = pickle.loads(pickle.dumps(template))
    assert clone.design.x_info is None
    assert template.design.x_info is not None        # the original keeps its patsy objects
    y = template.simulate(np.random.default_rng(1))
    np.testing.assert_array_equal(clone.simulate(np.random.default_rng(1)), y)
    assert clone.refit(y).loglik == template.refit(y).loglik


def test_progress_bar_can_be_turned_off(crt_fit, capsys):
    mlm.power(crt_fit, "treat", effect=0.4, nsim=5, seed=1, progress=False)
    assert capsys.readouterr().err == ""
    mlm.power(crt_fit, "treat", effect=0.4, nsim=5, seed=1, progress=True)
    assert "power, 16 groups" in capsys.readouterr().err


def test_bootstrap_rejects_bad_n_jobs(crt_fit):
    with pytest.raises(MLMError, match=r"n_jobs must be a whole number other than 0"):
        mlm.bootstrap(crt_fit, fixef_and_sd, nsim=3, n_jobs=0)
    with pytest.raises(MLMError, match=r"nsim must be a positive whole number of replicates"):
        mlm.bootstrap(crt_fit, fixef_and_sd, nsim=-2)


def test_dask_cluster_gives_the_serial_answer(crt_fit):
    pytest.importorskip("distributed", reason="dask.distributed is not installed "
                        "(pip install 'mlm[distributed]')")
    import joblib
    from dask.distributed import Client, LocalCluster, get_task_stream

    kw = dict(effect=0.4, n_groups=[8, 24], nsim=24, seed=11, progress=False)
    serial = mlm.power(crt_fit, "treat", **kw)
    boot_serial = mlm.bootstrap(crt_fit, fixef_and_sd, nsim=12, seed=3, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), get_task_stream(client) as tasks:
            on_dask = mlm.power(crt_fit, "treat", n_jobs=-1, **kw)
            boot_dask = mlm.bootstrap(crt_fit, fixef_and_sd, nsim=12, seed=3, n_jobs=-1,
                                      progress=False)
    assert len(tasks.data) > 0                      # the replicates ran on the cluster
    pd.testing.assert_frame_equal(serial, on_dask, check_exact=True)
    pd.testing.assert_frame_equal(boot_serial.replicates, boot_dask.replicates, check_exact=True)


def test_confint_bootstrap_is_identical_on_two_cores():
    fit = mlm.lmer("Reaction ~ Days + (1 | Subject)", mlm.load_dataset("sleepstudy"))
    serial = mlm.confint(fit, method="bootstrap", nsim=20, seed=4, progress=False)
    parallel = mlm.confint(fit, method="bootstrap", nsim=20, seed=4, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
