"""mlm.comparison against R: lm(), anova(lm(resid ~ school)), the LR test vs. OLS, lme4's anova().

Reference numbers: ``tests/reference/toolkit_comparison.json``, written by
``tests/reference/toolkit_comparison.R`` (R 4.2.2, lme4 1.1.31) from datasets/hsb.csv with
school as a factor. The R call behind each number is in the comment beside the assert.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support import fit
from mlm.toolkit.comparison import ComparisonError, OLSComparison, RefitWarning, compare, compare_ols

REF = json.loads((Path(__file__).parent / "reference" / "toolkit_comparison.json").read_text())
OLS = REF["ols_vs_mlm"]
ANOVA = REF["anova"]


@pytest.fixture(scope="module")
def ri(hsb):
    return fit("mathach ~ ses + meanses + sector + (1 | school)", hsb)


@pytest.fixture(scope="module")
def cmp(ri):
    return compare_ols(ri)


@pytest.fixture(scope="module")
def m0(hsb):
    return fit("mathach ~ ses + (1 | school)", hsb)


@pytest.fixture(scope="module")
def m1(hsb):
    return fit("mathach ~ ses + meanses + (1 | school)", hsb)


@pytest.fixture(scope="module")
def m2(hsb):
    return fit("mathach ~ ses + (ses | school)", hsb)


# ----------------------------------------------------------------------------- compare_ols
def test_ols_columns_match_lm(cmp):
    t = cmp.table
    assert isinstance(cmp, OLSComparison)
    assert list(t.index) == OLS["terms"]
    # R: coef(lm(mathach ~ ses + meanses + sector, hsb))
    np.testing.assert_allclose(t["ols_estimate"], OLS["ols_estimate"], rtol=1e-10)
    # R: sqrt(diag(vcov(lm(mathach ~ ses + meanses + sector, hsb))))
    np.testing.assert_allclose(t["ols_std_error"], OLS["ols_std_error"], rtol=1e-10)


def test_mlm_columns_match_lmer(cmp):
    t = cmp.table
    # R: fixef(lmer(mathach ~ ses + meanses + sector + (1 | school), hsb))
    np.testing.assert_allclose(t["mlm_estimate"], OLS["mlm_estimate"], rtol=1e-4)
    # R: sqrt(diag(vcov(lmer(...))))
    np.testing.assert_allclose(t["mlm_std_error"], OLS["mlm_std_error"], rtol=1e-3)
    np.testing.assert_allclose(t["se_ratio"], np.array(OLS["mlm_std_error"]) / OLS["ols_std_error"],
                               rtol=1e-3)


def test_residual_anova_matches_r(cmp):
    a, r = cmp.residual_anova, OLS["residual_anova"]
    # R: anova(lm(resid(ols) ~ school))  -> F value, Df, Pr(>F)
    assert a["df1"] == r["df1"] == 159 and a["df2"] == r["df2"] == 7025
    assert a["F"] == pytest.approx(r["F"], rel=1e-8)
    assert a["p_value"] == pytest.approx(r["p_value"], rel=1e-6)
    assert a["factor"] == "school"


def test_lr_test_chibar(cmp):
    lr, r = cmp.lr_test, OLS["lr_test"]
    # R: as.numeric(logLik(ols))
    assert lr["ols_loglik"] == pytest.approx(OLS["ols_loglik"], abs=1e-6)
    # R: 2 * (logLik(lmer(..., REML = FALSE)) - logLik(ols))
    assert lr["statistic"] == pytest.approx(r["statistic"], abs=0.02)
    # R: 0.5 * pchisq(stat, 1, lower.tail = FALSE)
    assert lr["p_value"] == pytest.approx(r["p_value"], rel=0.02)
    assert lr["df"] == 1 and lr["distribution"] == "chibar2(01)" and not lr["conservative"]


def test_lr_test_several_variance_parameters(hsb):
    slope = fit("mathach ~ ses + meanses + sector + (ses | school)", hsb)
    lr, r = compare_ols(slope).lr_test, OLS["lr_test_slope"]
    # R: 2 * (logLik(lmer(mathach ~ ses + meanses + sector + (ses | school), REML = FALSE)) - logLik(ols))
    assert lr["statistic"] == pytest.approx(r["statistic"], abs=0.02)
    # R: pchisq(stat, 3, lower.tail = FALSE)
    assert lr["df"] == 3 and lr["conservative"]
    assert lr["p_value"] == pytest.approx(r["p_value"], rel=0.05)


def test_icc_and_verdict(cmp):
    # R: v <- as.data.frame(VarCorr(m)); v$vcov[1] / sum(v$vcov)
    assert cmp.icc == pytest.approx(OLS["icc"]["icc"], rel=1e-3)
    assert cmp.group_level == ("meanses", "sector")
    v = cmp.verdict
    assert "understates the standard errors of the school-level predictors" in v
    assert "1.73 times for meanses" in v and "1.93 times for sector" in v
    assert "differ between school groups" in v and "ICC = 0.060" in v
    text = str(cmp)
    for piece in ("se_ratio", "F(159, 7025)", "chibar2(01)", "ICC (school)"):
        assert piece in text
    assert "<table" in cmp._repr_html_()


def test_compare_ols_rejects_non_fit():
    with pytest.raises(ComparisonError, match=r"fit must be a fitted model from mlm.lmer .*DataFrame"):
        compare_ols(pd.DataFrame())


# ----------------------------------------------------------------------------- zero variance
def zero_variance_data():
    # R (toolkit_comparison.R): zd <- expand.grid(j = 0:7, g = 1:12); x = (7j + 3g) %% 8 - 3.5;
    # e = (5j + 11g) %% 8 - 3.5; y = 2 + x + 0.5 e  (x and e have identical group means)
    j, g = np.meshgrid(np.arange(8), np.arange(1, 13))
    j, g = j.ravel(), g.ravel()
    x = (j * 7 + g * 3) % 8 - 3.5
    e = (j * 5 + g * 11) % 8 - 3.5
    return pd.DataFrame({"y": 2 + x + 0.5 * e, "x": x, "g": g})


def test_zero_group_variance_gives_ols():
    data = zero_variance_data()
    z = fit("y ~ x + (1 | g)", data)
    r = REF["zero_variance"]
    # R: isSingular(lmer(y ~ x + (1 | g), zd)) is TRUE, VarCorr variance 0
    assert r["singular"] and z.singular
    assert z.varcorr["vcov"].iloc[0] == pytest.approx(0.0, abs=1e-8)
    X = np.column_stack([np.ones(len(data)), data["x"]])
    ols = np.linalg.lstsq(X, data["y"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(z.fixef.to_numpy(), ols, atol=1e-6)
    # R: coef(lm(y ~ x, zd)) and fixef(lmer(y ~ x + (1 | g), zd))
    np.testing.assert_allclose(z.fixef.to_numpy(), r["ols"], atol=1e-6)
    np.testing.assert_allclose(z.fixef.to_numpy(), r["lmer"], atol=1e-6)
    c = compare_ols(z)
    np.testing.assert_allclose(c.table["mlm_estimate"], c.table["ols_estimate"], atol=1e-6)
    assert c.lr_test["statistic"] == pytest.approx(0.0, abs=1e-6)
    assert c.lr_test["p_value"] == 1.0
    assert "favour" in c.verdict


# ----------------------------------------------------------------------------- compare
def check_anova(table, ref, tol_ll=0.01):
    assert list(table["npar"]) == ref["npar"]
    np.testing.assert_allclose(table["loglik"], ref["loglik"], atol=tol_ll)
    np.testing.assert_allclose(table["aic"], ref["aic"], atol=2 * tol_ll)
    np.testing.assert_allclose(table["bic"], ref["bic"], atol=2 * tol_ll)
    np.testing.assert_allclose(table["deviance"], ref["deviance"], atol=2 * tol_ll)
    chisq = np.array([np.nan if v is None else v for v in ref["chisq"]], dtype=float)
    df = np.array([np.nan if v is None else v for v in ref["df"]], dtype=float)
    p = np.array([np.nan if v is None else v for v in ref["p_value"]], dtype=float)
    np.testing.assert_allclose(table["chisq"], chisq, atol=0.02)
    np.testing.assert_array_equal(table["df"], df)
    np.testing.assert_allclose(table["p_value"], p, rtol=0.02)


def test_compare_fixed_parts_refits_ml(m0, m1):
    with pytest.warns(RefitWarning, match="fixed parts differ"):
        table = compare(m1, m0)
    # R: anova(m1, m0)  (lme4 refits with ML and orders by npar)
    check_anova(table, ANOVA["fixed"])
    assert list(table.index) == ["model2", "model1"]
    assert list(table.columns) == ["npar", "aic", "bic", "loglik", "deviance", "chisq", "df", "p_value"]
    assert "refitted with maximum likelihood" in table.attrs["note"]
    assert table.attrs["formulas"]["model1"] == m1.formula


def test_compare_random_slope_default_refit(m0, m2):
    with pytest.warns(RefitWarning, match=r"refit=True \(lme4's default\)"):
        table = compare(m0, m2, names=["m0", "m2"])
    # R: anova(m0, m2)
    check_anova(table, ANOVA["slope"])
    assert list(table.index) == ["m0", "m2"]


def test_compare_refit_false_keeps_reml(m0, m2):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare(m0, m2, refit=False)
    # R: anova(m0, m2, refit = FALSE)
    check_anova(table, ANOVA["slope_reml"])
    assert "REML likelihoods compared" in table.attrs["note"]


def test_compare_refit_false_different_fixed_still_refits(m0, m1):
    with pytest.warns(RefitWarning, match="fixed parts differ"):
        table = compare(m0, m1, refit=False)
    check_anova(table, ANOVA["fixed"])  # R: anova(m1, m0) (ML)


def test_compare_three_models(m0, m1, m2):
    with pytest.warns(RefitWarning):
        table = compare(m2, m0, m1)
    # R: anova(m2, m0, m1): m2 against m1 has a lower logLik, so Chisq = 0 and p = 1
    check_anova(table, ANOVA["three"])
    assert list(table.index) == ["model2", "model3", "model1"]


def test_compare_ml_fits_need_no_refit(hsb):
    a = fit("mathach ~ ses + (1 | school)", hsb, reml=False)
    b = fit("mathach ~ ses + meanses + (1 | school)", hsb, reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compare(a, b)
    check_anova(table, ANOVA["fixed"])  # R: anova(m1, m0)
    assert table.attrs["note"] == "Maximum-likelihood fits compared."


def test_compare_errors(hsb, m0, m1):
    with pytest.raises(ComparisonError, match="at least two fitted models; got 1"):
        compare(m0)
    with pytest.raises(ComparisonError, match="Argument 2 must be a fitted model"):
        compare(m0, "m1")
    small = fit("mathach ~ ses + (1 | school)", hsb.iloc[:3000])
    with pytest.raises(ComparisonError, match=r"different numbers of rows \(model1: 7185, model2: 3000\)"):
        compare(m0, small)
    other_y = fit("ses ~ meanses + (1 | school)", hsb)
    with pytest.raises(ComparisonError, match=r"same number of rows \(7185\) but different outcome"):
        compare(m0, other_y)
    with pytest.raises(ComparisonError, match="names must hold 2 distinct labels"):
        compare(m0, m1, names=["a", "a"])
