"""Parametric bootstrap: refits reuse the design and agree with fresh fits.

Reference: lme4's bootMer on the HSB null model (benchmarks/lme4_timings.json, written by
benchmarks/lme4_bench.R: ``bootMer(m0, function(m) {v <- as.data.frame(VarCorr(m))$vcov;
v[1]/sum(v)}, nsim = 1000, seed = 1)``) gave the percentile interval 0.14549 to 0.21610.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.toolkit.bootstrap import refit, simulate_response
from mlm.engine.pls import PLSProblem


@pytest.fixture(scope="module")
def null_fit():
    return mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))


@pytest.fixture(scope="module")
def sleep_fit():
    return mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))


def icc(f):
    v = f.varcorr["vcov"]
    return v.iloc[0] / v.sum()


@pytest.mark.parametrize("formula, data", [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("strength ~ 1 + (1 | batch/cask)", "pastes"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
])
def test_with_response_equals_a_fresh_problem(formula, data):
    # Identity: swapping the outcome must give exactly the problem built from scratch.
    fit = mlm.lmer(formula, mlm.load_dataset(data))
    y = simulate_response(fit, np.random.default_rng(3))
    d = fit.design
    fresh = PLSProblem(y, d.X, d.pls_terms(), reml=True)
    swapped = fit.problem.with_response(y)
    for theta in (fit.theta, fit.theta * 0.5 + 0.1):
        assert swapped.deviance(theta) == pytest.approx(fresh.deviance(theta), rel=1e-12)
    assert fit.problem.deviance(fit.theta) == pytest.approx(fit.deviance, rel=1e-12)  # unchanged


def test_refit_equals_lmer_on_the_new_outcome(sleep_fit):
    y = simulate_response(sleep_fit, np.random.default_rng(7))
    data = mlm.load_dataset("sleepstudy").assign(Reaction=y)
    again = mlm.lmer("Reaction ~ Days + (Days | Subject)", data)
    quick = refit(sleep_fit, y)
    assert quick.loglik == pytest.approx(again.loglik, abs=1e-6)
    np.testing.assert_allclose(quick.fixef, again.fixef, rtol=1e-6)
    np.testing.assert_allclose(quick.varcorr["vcov"], again.varcorr["vcov"], rtol=1e-4)


def test_simulated_outcomes_have_the_fitted_moments(sleep_fit):
    rng = np.random.default_rng(11)
    ys = np.stack([simulate_response(sleep_fit, rng) for _ in range(400)])
    # E(y*) = X beta: the mean over draws is within Monte Carlo error of it
    expected = sleep_fit.design.X @ sleep_fit.solution.beta
    se = ys.std(axis=0) / np.sqrt(len(ys))
    assert np.mean(np.abs(ys.mean(axis=0) - expected) < 4 * se) > 0.99
    # Var(y*_i) = z_i' Sigma z_i + sigma^2 for every row
    b = sleep_fit.design.blocks[0]
    C = sleep_fit.solution.covariances()[0]
    var = np.einsum("ij,jk,ik->i", b.Z, C, b.Z) + sleep_fit.solution.sigma2
    np.testing.assert_allclose(ys.var(axis=0, ddof=1), var, rtol=0.25)


def test_bootstrap_result_shape_and_reproducibility(sleep_fit):
    a = mlm.bootstrap(sleep_fit, lambda f: f.fixef, nsim=20, seed=5)
    b = mlm.bootstrap(sleep_fit, lambda f: f.fixef, nsim=20, seed=5)
    assert list(a.replicates.columns) == ["(Intercept)", "Days"]
    assert a.replicates.shape == (20, 2) and a.failures == 0
    pd.testing.assert_frame_equal(a.replicates, b.replicates)
    ci = a.percentile_interval(0.9)
    assert list(ci.columns) == ["estimate", "conf_low", "conf_high"]
    assert (ci["conf_low"] <= ci["conf_high"]).all()
    assert "Parametric bootstrap: 20 replicates" in str(a)


@pytest.mark.parametrize("kwargs, message", [
    (dict(statistic=5), "statistic must be a function"),
    (dict(statistic=icc, nsim=0), "nsim must be a positive"),
])
def test_bootstrap_errors(null_fit, kwargs, message):
    with pytest.raises(mlm.MLMError, match=message):
        mlm.bootstrap(null_fit, **kwargs)


def test_bootstrap_needs_a_fit():
    with pytest.raises(mlm.MLMError, match="fit must be a fitted model"):
        mlm.bootstrap("mathach ~ 1 + (1 | school)", icc)


@pytest.mark.slow
def test_icc_interval_within_sampling_error_of_bootmer(null_fit):
    ref = json.loads((Path(__file__).parents[1] / "benchmarks" / "lme4_timings.json").read_text())
    boot = mlm.bootstrap(null_fit, icc, nsim=1000, seed=2)
    ci = boot.percentile_interval(0.95).iloc[0]
    # Two independent 1000-draw percentile estimates of a 2.5% / 97.5% quantile differ by
    # sampling error. bootMer's interval width implies a bootstrap SD of the ICC of
    # (0.21610 - 0.14549) / 3.92 = 0.018; the SE of an extreme quantile from 1000 draws is
    # then about 0.004, so 0.01 is about 2 standard errors of the difference.
    assert ci["conf_low"] == pytest.approx(ref["bootmer_icc_percentile_2.5"], abs=0.01)
    assert ci["conf_high"] == pytest.approx(ref["bootmer_icc_percentile_97.5"], abs=0.01)
    assert boot.replicates["statistic"].std() == pytest.approx(0.018, abs=0.004)


@pytest.mark.parametrize("statistic, message", [
    (lambda f: f.varcorr, r"statistic must return numbers .*DataFrame with columns"),
    (lambda f: f.fixef["no_such_term"], r"statistic\(fit\) failed on the fitted model itself \(KeyError"),
    (lambda f: np.ones((2, 2)), r"flat sequence of numbers; .*shape \(2, 2\)"),
])
def test_a_statistic_that_does_not_give_numbers_is_named(statistic, message):
    fit = mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    with pytest.raises(mlm.MLMError, match=message):
        mlm.bootstrap(fit, statistic, nsim=2, seed=1, progress=False)


@pytest.mark.parametrize("formula,data", [
    ("mathach ~ 1 + (1 | school)", "hsb"),
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("score ~ gcsescore + (1 | lea/school)", "chem97"),
    ("attain ~ verbal + sex + (1 | primary) + (1 | second)", "scotssec"),
])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_warm_refit_reaches_the_cold_fits_optimum(formula, data, seed):
    # Refits start Newton steps at the fit's estimate (mlm.engine.optimize._warm_newton),
    # a fresh fit at moment estimates; both must reach the same optimum:
    # both stop where the exact gradient vanishes, to the optimiser's tolerance.
    frame = mlm.load_dataset(data)
    fit = mlm.lmer(formula, frame)
    y = simulate_response(fit, np.random.default_rng(seed))
    cold = mlm.lmer(formula, frame.assign(**{formula.split(" ~")[0]: y}))
    warm = refit(fit, y)
    assert warm.converged
    assert warm.loglik == pytest.approx(cold.loglik, abs=1e-7)
    np.testing.assert_allclose(warm.theta, cold.theta, rtol=1e-5, atol=1e-6)
