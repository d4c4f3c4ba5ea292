"""Agreement with lme4 on harder models: crossed slopes, a slope at the top of three levels,
``||`` with a factor, a 3 x 3 covariance, a transform, ML with several fixed effects.

Reference: tests/reference/lme4_more.json, written by tests/reference/lme4_more.R
(lme4 1.1.31 with bobyqa; each case's ``r_call`` is in the JSON). Tolerances as in
test_lme4_reference.py: log-likelihood 0.01 absolute, fixed effects 1e-4 relative,
standard errors 1e-3 relative.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_more.json").read_text())
# In exam_double_bar_factor the intercept and the full set of sex dummies are not
# separately identified; lme4 reports "failed to converge" and leaves the intercept SD at
# an arbitrary 0.007, mlm at 0: the same likelihood, so isSingular is not compared there.
UNIDENTIFIED = {"exam_double_bar_factor"}


@pytest.fixture(scope="module", params=REF["cases"], ids=lambda c: c["id"])
def pair(request):
    case = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mlm.lmer(case["formula"].replace("^", "**"), mlm.load_dataset(case["data"]),
                       reml=case["reml"])
    return case, fit


def test_loglik(pair):
    case, fit = pair
    assert fit.loglik == pytest.approx(case["loglik"], abs=0.01)            # R: logLik(m)
    assert fit.converged


def test_fixed_effects_and_standard_errors(pair):
    case, fit = pair
    assert len(fit.fixef) == len(case["fixef"])
    est = np.array(list(case["fixef"].values()))                            # R: fixef(m)
    se = np.array(list(case["se"].values()))                                # R: sqrt(diag(vcov(m)))
    np.testing.assert_allclose(fit.fixef.to_numpy(), est, rtol=1e-4)
    np.testing.assert_allclose(fit.coefficients["std_error"].to_numpy(), se, rtol=1e-3)
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-3)              # R: sigma(m)


def test_singular_flag(pair):
    case, fit = pair
    if case["id"] in UNIDENTIFIED:
        pytest.skip("not identified: lme4 did not converge (see module notes)")
    assert fit.singular == case["singular"]                                 # R: isSingular(m)
