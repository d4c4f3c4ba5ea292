"""Power by simulation against the analytic power of a balanced cluster-randomised trial.

Raudenbush (1997, Psychological Methods 2, 173-185): with J clusters of n, half treated,
the test of the treatment effect delta is a t with J - 2 df and noncentrality
delta / sqrt(4 (tau^2 + sigma^2 / n) / J). When the REML estimate of tau^2 is interior,
the Wald statistic of the mixed model equals the t statistic on the cluster means, so the
simulated power must match P(|T| > crit) for T ~ noncentral t(J - 2, ncp), with ``crit``
the critical value of the test the fit reports (``fit.coefficients``: normal while its
df are infinite, t(J - 2) under Satterthwaite or Kenward-Roger, which give J - 2 exactly
in this balanced design). tau^2 and sigma^2 are the pilot fit's estimates: the values the
simulation draws from.

Monte Carlo bound: |simulated - analytic| <= 4 sqrt(p (1 - p) / nsim) + s / nsim, with s
the singular refits (where tau^2 is estimated as 0 and the Wald statistic is no longer the
cluster-means t, at most s replicates can differ). A false alarm has probability about 6e-5
per comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm
from mlm.errors import MLMError
from mlm.simulation.power import resize_design

ALPHA = 0.05


@pytest.fixture(scope="module")
def crt_fit():
    # 20 clusters of 10, treatment alternating over clusters (so the first J are balanced
    # for even J); the pilot estimates are tau^2 = 0.324, sigma^2 = 0.707.
    d = mlm.simulate_dataset(20, 10, icc=0.3, fixed={"treat": 0.4}, level2=["treat"],
                             binary=["treat"], seed=4)
    return mlm.lmer("y ~ treat + (1 | group)", d)


def analytic_power(fit, J, n, delta):
    v = fit.varcorr["vcov"].to_numpy()
    tau2, sigma2 = v[0], v[1]
    ncp = delta / np.sqrt(4 * (tau2 + sigma2 / n) / J)
    df_fit = fit.coefficients.loc["treat", "df"]
    if np.isinf(df_fit):
        crit = stats.norm.ppf(1 - ALPHA / 2)
    else:
        # the fit's own df method must give J - 2 in this balanced design
        assert df_fit == pytest.approx(fit.ngroups["group"] - 2, rel=1e-3)
        crit = stats.t.ppf(1 - ALPHA / 2, J - 2)
    return stats.nct.sf(crit, J - 2, ncp) + stats.nct.cdf(-crit, J - 2, ncp)


def check_against_analytic(fit, out, delta):
    for _, row in out.iterrows():
        J, n = int(row["n_groups"]), int(row["group_size"])
        p = analytic_power(fit, J, n, delta)
        n_ok = row["nsim"] - row["failures"]
        bound = 4 * np.sqrt(p * (1 - p) / n_ok) + row["singular"] / n_ok
        assert abs(row["power"] - p) <= bound, (J, n, row["power"], p, bound)
        assert row["conf_low"] <= row["power"] <= row["conf_high"]


def test_power_of_a_cluster_randomised_trial(crt_fit):
    delta = 0.35
    out = mlm.power(crt_fit, "treat", effect=delta, n_groups=[10, 30], nsim=300, seed=1,
                    progress=False)
    assert list(out.columns) == ["n_groups", "group_size", "power", "conf_low", "conf_high",
                                 "nsim", "failures", "singular"]
    assert out["n_groups"].tolist() == [10, 30] and out["group_size"].tolist() == [10.0, 10.0]
    assert out["failures"].sum() == 0
    assert (out["singular"] < 0.02 * 300).all()
    check_against_analytic(crt_fit, out, delta)


@pytest.mark.slow
def test_power_curve_against_analytic_slow(crt_fit):
    delta = 0.5     # analytic power from about 0.3 (10 groups of 10) to 0.8 (40 of 20)
    out = mlm.power(crt_fit, "treat", effect=delta, n_groups=[10, 40], group_size=[10, 20],
                    nsim=1500, seed=2, progress=False)
    assert len(out) == 4
    check_against_analytic(crt_fit, out, delta)


@pytest.mark.parametrize("ddf", ["satterthwaite", "normal"])
def test_power_under_the_null_is_the_size(crt_fit, ddf):
    """effect = 0: the rejection rate is the test's size, P(|t_{J-2}| > crit): 0.05 with
    the t(J - 2) reference, 0.066 for z-tests (ddf="normal") with 20 clusters."""
    fit = mlm.lmer(crt_fit.formula, crt_fit.data, ddf=ddf)
    assert fit.ddf == ddf
    out = mlm.power(fit, "treat", effect=0.0, n_groups=20, nsim=400, seed=3, progress=False)
    check_against_analytic(fit, out, 0.0)


# --- resizing the design (simr's powerCurve along= and extend) -----------------------------
def test_fewer_groups_take_the_first_levels(crt_fit):
    small = resize_design(crt_fit.design, "group", 4)
    block = small.blocks[0]
    assert list(block.levels) == list(crt_fit.design.blocks[0].levels[:4])
    assert small.nobs == 40
    np.testing.assert_array_equal(small.X, crt_fit.design.X[:40])


def test_more_groups_repeat_them_in_turn_as_new_levels(crt_fit):
    big = resize_design(crt_fit.design, "group", 45, group_size=3)
    block = big.blocks[0]
    assert block.n_levels == 45 and big.nobs == 135
    assert np.bincount(block.codes).tolist() == [3] * 45
    orig = crt_fit.design
    # new group 21 (index 20) copies group 1; group 45 (index 44) copies group 5
    rows_1 = np.flatnonzero(orig.blocks[0].codes == 0)[:3]
    np.testing.assert_array_equal(big.X[block.codes == 20], orig.X[rows_1])
    assert str(block.levels[20]).endswith(".1") and str(block.levels[44]).endswith(".2")


def test_rows_repeat_within_a_group_when_it_grows():
    d = pd.DataFrame({"y": [1.0, 2.5, 3, 4.5, 4], "x": [0.0, 1, 2, 3, 4], "g": [1, 1, 2, 2, 2]})
    design = mlm.build_design("y ~ x + (1 | g)", d)
    big = resize_design(design, "g", 2, group_size=4)
    assert big.X[:, 1].tolist() == [0, 1, 0, 1, 2, 3, 4, 2]


def test_nested_factors_get_new_levels_crossed_keep_theirs():
    d = mlm.load_dataset("pastes")
    nested = mlm.build_design("strength ~ 1 + (1 | batch/cask)", d)
    big = resize_design(nested, "batch", 20)
    counts = {b.group_name: b.n_levels for b in big.blocks}
    assert counts == {"cask:batch": 60, "batch": 20}
    crossed = mlm.build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
                               mlm.load_dataset("penicillin"))
    big = resize_design(crossed, "plate", 48)
    counts = {b.group_name: b.n_levels for b in big.blocks}
    assert counts == {"plate": 48, "sample": 6}


def test_default_along_is_the_top_factor():
    fit = mlm.lmer("strength ~ 1 + (1 | batch/cask)", mlm.load_dataset("pastes"))
    out = mlm.power(fit, "(Intercept)", effect=0.0, n_groups=12, nsim=10, seed=1,
                    progress=False)
    assert out["n_groups"].tolist() == [12] and out["group_size"].tolist() == [6.0]


# --- failures and singular refits are counted, never dropped -------------------------------
def test_failed_refits_are_counted(crt_fit, monkeypatch):
    from mlm.simulation.replicates import RefitTemplate

    original = RefitTemplate.refit
    calls = {"n": 0}

    def flaky(self, y):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise np.linalg.LinAlgError("simulated failure")
        return original(self, y)

    monkeypatch.setattr(RefitTemplate, "refit", flaky)
    out = mlm.power(crt_fit, "treat", effect=0.4, nsim=40, seed=1, progress=False)
    assert out.loc[0, "failures"] == 10 and out.loc[0, "nsim"] == 40
    # power is over the 30 refits that worked, and its interval is a 30-trial interval
    hits = round(out.loc[0, "power"] * 30)
    assert out.loc[0, "power"] == pytest.approx(hits / 30)
    lo = stats.beta.ppf(0.025, hits, 30 - hits + 1) if hits else 0.0   # binom.test(hits, 30)
    assert out.loc[0, "conf_low"] == pytest.approx(lo)


def test_singular_refits_are_counted():
    d = mlm.simulate_dataset(12, 5, icc=0.0, fixed={"treat": 0.0}, level2=["treat"],
                             binary=["treat"], seed=2)
    fit = mlm.lmer("y ~ treat + (1 | group)", d)
    out = mlm.power(fit, "treat", nsim=60, seed=1, progress=False)
    # with tau^2 = 0 (or nearly) about half the REML refits end on the boundary
    assert 0 < out.loc[0, "singular"] <= 60
    assert out.loc[0, "failures"] == 0


BAD = [
    ("test-unknown", dict(test="tret"), r"test must name a fixed effect of the model \(\(Intercept\), treat\), not 'tret'"),
    ("effect-text", dict(test="treat", effect="big"), r"effect must be a finite number"),
    ("effect-nan", dict(test="treat", effect=float("nan")), r"effect must be a finite number"),
    ("alpha", dict(test="treat", alpha=5), r"alpha must be a significance level between 0 and 1, not 5"),
    ("n-groups-one", dict(test="treat", n_groups=1), r"n_groups must be whole numbers of at least 2, not 1"),
    ("n-groups-empty", dict(test="treat", n_groups=[]), r"n_groups is empty"),
    ("group-size", dict(test="treat", group_size=[5, 0]), r"group_size must be whole numbers of at least 1, not 0"),
    ("nsim", dict(test="treat", nsim=0), r"nsim must be a positive whole number of replicates, not 0"),
    ("n-jobs", dict(test="treat", n_jobs=0), r"n_jobs must be a whole number other than 0"),
    ("along", dict(test="treat", along="school"), r"along must be a grouping factor of the model \(group\), not 'school'"),
    ("seed", dict(test="treat", seed=-3), r"seed must be None or a non-negative whole number, not -3"),
]


@pytest.mark.parametrize("kwargs, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments(crt_fit, kwargs, match):
    with pytest.raises(MLMError, match=match):
        mlm.power(crt_fit, nsim=kwargs.pop("nsim", 5), progress=False, **kwargs)


def test_crossed_factors_need_along():
    fit = mlm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mlm.load_dataset("penicillin"))
    with pytest.raises(MLMError, match=r"crossed grouping factors \(plate, sample\).*along='plate'"):
        mlm.power(fit, "(Intercept)", nsim=5, progress=False)


def test_collinear_resized_design_is_refused():
    # treatment in the first half of the groups only: the first 2 groups are all treated
    d = mlm.simulate_dataset(8, 5, icc=0.2, fixed={"treat": 0.5}, level2=["treat"], seed=1)
    d["treat"] = (d["group"] <= 4).astype(float)
    fit = mlm.lmer("y ~ treat + (1 | group)", d)
    with pytest.raises(MLMError, match=r"With 2 groups the fixed-effect columns are collinear "
                                       r"\(treat is constant there\)"):
        mlm.power(fit, "treat", n_groups=2, nsim=5, progress=False)


def test_not_a_fit():
    with pytest.raises(MLMError, match="fit"):
        mlm.power("not a fit", "treat", nsim=5, progress=False)
