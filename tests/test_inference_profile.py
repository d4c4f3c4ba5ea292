"""The profiling machinery (mlm/inference/profile.py): identities and lme4's ML refit.

* The fixed-effect profile's deviance, taken from the full model's factorisation, equals
  the ML deviance of the reduced design with ``x_j b`` as an offset (what lme4's
  profile.merMod fits) - an algebraic identity, checked to 1e-10 relative.
* The sd/cor parametrisation round-trips, and at the estimates its deviance is the
  optimum's.
* The ML refit a REML fit is profiled from equals lme4's ``refitML(m)`` (theta within
  1e-3 relative as in the core reference tests, log-likelihood within 1e-3).
* The crossing search finds the root of a known function and stops at a bound.
"""

from __future__ import annotations

import numpy as np
import pytest

import mlm
from mlm.inference.confint import _layout
from mlm.inference.profile import Profiler, sdcor_to_theta, theta_to_sdcor
from mlm.engine.pls import PLSProblem

from test_inference_confint import REF, fitted


@pytest.mark.parametrize("case_id", ["sleep_rc", "hsb_rb", "pastes_nested", "penicillin_crossed"])
def test_fixed_profile_deviance_equals_the_offset_refit(case_id):
    fit = fitted(case_id)
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    d = fit.design
    for j in range(d.X.shape[1]):
        for b, theta in ((prof.beta[j] + 0.7, prof.theta), (prof.beta[j] - 1.3, prof.theta * 0.6 + 0.05)):
            y = d.y - b * d.X[:, j]
            X = np.delete(d.X, j, axis=1)
            if X.shape[1] == 0:  # intercept-only model: the offset model has no fixed effects
                continue
            reduced = PLSProblem(y, X, d.pls_terms(), reml=False)
            assert prof.fixed_deviance(theta, j, b) == pytest.approx(reduced.deviance(theta), rel=1e-10)


def test_fixed_profile_deviance_without_other_fixed_effects():
    # p = 1: with beta fixed the ML deviance is the one of y - b with no fixed effects,
    # computed here from the model with the intercept: r2 + (b - beta_hat)^2 / V_11
    fit = fitted("penicillin_crossed")
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    b = prof.beta[0] + 0.4
    # at theta = 0 there are no random effects: the deviance is n (1 + log(2 pi RSS / n))
    y = fit.design.y
    n = y.size
    rss = float(np.sum((y - b) ** 2))
    zero = np.zeros_like(prof.theta)
    assert prof.fixed_deviance(zero, 0, b) == pytest.approx(n * (1 + np.log(2 * np.pi * rss / n)), rel=1e-12)


@pytest.mark.parametrize("case_id", ["sleep_rc", "hsb_rc", "pastes_nested", "sleep_uncor"])
def test_sdcor_round_trip_and_deviance_at_the_estimates(case_id):
    fit = fitted(case_id)
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    sd = theta_to_sdcor(prof.ml, prof.theta, prof.sigma)
    np.testing.assert_allclose(sdcor_to_theta(prof.ml, sd), prof.theta, rtol=1e-12, atol=1e-14)
    assert prof.varpar_deviance(sd) == pytest.approx(prof.base, rel=1e-12)


def test_three_by_three_round_trip_and_impossible_correlations():
    d = mlm.load_dataset("sleepstudy").assign(D2=lambda f: (f["Days"] - 4.5) ** 2 / 10)
    fit = mlm.lmer("Reaction ~ Days + (Days + D2 | Subject)", d)
    sd = theta_to_sdcor(fit.problem, fit.theta, fit.sigma)
    np.testing.assert_allclose(sdcor_to_theta(fit.problem, sd), fit.theta, rtol=1e-10, atol=1e-12)
    bad = sd.copy()
    bad[1], bad[2], bad[4] = 0.9, -0.9, 0.9  # cor(1,0), cor(2,0), cor(2,1): not a correlation matrix
    assert sdcor_to_theta(fit.problem, bad) is None
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    assert prof.varpar_deviance(bad) == np.inf


@pytest.mark.parametrize("case_id", ["hsb_rc", "sleep_rc", "pastes_nested", "penicillin_crossed"])
def test_ml_refit_equals_lme4s(case_id):
    # R: refitML(m); getME(., "theta"), sigma(.), logLik(.)
    case = REF["cases"][case_id]
    fit = fitted(case_id)
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    _, order = _layout(fit)  # our theta is in formula order, lme4's by term size
    np.testing.assert_allclose(prof.theta[order[:-1]], case["ml_theta"], rtol=1e-3, atol=1e-4)
    assert prof.sigma == pytest.approx(case["ml_sigma"], rel=1e-4)
    assert -0.5 * prof.base == pytest.approx(case["ml_loglik"], abs=1e-3)


def test_limit_finds_a_known_root_and_stops_at_bounds():
    fit = fitted("sleep_rc")
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    calls = []

    def zeta(x):  # a curved, monotone profile: root of zeta = 1.96 at x = 3 + 0.5 * 1.96 ** 2
        calls.append(x)
        return np.sign(x - 3) * np.sqrt(2 * abs(x - 3) + 0.0 * x)

    root = prof.limit(zeta, 3.0, 1.0, 1.959964)
    assert root == pytest.approx(3 + 0.5 * 1.959964 ** 2, rel=1e-6)
    assert len(calls) < 20
    # a profile that reaches its lower bound before the crossing: the bound
    assert prof.limit(lambda x: (x - 3) / 10, 3.0, 1.0, -1.959964, lo=0.0) == 0.0
    # a correlation whose profile stays flat up to 1: 1
    assert prof.limit(lambda x: 0.1 * x, 0.0, 0.2, 1.959964, lo=-1.0, hi=1.0) == 1.0
