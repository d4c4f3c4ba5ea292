"""fit.simulate (lme4's simulate.merMod) and simulate_dataset, checked by analytic identities.

Random numbers differ from R's, so nothing here is compared with lme4's draws: the
checks are moments of the simulated outcomes against the model's own formulas, and
estimates from large simulated designs against the generating values, each within a
stated number of Monte Carlo standard errors (4 SE: a false alarm about 6e-5 per check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import MLMError

Z4 = 4.0   # Monte Carlo tolerance in standard errors


@pytest.fixture(scope="module")
def sleep_fit():
    return mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))


def test_simulate_shape_index_and_names(sleep_fit):
    sims = sleep_fit.simulate(nsim=3, seed=1)
    assert list(sims.columns) == ["sim_1", "sim_2", "sim_3"]        # lme4's names
    assert sims.index.equals(sleep_fit.fitted.index)
    assert np.isfinite(sims.to_numpy()).all()
    pd.testing.assert_frame_equal(sims, sleep_fit.simulate(nsim=3, seed=1))
    assert not np.allclose(sims["sim_1"], sleep_fit.simulate(nsim=1, seed=2)["sim_1"])
    # simulation i does not depend on how many are drawn (one seed per simulation)
    pd.testing.assert_series_equal(sims["sim_2"], sleep_fit.simulate(nsim=5, seed=1)["sim_2"])


def test_simulate_keeps_the_index_of_the_rows_fitted():
    d = mlm.load_dataset("sleepstudy")
    d.loc[[3, 50], "Reaction"] = np.nan
    with pytest.warns(mlm.MissingDataWarning, match="2 of 180 rows dropped"):
        fit = mlm.lmer("Reaction ~ Days + (1 | Subject)", d)
    sims = fit.simulate(2, seed=0)
    assert len(sims) == 178 and 3 not in sims.index and 50 not in sims.index


def test_simulate_moments_are_the_models(sleep_fit):
    """E y = X beta; Cov(y_i, y_j) = z_i' Sigma z_j + [i = j] sigma^2 within a subject."""
    nsim = 4000
    sims = sleep_fit.simulate(nsim=nsim, seed=11).to_numpy()
    X = sleep_fit.design.X
    mean = X @ sleep_fit.fixef.to_numpy()
    Sigma = sleep_fit.solution.covariances()[0]
    s2 = sleep_fit.sigma ** 2
    z = np.column_stack([np.ones(10), np.arange(10.0)])              # one subject's rows
    V = z @ Sigma @ z.T + s2 * np.eye(10)
    for i in range(10):                                                # rows of subject 1
        se = np.sqrt(V[i, i] / nsim)
        assert abs(sims[i].mean() - mean[i]) < Z4 * se
        var = sims[i].var(ddof=1)
        assert abs(var - V[i, i]) < Z4 * V[i, i] * np.sqrt(2 / (nsim - 1))
    for i, j in [(0, 9), (2, 5), (4, 8)]:
        cov = np.cov(sims[i], sims[j])[0, 1]
        se = np.sqrt((V[i, i] * V[j, j] + V[i, j] ** 2) / nsim)
        assert abs(cov - V[i, j]) < Z4 * se
    # different subjects are independent
    cov = np.cov(sims[0], sims[10])[0, 1]
    assert abs(cov) < Z4 * np.sqrt(V[0, 0] * V[0, 0] / nsim)


def test_bootstrap_replicate_i_refits_simulation_i(sleep_fit):
    """The same seed gives the same outcomes to simulate() and to bootstrap()'s refits."""
    sims = sleep_fit.simulate(nsim=3, seed=5)
    boot = mlm.bootstrap(sleep_fit, lambda f: pd.Series(f.design.y), nsim=3, seed=5,
                         progress=False)
    np.testing.assert_array_equal(boot.replicates.to_numpy(), sims.to_numpy().T)


@pytest.mark.parametrize("args, match", [
    ({"nsim": 0}, r"nsim must be a positive whole number of replicates, not 0"),
    ({"nsim": 2.5}, r"nsim must be a positive whole number"),
    ({"seed": -1}, r"seed must be None or a non-negative whole number, not -1"),
    ({"seed": "a"}, r"seed must be None or a non-negative whole number, not 'a'"),
])
def test_simulate_bad_arguments(sleep_fit, args, match):
    with pytest.raises(MLMError, match=match):
        sleep_fit.simulate(**args)


# --- simulate_dataset -----------------------------------------------------------------------
def fisher_icc_se(rho, n, J):
    """Large-sample SE of the one-way ANOVA ICC estimate, balanced groups (Fisher 1925;
    Donner 1986, Int. Stat. Rev. 54, 67-82): 2 (1-rho)^2 (1+(n-1)rho)^2 / (n (n-1) (J-1))."""
    return np.sqrt(2 * (1 - rho) ** 2 * (1 + (n - 1) * rho) ** 2 / (n * (n - 1) * (J - 1)))


@pytest.mark.parametrize("icc, J, n", [(0.2, 300, 20), (0.05, 400, 10), (0.5, 200, 5)])
def test_icc_of_a_large_null_design(icc, J, n):
    d = mlm.simulate_dataset(J, n, icc=icc, fixed={"(Intercept)": 3.0}, seed=J)
    fit = mlm.lmer("y ~ 1 + (1 | group)", d)
    v = fit.varcorr["vcov"].to_numpy()
    estimate = v[0] / v.sum()
    assert abs(estimate - icc) < Z4 * fisher_icc_se(icc, n, J)
    # intercept: Var = (tau2 + sigma2 / n) / J for balanced groups
    assert abs(fit.fixef["(Intercept)"] - 3.0) < Z4 * np.sqrt((icc + (1 - icc) / n) / J)
    assert v.sum() == pytest.approx(1.0, abs=Z4 * np.sqrt(2 / J))   # total variance 1


def test_fixed_effects_and_random_slope_are_recovered():
    J, n = 300, 20
    d = mlm.simulate_dataset(J, n, icc=0.2, fixed={"(Intercept)": 1.0, "x": 0.5, "z": -0.3},
                             slope_sd={"x": 0.4}, level2=["z"], seed=3)
    assert d.groupby("group")["z"].nunique().max() == 1
    fit = mlm.lmer("y ~ x + z + (x || group)", d)
    # Var(slope estimate of x) ~ (slope var + sigma2 / (n var x)) / J, var x = 1
    assert abs(fit.fixef["x"] - 0.5) < Z4 * np.sqrt((0.16 + 0.8 / n) / J)
    # Var(coefficient of a level-2 standard-normal z) ~ (tau2 + sigma2 / n) / J
    assert abs(fit.fixef["z"] + 0.3) < Z4 * np.sqrt((0.2 + 0.8 / n) / J)
    v = fit.varcorr.set_index("var1")["vcov"]
    # SE of a variance estimated from J groups: about var_of_group_means * sqrt(2 / J)
    assert abs(v["x"] - 0.16) < Z4 * (0.16 + 0.8 / n) * np.sqrt(2 / J)
    assert abs(v["(Intercept)"] - 0.2) < Z4 * (0.2 + 0.8 / n) * np.sqrt(2 / J)


def test_three_levels_shares():
    K, J, n = 150, 4, 10
    d = mlm.simulate_dataset((K, J), n, icc=(0.15, 0.25), fixed={"w": 1.0}, level3=["w"], seed=4)
    assert list(d.columns) == ["cluster", "group", "w", "y"]
    assert d["cluster"].nunique() == K and d["group"].nunique() == K * J
    assert d.groupby("group")["cluster"].nunique().max() == 1        # groups nested in clusters
    assert d.groupby("cluster")["w"].nunique().max() == 1
    fit = mlm.lmer("y ~ w + (1 | cluster/group)", d)
    v = fit.varcorr.set_index("grp")["vcov"]
    # each variance within 4 SE of its ANOVA-type approximation
    assert abs(v["group:cluster"] - 0.25) < Z4 * (0.25 + 0.6 / n) * np.sqrt(2 / (K * (J - 1)))
    assert abs(v["cluster"] - 0.15) < Z4 * (0.15 + 0.25 / J + 0.6 / (J * n)) * np.sqrt(2 / K)
    assert abs(v["Residual"] - 0.6) < Z4 * 0.6 * np.sqrt(2 / (K * J * (n - 1)))


def test_unbalanced_sizes_binary_and_attrs():
    sizes = [3, 7, 5, 9, 4, 6]
    d = mlm.simulate_dataset(6, sizes, icc=0.3, fixed={"(Intercept)": 2.0, "treat": 1.0, "x": 0.2},
                             level2=["treat"], binary=["treat", "x"], seed=9)
    assert d.groupby("group").size().tolist() == sizes
    assert d.groupby("group")["treat"].first().tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    first_group = d.loc[d["group"] == 1, "x"].tolist()
    assert first_group == [1.0, 0.0, 1.0]                             # alternates within group
    assert d.attrs["parameters"]["tau2"] == pytest.approx(0.3)
    assert d.attrs["parameters"]["sigma2"] == pytest.approx(0.7)
    assert "6 groups of 3 to 9 rows (unbalanced)" in d.attrs["description"]
    pd.testing.assert_frame_equal(d, mlm.simulate_dataset(6, sizes, icc=0.3, fixed={
        "(Intercept)": 2.0, "treat": 1.0, "x": 0.2}, level2=["treat"], binary=["treat", "x"], seed=9))


BAD = [
    ("groups-zero", dict(n_groups=0, group_size=5, icc=0.1), r"n_groups must be a positive whole number, not 0"),
    ("groups-triple", dict(n_groups=(2, 3, 4), group_size=5, icc=0.1), r"pair \(clusters, groups per cluster\)"),
    ("size-list-length", dict(n_groups=3, group_size=[2, 3], icc=0.1), r"group_size has 2 sizes but there are 3 groups"),
    ("size-text", dict(n_groups=3, group_size="5", icc=0.1), r"group_size has 1 sizes|whole number"),
    ("size-zero", dict(n_groups=2, group_size=[0, 3], icc=0.1), r"Every group size must be a positive whole number, not 0"),
    ("icc-one", dict(n_groups=3, group_size=5, icc=1.0), r"icc must hold variance shares >= 0 that sum to less than 1"),
    ("icc-negative", dict(n_groups=3, group_size=5, icc=-0.1), r"icc must hold variance shares"),
    ("icc-pair-two-levels", dict(n_groups=3, group_size=5, icc=(0.1, 0.2)), r"icc must be a number in \[0, 1\)"),
    ("icc-scalar-three", dict(n_groups=(3, 2), group_size=5, icc=0.1), r"With three levels icc is a pair"),
    ("icc-sum", dict(n_groups=(3, 2), group_size=5, icc=(0.6, 0.5)), r"sum to less than 1"),
    ("level2-unknown", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": 1}, level2=["z"]), r"level2 names \['z'\] that are not predictors in fixed \(x\)"),
    ("level3-two-levels", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": 1}, level3=["x"]), r"level3 predictors need three levels"),
    ("bad-name", dict(n_groups=3, group_size=5, icc=0.1, fixed={"a b": 1}), r"Predictor names in fixed must be valid column names"),
    ("bad-coef", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": "big"}), r"coefficient of 'x' in fixed must be a finite number"),
    ("slope-ambiguous", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": 1, "z": 1}, slope_sd=0.2), r"slope_sd=0.2 needs exactly one level-1 predictor"),
    ("slope-level2", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": 1}, level2=["x"], slope_sd={"x": 0.2}), r"slope_sd names 'x', which is not a level-1 predictor"),
    ("slope-negative", dict(n_groups=3, group_size=5, icc=0.1, fixed={"x": 1}, slope_sd={"x": -1}), r"slope_sd of 'x' must be a standard deviation >= 0"),
    ("seed", dict(n_groups=3, group_size=5, icc=0.1, seed=1.5), r"seed must be None or a non-negative whole number"),
]


@pytest.mark.parametrize("kwargs, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_simulate_dataset_bad_input(kwargs, match):
    with pytest.raises(MLMError, match=match):
        mlm.simulate_dataset(**kwargs)


def test_simulate_refuses_a_frame_that_would_not_fit_in_memory():
    """Found by the issue-11 QA pass: nsim=10**9 started allocating with no check."""
    f = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(mlm.MLMError, match=r"simulate\(nsim=1000000000\) would hold .* GiB.*ask for fewer"):
        f.simulate(nsim=10**9)
