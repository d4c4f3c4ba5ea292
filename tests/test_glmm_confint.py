"""mlm.confint for glmer fits (mlm/inference/glmm_confint.py).

Reference: tests/reference/glmm_compare.R -> glmm_compare.json, ``confint_wald``: lme4's
``confint(m, method = "Wald", oldNames = FALSE)`` of ``use ~ urban + (urban | district)``
(glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)). Tolerance: a Wald limit is
``b -+ 1.96 SE``; with the issue's criteria for glmer (fixed effects within 1e-3 relative, SEs
within 1%) a limit is within ``1e-3 |b| + 1.96 * 0.01 SE``.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlm
from mlm.errors import MLMError
from mlm.inference.confint import percentile_interval

REF = json.loads((Path(__file__).parent / "reference" / "glmm_compare.json").read_text())


@pytest.fixture(scope="module")
def slope_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.glmer(REF["confint_wald"]["formula"], mlm.load_dataset("contraception"))


@pytest.fixture(scope="module")
def cbpp_fit():
    return mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     mlm.load_dataset("cbpp"))


def test_wald_rows_and_limits_match_lme4(slope_fit):
    # R: confint(glmer(use ~ urban + (urban | district), binomial), method = "Wald", oldNames = FALSE)
    ref = REF["confint_wald"]
    ci = mlm.confint(slope_fit, method="wald")
    assert list(ci.index) == ref["parameters"]
    low = np.array(ref["conf_low"], dtype=float)
    high = np.array(ref["conf_high"], dtype=float)
    fixed = ~np.isnan(low)
    assert np.isnan(ci["conf_low"].to_numpy()[~fixed]).all()  # NA for the SDs, as lme4
    b, se = slope_fit.fixef.to_numpy(), slope_fit.coefficients["std_error"].to_numpy()
    tol = 1e-3 * np.abs(b) + 1.96 * 0.01 * se
    np.testing.assert_array_less(np.abs(ci["conf_low"].to_numpy()[fixed] - low[fixed]), tol)
    np.testing.assert_array_less(np.abs(ci["conf_high"].to_numpy()[fixed] - high[fixed]), tol)
    assert ci.attrs["method"] == "wald"


def test_bootstrap_intervals_are_the_percentiles_of_the_bootstrap(cbpp_fit):
    ci = mlm.confint(cbpp_fit, method="bootstrap", nsim=19, seed=4, progress=False)
    assert list(ci.index) == ["sd_(Intercept)|herd", "(Intercept)", "period2", "period3", "period4"]

    def stat(f):
        return np.r_[np.sqrt(f.varcorr["vcov"].iloc[0]), f.fixef.to_numpy()]

    boot = mlm.bootstrap(cbpp_fit, stat, nsim=19, seed=4, progress=False)
    for k, name in enumerate(ci.index):
        expected = percentile_interval(boot.replicates.iloc[:, k].to_numpy(), 0.95)
        assert tuple(ci.loc[name]) == pytest.approx(expected, rel=1e-12)
    # with 19 replicates and a 95% level the limits are the smallest and largest replicate
    assert ci.loc["period2", "conf_low"] == pytest.approx(boot.replicates.iloc[:, 2].min())
    assert ci.attrs["method"] == "bootstrap"


def test_bootstrap_parm_selects_rows(slope_fit):
    ci = mlm.confint(slope_fit, method="bootstrap", nsim=3, seed=1, parm="theta_", progress=False)
    assert list(ci.index) == REF["confint_wald"]["parameters"][:3]
    assert (ci["conf_low"] <= ci["conf_high"]).all()


def test_bad_input_is_refused_in_words(cbpp_fit):
    # profile intervals of glmer fits: tests/test_glmm_profile.py
    with pytest.raises(MLMError, match="nsim must be a positive whole number"):
        mlm.confint(cbpp_fit, method="bootstrap", nsim=0)
    with pytest.raises(MLMError, match="parm names unknown parameter"):
        mlm.confint(cbpp_fit, method="wald", parm="sigma")


def test_bootstrap_statistic_reads_the_sds_and_correlation_of_varcorr(slope_fit):
    from mlm.inference.glmm_confint import glmm_sdcor

    vc = slope_fit.varcorr  # sd (Intercept), sd urbanY, cor: as.data.frame(VarCorr(m))'s order
    np.testing.assert_allclose(glmm_sdcor(slope_fit), vc["sdcor"].to_numpy()[[0, 2, 1]], rtol=1e-12)
