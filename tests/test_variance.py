"""ICC and R² (mlm/variance.py) against performance, published values and the formulas.

Reference numbers: ``tests/reference/toolkit_variance.json``, written by
``tests/reference/toolkit_variance.R`` (R 4.2.2, lme4 1.1.31, performance 0.10.2,
lmerTest 3.1.3; every case's ``r_call`` is in the JSON). CI does not need R.

* performance::icc / r2_nakagawa: its numbers.
* R&B / S&B measures, design effect, HLM reliability, the Johnson R² of ``(Days || Subject)``:
  the formulas evaluated in R on lme4's variance components.
* ICC intervals: Stata's logit delta-method formula computed in R with lmerTest's
  ``vcov_varpar`` (an R computation of Stata's formula, not Stata output).

Tolerances: 1e-4 relative for quantities computed from the same variance components
(ICCs, R², design effect, reliability, R&B, S&B); interval bounds within 1e-3 absolute
(the Hessian is taken by finite differences in both programs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import MLMError
from mlm.toolkit.variance import icc, r2

REF = json.loads((Path(__file__).parent / "reference" / "toolkit_variance.json").read_text())["cases"]
REL = 1e-4
CI_ABS = 1e-3


@pytest.fixture(scope="module")
def m_null(hsb):
    return mlm.lmer("mathach ~ 1 + (1 | school)", hsb)


@pytest.fixture(scope="module")
def m_ses(hsb):
    return mlm.lmer("mathach ~ ses + (1 | school)", hsb)


@pytest.fixture(scope="module")
def m_slope(hsb):
    return mlm.lmer("mathach ~ ses + (ses | school)", hsb)


@pytest.fixture(scope="module")
def m_chem():
    return mlm.lmer("score ~ 1 + (1 | lea/school)", mlm.load_dataset("chem97"))


@pytest.fixture(scope="module")
def m_sleep(sleep):
    return mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def m_sleep_uncorr(sleep):
    return mlm.lmer("Reaction ~ Days + (Days || Subject)", sleep)


@pytest.fixture(scope="module")
def icc_null(m_null):
    return icc(m_null)


@pytest.fixture(scope="module")
def icc_chem(m_chem):
    return icc(m_chem)


# --- published values: Raudenbush & Bryk (2002), Hierarchical Linear Models, table 4.2 -------
def test_hsb_null_published_values(m_null, icc_null):
    vc = m_null.varcorr.set_index("grp")["vcov"]
    assert round(vc["school"], 3) == 8.614          # R&B table 4.2: tau00 = 8.614
    assert round(vc["Residual"], 3) == 39.148       # sigma2 = 39.148
    row = icc_null.loc["school"]
    assert round(row["icc"], 3) == 0.180            # ICC = 0.180
    assert round(row["design_effect"], 1) == 8.9    # design effect about 8.9 (field notes)
    assert round(row["reliability"], 2) == 0.90     # HLM reliability of the school mean 0.90


# --- against R ----------------------------------------------------------------------------
def test_hsb_null_against_performance(m_null, icc_null):
    ref = REF["hsb_null"]
    row = icc_null.loc["school"]
    # performance::icc(m)$ICC_adjusted ; icc(m, by_group = TRUE)
    assert icc_null.attrs["adjusted"] == pytest.approx(ref["icc"]["adjusted"], rel=REL)
    assert icc_null.attrs["unadjusted"] == pytest.approx(ref["icc"]["unadjusted"], rel=REL)
    assert row["icc"] == pytest.approx(ref["icc_by_group"]["school"], rel=REL)
    # 1 + (nrow(hsb) / nlevels(hsb$school) - 1) * tau0 / (tau0 + s20)
    assert row["design_effect"] == pytest.approx(ref["design_effect"]["school"], rel=REL)
    # mean(tau0 / (tau0 + s20 / n_j))
    assert row["reliability"] == pytest.approx(ref["reliability"]["school"], rel=REL)
    # stata_ci(m0, ...): delta method with as_lmerModLmerTest(m0)@vcov_varpar
    ci = ref["stata_ci"]["school"]
    assert row["std_error"] == pytest.approx(ci["se"], rel=1e-2)
    assert row["conf_low"] == pytest.approx(ci["conf_low"], abs=CI_ABS)
    assert row["conf_high"] == pytest.approx(ci["conf_high"], abs=CI_ABS)
    # performance::r2_nakagawa(m0)
    r = r2(m_null)
    assert r["marginal"] == pytest.approx(0.0, abs=1e-12)
    assert r["conditional"] == pytest.approx(ref["r2_nakagawa"]["conditional"], rel=REL)


def test_varpar_covariance_matches_lmertest(m_null):
    # as_lmerModLmerTest(m0)@vcov_varpar (theta, sigma); one term, so the orders agree
    A = m_null.problem.varpar_covariance(m_null.theta, m_null.sigma)
    np.testing.assert_allclose(A, np.array(REF["hsb_null"]["vcov_varpar"]), rtol=1e-2)


def test_three_level_chem97(icc_chem):
    ref = REF["chem97_nested"]
    assert list(icc_chem.index) == ["school:lea", "lea"]
    for g in ("school:lea", "lea"):
        row = icc_chem.loc[g]
        # performance::icc(m3, by_group = TRUE)
        assert row["icc"] == pytest.approx(ref["icc_by_group"][g], rel=REL)
        # (v3[["school:lea"]] + v3[["lea"]]) / tot3 ; v3[["lea"]] / tot3
        assert row["icc_cumulative"] == pytest.approx(ref["icc_cumulative"][g], rel=REL)
        # 1 + (nrow / nlevels - 1) * cumulative ICC
        assert row["design_effect"] == pytest.approx(ref["design_effect"][g], rel=REL)
        # mean(tau / (tau + s2 / n_j)), n_j rows per group
        assert row["reliability"] == pytest.approx(ref["reliability"][g], rel=REL)
        # stata_ci(m3, rho_factor(m3, g)) and stata_ci(m3, rho_factor(m3, g, ancestors))
        ci, cc = ref["stata_ci"][g], ref["stata_ci_cumulative"][g]
        assert row["conf_low"] == pytest.approx(ci["conf_low"], abs=CI_ABS)
        assert row["conf_high"] == pytest.approx(ci["conf_high"], abs=CI_ABS)
        assert row["cumulative_conf_low"] == pytest.approx(cc["conf_low"], abs=CI_ABS)
        assert row["cumulative_conf_high"] == pytest.approx(cc["conf_high"], abs=CI_ABS)
    # performance::icc(m3)$ICC_adjusted: all random variance over the total
    assert icc_chem.attrs["adjusted"] == pytest.approx(ref["icc"]["adjusted"], rel=REL)


@pytest.mark.parametrize("case", ["hsb_ses", "hsb_slope", "sleep_slope"])
def test_r2_and_icc_against_performance(case, request):
    fit = request.getfixturevalue({"hsb_ses": "m_ses", "hsb_slope": "m_slope",
                                   "sleep_slope": "m_sleep"}[case])
    ref = REF[case]
    r = r2(fit)
    # performance::r2_nakagawa(m)
    assert r["marginal"] == pytest.approx(ref["r2_nakagawa"]["marginal"], rel=REL)
    assert r["conditional"] == pytest.approx(ref["r2_nakagawa"]["conditional"], rel=REL)
    # var(drop(getME(m, "X") %*% fixef(m)))
    assert r.attrs["fixed_variance"] == pytest.approx(ref["fixed_var"], rel=REL)
    tab = icc(fit)
    # performance::icc(m)
    assert tab.attrs["adjusted"] == pytest.approx(ref["icc"]["adjusted"], rel=REL)
    assert tab.attrs["unadjusted"] == pytest.approx(ref["icc"]["unadjusted"], rel=REL)
    (g, ci), = ref["stata_ci"].items()
    assert tab.loc[g, "icc"] == pytest.approx(ci["rho"], rel=REL)
    assert tab.loc[g, "conf_low"] == pytest.approx(ci["conf_low"], abs=CI_ABS)
    assert tab.loc[g, "conf_high"] == pytest.approx(ci["conf_high"], abs=CI_ABS)


def test_uncorrelated_slopes_follow_johnson(m_sleep_uncorr):
    ref = REF["sleep_uncorrelated"]
    r = r2(m_sleep_uncorr)
    # vfu / (vfu + vru + s2u), vru = tau00 + tau11 * mean(Days^2)  (Johnson 2014, by hand in R)
    assert r["marginal"] == pytest.approx(ref["johnson"]["marginal"], rel=REL)
    assert r["conditional"] == pytest.approx(ref["johnson"]["conditional"], rel=REL)
    assert r.attrs["random_variance"] == pytest.approx(ref["random_var"], rel=REL)
    assert icc(m_sleep_uncorr).attrs["adjusted"] == pytest.approx(ref["johnson"]["icc_adjusted"],
                                                                  rel=REL)
    # performance 0.10.2 drops the slope variance: r2_nakagawa(mu) marginal 0.415 (not followed)
    assert abs(r["marginal"] - ref["performance_0_10_2_quirk"]["r2"]["marginal"]) > 0.1


def test_raudenbush_bryk_and_snijders_bosker(m_null, m_ses):
    ref = REF["hsb_ses"]
    r = r2(m_ses, baseline=m_null)
    # 1 - s21 / s20 ; 1 - tau1 / tau0
    assert r["prv_level1"] == pytest.approx(ref["prv"]["level1"], rel=REL)
    assert r["prv_school"] == pytest.approx(ref["prv"]["school"], rel=REL)
    # 1 - (s21 + tau1) / (s20 + tau0) ; 1 - (s21 / n_h + tau1) / (s20 / n_h + tau0)
    assert r["sb_level1"] == pytest.approx(ref["snijders_bosker"]["level1"], rel=REL)
    assert r["sb_level2"] == pytest.approx(ref["snijders_bosker"]["level2"], rel=REL)
    assert list(r.index) == ["marginal", "conditional", "prv_level1", "prv_school",
                             "sb_level1", "sb_level2"]


# --- identities -------------------------------------------------------------------------------
def test_two_level_icc_is_tau_over_total(m_null, icc_null):
    vc = m_null.varcorr.set_index("grp")["vcov"]
    tau, s2 = vc["school"], vc["Residual"]
    row = icc_null.loc["school"]
    assert row["icc"] == pytest.approx(tau / (tau + s2), rel=1e-12)
    assert row["icc_cumulative"] == row["icc"]
    assert row["cumulative_conf_low"] == row["conf_low"]
    n_bar = m_null.nobs / 160
    assert row["design_effect"] == pytest.approx(1 + (n_bar - 1) * row["icc"], rel=1e-12)
    assert row["conf_low"] < row["icc"] < row["conf_high"]


def test_null_model_conditional_r2_equals_icc(m_null, icc_null):
    assert r2(m_null)["conditional"] == pytest.approx(icc_null.loc["school", "icc"], rel=1e-12)


def test_cumulative_is_sum_of_nested_shares(icc_chem):
    assert icc_chem.loc["school:lea", "icc_cumulative"] == pytest.approx(
        icc_chem["icc"].sum(), rel=1e-12)
    assert icc_chem.loc["lea", "icc_cumulative"] == icc_chem.loc["lea", "icc"]


def test_crossed_cumulative_equals_icc():
    pen = mlm.load_dataset("penicillin")
    tab = icc(mlm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen))
    np.testing.assert_array_equal(tab["icc_cumulative"], tab["icc"])


@pytest.mark.parametrize("fixture", ["m_ses", "m_slope", "m_sleep", "m_sleep_uncorr"])
def test_conditional_at_least_marginal(fixture, request):
    r = r2(request.getfixturevalue(fixture))
    assert 0 <= r["marginal"] <= r["conditional"] <= 1


def test_formula_form_equals_fit_form(hsb, icc_null):
    pd.testing.assert_frame_equal(icc("mathach ~ 1 + (1 | school)", hsb), icc_null)


def test_level_changes_width_only(m_null, icc_null):
    narrow = icc(m_null, level=0.5)
    assert narrow.loc["school", "icc"] == icc_null.loc["school", "icc"]
    assert icc_null.loc["school", "conf_low"] < narrow.loc["school", "conf_low"]
    assert narrow.loc["school", "conf_high"] < icc_null.loc["school", "conf_high"]


def test_reliability_balanced_closed_form():
    # equal group sizes n: mean reliability = tau / (tau + sigma2 / n)
    sleep = mlm.load_dataset("sleepstudy")
    fit = mlm.lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    vc = fit.varcorr.set_index("grp")["vcov"]
    expected = vc["Subject"] / (vc["Subject"] + vc["Residual"] / 10)
    assert icc(fit).loc["Subject", "reliability"] == pytest.approx(expected, rel=1e-12)


def test_method_attribute_says_adjusted_with_slopes(m_slope, icc_null):
    assert icc(m_slope).attrs["method"].startswith("adjusted ICC")
    assert icc_null.attrs["method"] == "variance shares of random intercepts"
    assert any("Random slopes" in n for n in r2(m_slope).attrs["notes"])


# --- errors --------------------------------------------------------------------------------
def test_icc_rejects_non_fit():
    with pytest.raises(MLMError, match="must be a fitted model"):
        icc(42)


def test_icc_formula_needs_data():
    with pytest.raises(MLMError, match="no data"):
        icc("mathach ~ 1 + (1 | school)")


def test_icc_fit_with_data_rejected(m_null, hsb):
    with pytest.raises(MLMError, match="data is used only with a formula"):
        icc(m_null, hsb)


def test_icc_bad_level(m_null):
    with pytest.raises(MLMError, match="level must be between 0 and 1"):
        icc(m_null, level=95)


def test_r2_rejects_non_fit(m_null):
    with pytest.raises(MLMError, match="must be a fitted model"):
        r2("mathach ~ 1")
    with pytest.raises(MLMError, match="baseline must be a fitted model"):
        r2(m_null, baseline=object())


def test_r2_baseline_other_rows(hsb, m_ses):
    sub = mlm.lmer("mathach ~ 1 + (1 | school)", hsb.iloc[:5000])
    with pytest.raises(MLMError, match=r"different rows \(5000 rows\).*7185"):
        r2(m_ses, baseline=sub)


def test_r2_baseline_other_outcome(hsb, m_ses):
    other = mlm.lmer("ses ~ 1 + (1 | school)", hsb)
    with pytest.raises(MLMError, match="other outcome values"):
        r2(m_ses, baseline=other)


def test_r2_baseline_other_grouping(hsb, m_ses):
    other = mlm.lmer("mathach ~ 1 + (1 | sector)", hsb)
    with pytest.raises(MLMError, match=r"grouping factors \(sector\) differ.*\(1 \| school\)"):
        r2(m_ses, baseline=other)
