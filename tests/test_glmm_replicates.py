"""fit.simulate and mlm.bootstrap for glmer fits (mlm/simulation/glmm_replicates.py).

Simulated outcomes are checked against moments computed independently of the simulator:
for a random-intercept model the mean and variance of each group's total follow from the
family and the random-intercept distribution by Gauss-Hermite quadrature (exact to 1e-12
with 40 nodes for these smooth integrands), and for a Poisson model with a log link in
closed form (a lognormal mean). Each check compares a mean over ``nsim`` independent
simulations with its expectation, with a bound of 4 Monte Carlo standard errors (the SD of
the per-simulation statistic over sqrt(nsim)): a correct simulator fails it with
probability below 1e-4, and the seed is fixed, so the outcome is deterministic. A wrong
random-effect scale or family draw moves the variance check by many standard errors.

The bootstrap is checked against lme4's Wald standard errors (tests/reference/glmm_compare.R).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import MLMError

REF = json.loads((Path(__file__).parent / "reference" / "glmm_compare.json").read_text())
NSIM = 400
MC_BOUND = 4.0  # Monte Carlo standard errors


@pytest.fixture(scope="module")
def binary_fit(contraception):
    return mlm.glmer("use ~ age + urban + (1 | district)", contraception)


@pytest.fixture(scope="module")
def cbind_fit(cbpp):
    return mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)


@pytest.fixture(scope="module")
def poisson_fit(cbpp):
    return mlm.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson")


def _group_moments(fit, tau_scale=1.0):
    """E and Var of every group's total outcome (counts) by Gauss-Hermite quadrature.

    Random intercept b ~ N(0, tau^2): given b, the rows are independent binomial(n_i, p_i) or
    Poisson(mu_i) with mean mu_i(b) = linkinv(eta_i + b), eta_i = offset + X beta.
    """
    g = fit.gdesign
    eta = g.offset + g.design.X @ fit.fixef.to_numpy()
    tau = tau_scale * float(np.sqrt(fit.varcorr["vcov"].iloc[0]))
    codes = g.design.blocks[0].codes
    G = g.design.blocks[0].n_levels
    z, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    m1, m2 = np.zeros(G), np.zeros(G)
    for zk, wk in zip(z, w):
        mu = fit.family.linkinv(eta + tau * zk)
        if fit.family.name == "binomial":
            mean, var = g.weights * mu, g.weights * mu * (1 - mu)
        else:
            mean, var = mu, mu
        M = np.bincount(codes, weights=mean, minlength=G)
        V = np.bincount(codes, weights=var, minlength=G)
        m1 += wk * M
        m2 += wk * (V + M ** 2)
    return codes, G, m1, m2 - m1 ** 2


def _counts(fit, sims):
    """Simulated outcomes as counts (successes or events) per row."""
    g = fit.gdesign
    values = sims.to_numpy(dtype=float)
    if g.family.name == "binomial" and g.cbind is None:
        values = values * g.weights[:, None]
    return values


@pytest.mark.parametrize("which", ["binary_fit", "cbind_fit", "poisson_fit"])
def test_simulated_totals_have_the_models_mean_and_variance(request, which):
    fit = request.getfixturevalue(which)
    codes, G, mean, var = _group_moments(fit)
    y = _counts(fit, fit.simulate(nsim=NSIM, seed=20261126))
    totals = np.stack([np.bincount(codes, weights=y[:, s], minlength=G) for s in range(NSIM)])
    # first moment: the grand total of a simulation, expectation sum_j E[S_j]
    grand = totals.sum(axis=1)
    se = grand.std(ddof=1) / np.sqrt(NSIM)
    assert abs(grand.mean() - mean.sum()) < MC_BOUND * se
    # second moment: sum_j (S_j - E S_j)^2 has expectation sum_j Var(S_j); the random
    # intercept's variance is most of it (a wrong tau scale moves it by far more than 4 SE)
    spread = ((totals - mean) ** 2).sum(axis=1)
    se = spread.std(ddof=1) / np.sqrt(NSIM)
    assert abs(spread.mean() - var.sum()) < MC_BOUND * se
    # the check can fail: with half the random-intercept SD the expected spread is off
    _, _, mean_half, var_half = _group_moments(fit, tau_scale=0.5)
    assert abs(((totals - mean_half) ** 2).sum(axis=1).mean() - var_half.sum()) > MC_BOUND * se


def test_poisson_quadrature_agrees_with_the_lognormal_mean(poisson_fit):
    # analytic identity: E[exp(eta + b)] = exp(eta + tau^2 / 2) for b ~ N(0, tau^2)
    codes, G, mean, _ = _group_moments(poisson_fit)
    g = poisson_fit.gdesign
    tau2 = float(poisson_fit.varcorr["vcov"].iloc[0])
    eta = g.offset + g.design.X @ poisson_fit.fixef.to_numpy()
    exact = np.bincount(codes, weights=np.exp(eta + tau2 / 2), minlength=G)
    np.testing.assert_allclose(mean, exact, rtol=1e-10)


def test_simulated_outcomes_are_on_the_formulas_scale(binary_fit, cbind_fit, poisson_fit, cbpp):
    b = binary_fit.simulate(nsim=3, seed=1)
    assert set(np.unique(b.to_numpy())) <= {0, 1} and b.dtypes.eq(np.int64).all()
    assert b.attrs["outcome"] == "1 = 'Y', 0 = not (the outcome use)"
    assert b.index.equals(binary_fit.fitted.index)
    c = cbind_fit.simulate(nsim=3, seed=1)
    assert c.dtypes.eq(np.int64).all() and (c.ge(0).all().all())
    assert c.le(cbpp["size"], axis=0).all().all()
    assert "successes (incidence)" in c.attrs["outcome"]
    p = poisson_fit.simulate(nsim=3, seed=1)
    assert p.dtypes.eq(np.int64).all() and p.ge(0).all().all()
    proportion = mlm.glmer("I(incidence / size) ~ period + (1 | herd)", cbpp, weights="size")
    q = proportion.simulate(nsim=3, seed=1)
    k = q.mul(cbpp["size"], axis=0).to_numpy()
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)  # whole successes out of size
    assert q.attrs["outcome"].startswith("proportions")
    # the same model written with cbind draws the same successes from the same seed
    np.testing.assert_array_equal(np.round(k).astype(np.int64), c.to_numpy())


def test_simulate_is_reproducible_and_checks_its_arguments(binary_fit):
    a = binary_fit.simulate(nsim=2, seed=5)
    assert a.equals(binary_fit.simulate(nsim=2, seed=5))
    assert not a.equals(binary_fit.simulate(nsim=2, seed=6))
    # simulation i does not depend on how many are asked for (its own child seed)
    assert a["sim_2"].equals(binary_fit.simulate(nsim=3, seed=5)["sim_2"])
    with pytest.raises(MLMError, match="nsim must be a positive whole number"):
        binary_fit.simulate(nsim=0)
    with pytest.raises(MLMError, match="seed must be None or a non-negative whole number"):
        binary_fit.simulate(seed=-1)


def test_simulate_refuses_what_r_cannot_simulate(contraception, cbpp):
    y = (contraception["use"] == "Y").to_numpy()
    w = np.where(y, 1.0, 0.5)  # fractional trials on the failures: a valid fit, no simulation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mlm.glmer("use ~ urban + (1 | district)", contraception, weights=w)
    with pytest.raises(MLMError, match="trials\\) are not whole numbers.*non-integer prior.weights"):
        fit.simulate()
    pois = mlm.glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson", weights="size")
    with pytest.raises(MLMError, match="Poisson outcomes of a fit with prior weights=.*offset"):
        mlm.bootstrap(pois, lambda f: f.fixef, nsim=2, progress=False)


def test_bootstrap_replicate_i_refits_simulation_i(cbind_fit):
    boot = mlm.bootstrap(cbind_fit, lambda f: pd.Series(f.gdesign.y * f.gdesign.weights),
                         nsim=3, seed=11, progress=False)
    sims = cbind_fit.simulate(nsim=3, seed=11)
    np.testing.assert_array_equal(boot.replicates.to_numpy(), sims.to_numpy().T)


@pytest.mark.slow  # about 14 s: starting joblib's workers dominates
def test_bootstrap_of_glmer_is_the_same_serially_and_in_parallel(cbind_fit):
    def stat(f):
        return pd.concat([f.fixef, pd.Series({"sd": float(np.sqrt(f.varcorr["vcov"].iloc[0]))})])

    serial = mlm.bootstrap(cbind_fit, stat, nsim=8, seed=3, n_jobs=1, progress=False)
    parallel = mlm.bootstrap(cbind_fit, stat, nsim=8, seed=3, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial.replicates, parallel.replicates)
    assert serial.failures == parallel.failures == 0
    assert list(serial.original.index) == list(cbind_fit.fixef.index) + ["sd"]


@pytest.mark.slow  # about 40 s: 200 glmer refits
def test_bootstrap_ses_of_fixed_effects_match_wald_ses(contraception):
    # R: sqrt(diag(vcov(glmer(use ~ urban + (1 | district), Contraception, binomial))))
    ref = REF["bootstrap_model"]
    fit = mlm.glmer(ref["formula"], contraception)
    nsim = 200
    boot = mlm.bootstrap(fit, lambda f: f.fixef, nsim=nsim, seed=2026, progress=False)
    assert boot.failures == 0 and len(boot.replicates) == nsim
    sd = boot.replicates.std(ddof=1).to_numpy()
    wald = np.array(ref["std_error"])
    # the SD of 200 normal draws has relative standard error 1 / sqrt(2 (200 - 1)) = 0.050
    rel_se = 1 / np.sqrt(2 * (nsim - 1))
    assert np.all(np.abs(sd / wald - 1) < MC_BOUND * rel_se), sd / wald
    # and the replicates centre on the estimate (ML bias is far below 4 MC SEs here)
    centre = boot.replicates.mean().to_numpy()
    assert np.all(np.abs(centre - np.array(ref["estimate"])) < MC_BOUND * sd / np.sqrt(nsim))
