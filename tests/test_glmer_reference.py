"""mlm.glmer against lme4's glmer and glmmTMB (tests/reference/glmer.R -> glmer.json).

Every case's R call is in the JSON (``r_call``); lme4 ran with
``glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)``. Tolerances are issue 14's:
log-likelihood within 0.01, fixed effects within 1e-3 relative, standard errors and
variance components within 1%. Our fit is also never worse than lme4's (its optimum is
the exact one: PIRLS to rounding precision, Newton-polished; field notes).

Where the references disagree, the reason is stated beside the case:

* ``contra_intercept``: lme4's bobyqa stops 8e-5 log-likelihood units short of
  glmmTMB's optimum (which we reach), and the small ``age`` coefficient moves by 1%
  there, so the estimates are compared with glmmTMB's.
* ``contra_nested``: log-likelihoods agree to 1e-7, but lme4's finite-difference
  Hessian gives SEs 1.3% away from glmmTMB's (which uses automatic differentiation) and
  ours; SEs are compared with glmmTMB's.
* probit and cloglog: glmmTMB's Laplace approximation uses the observed information,
  lme4's the expected (Fisher) one, so their log-likelihoods differ by 0.08-0.15; we
  follow lme4 and compare with it only.
* AGQ on binomial counts and Poisson: lme4's printed logLik leaves out the
  normalising constants (field notes); ``loglik_integrated`` (R's integrate() at lme4's
  estimates) is the log-likelihood with them, which ours is.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from support import glmer_cases

REF = json.loads((Path(__file__).parent / "reference" / "glmer.json").read_text())
CASES = [k for k in REF if k != "timing"]
ESTIMATES_FROM_GLMMTMB = {"contra_intercept"}
SE_FROM_GLMMTMB = {"contra_intercept", "contra_nested"}
SLOW = set()  # none over 10 s today


_fit = glmer_cases(REF)


def _params():
    return [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES]


def _values(d):
    return np.array(list(d.values()), dtype=float)


@pytest.mark.parametrize("case", _params())
def test_loglik(case):
    c, fit = REF[case], _fit(case)
    without_constants = c["nagq"] > 1 and (c["family"] == "poisson" or "cbind" in c["formula"])
    target = c["loglik_integrated"] if without_constants else c["loglik"]  # R: logLik(m)
    assert fit.loglik == pytest.approx(target, abs=0.01)
    if c["nagq"] == 1:
        assert fit.loglik >= c["loglik"] - 1e-6  # never short of lme4's optimum
        assert fit.loglik >= c["loglik_default_control"] - 1e-6
    assert fit.converged
    assert fit.nobs == c["nobs"]


@pytest.mark.parametrize("case", _params())
def test_fixed_effects_and_standard_errors(case):
    c, fit = REF[case], _fit(case)
    est = c["glmmtmb"] if case in ESTIMATES_FROM_GLMMTMB else c
    np.testing.assert_allclose(fit.fixef.to_numpy(), _values(est["fixef"]), rtol=1e-3)  # R: fixef(m)
    se = c["glmmtmb"]["se"] if case in SE_FROM_GLMMTMB else c["se"]  # R: sqrt(diag(vcov(m)))
    np.testing.assert_allclose(fit.coefficients["std_error"].to_numpy(), _values(se), rtol=0.01)


@pytest.mark.parametrize("case", _params())
def test_variance_components(case):
    c, fit = REF[case], _fit(case)
    ref = np.array([r["vcov"] for r in c["varcorr"]])  # R: as.data.frame(VarCorr(m))$vcov
    np.testing.assert_allclose(fit.varcorr["vcov"].to_numpy(), ref, rtol=0.01)
    assert list(fit.varcorr["grp"]) == [r["grp"] for r in c["varcorr"]]
    assert fit.singular == c["singular"]


@pytest.mark.parametrize("case", _params())
def test_random_effects_fitted_and_residuals(case):
    c, fit = REF[case], _fit(case)
    modes = fit.ranef[c["ranef_group"]].iloc[:5]
    for col, values in c["ranef_head"].items():  # R: ranef(m, condVar = TRUE)
        scale = np.max(np.abs(fit.ranef[c["ranef_group"]][col]))
        np.testing.assert_allclose(modes[col].to_numpy(), values, rtol=1e-2, atol=1e-3 * scale)
    first = list(c["ranef_head"])[0]
    sds = fit.ranef_sd[c["ranef_group"]][first].iloc[:5].to_numpy()
    np.testing.assert_allclose(sds, c["ranef_condsd_head"], rtol=1e-2)  # R: attr(., "postVar")
    head = slice(0, 5)
    # lme4 stopped short on ESTIMATES_FROM_GLMMTMB cases: its predictions are 1e-3 away there
    rtol = 1e-2 if case in ESTIMATES_FROM_GLMMTMB else 1e-3
    np.testing.assert_allclose(fit.fitted.to_numpy()[head], c["fitted_head"], rtol=rtol)  # fitted(m)
    np.testing.assert_allclose(fit.predict(type="link").to_numpy()[head], c["predict_link_head"],
                               rtol=rtol, atol=1e-4)
    np.testing.assert_allclose(fit.predict(type="link", include_random=False).to_numpy()[head],
                               c["predict_fixed_link_head"], rtol=rtol, atol=1e-4)  # re.form = NA
    np.testing.assert_allclose(fit.residuals("deviance").to_numpy()[head], c["residuals_deviance_head"],
                               rtol=rtol, atol=1e-4)
    np.testing.assert_allclose(fit.residuals("pearson").to_numpy()[head], c["residuals_pearson_head"],
                               rtol=rtol, atol=1e-4)
