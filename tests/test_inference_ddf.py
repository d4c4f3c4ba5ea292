"""Satterthwaite and Kenward-Roger tests against lmerTest 3.1-3 and pbkrtest 0.5.2.

Reference: tests/reference/inference_ddf.json, written by tests/reference/inference_ddf.R
(R 4.2.2, lme4 1.1-31 with bobyqa; each case's ``r_call`` is in the JSON). Models: two
levels (HSB with a sector factor and a random slope, REML and ML; sleepstudy REML and ML;
exam with two three-level factors and a random slope, REML and ML), three levels (pastes;
chem97, leas 1-12), crossed (penicillin; ScotsSec with and without a random slope).

Tolerances. The fits agree with lme4 to the optimizer's precision (fixed effects 1e-4,
standard errors 1e-3 relative: tests/test_lme4_reference.py); df, F and the KR
adjustment are smooth functions of the same estimates, and their derivatives are taken
by central differences (error ~1e-8 relative), so they are held to 2e-3 relative
(the issue asks for 1% on df and 0.5% on SEs); p-values on the log scale to 1e-2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm
from mlm.inference import ddf as ddfmod
from mlm.inference import kenward_roger
from support import fit as quiet_fit

REF = json.loads((Path(__file__).parent / "reference" / "inference_ddf.json").read_text())
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 2e-3


def load(name):
    """The data sets as inference_ddf.R prepares them."""
    if name == "hsb":
        d = mlm.load_dataset("hsb")
        # R: factor(ifelse(sector == 1, "Catholic", "Public"), levels = c("Public", "Catholic"))
        d["sector"] = pd.Categorical(np.where(d["sector"] == 1, "Catholic", "Public"),
                                     categories=["Public", "Catholic"])
        return d
    if name == "chem97_lea12":
        d = mlm.load_dataset("chem97")
        return d[d["lea"].astype(int) <= 12]  # R: chem[as.integer(as.character(chem$lea)) <= 12, ]
    return mlm.load_dataset(name)


_FITS = {}


def get_fit(case_id):
    if case_id not in _FITS:
        c = CASES[case_id]
        _FITS[case_id] = quiet_fit(c["formula"], load(c["data"]), reml=c["reml"])
    return _FITS[case_id]


def as_list(x):
    """R's toJSON(auto_unbox = TRUE) writes a length-one vector as a scalar."""
    return x if isinstance(x, list) else [x]


def _close(actual, desired, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(desired, dtype=float),
                               rtol=rtol, atol=atol)


def _logp(actual, desired):
    a = np.log(np.maximum(np.asarray(actual, dtype=float), 1e-300))
    d = np.log(np.maximum(np.asarray(desired, dtype=float), 1e-300))
    np.testing.assert_allclose(a, d, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("case_id", list(CASES))
def test_satterthwaite_coefficients(case_id):
    ref = CASES[case_id]["satterthwaite"]   # R: coef(summary(m, ddf = "Satterthwaite"))
    co = get_fit(case_id).coefficients
    assert list(co.index) == as_list(ref["term"])
    _close(co["estimate"], ref["estimate"], rtol=1e-4, atol=1e-8)
    _close(co["std_error"], ref["std_error"], rtol=1e-3)
    _close(co["df"], ref["df"])
    _close(co["statistic"], ref["t"], rtol=RTOL, atol=1e-4)
    _logp(co["p_value"], ref["p"])


KR_CASES = [k for k, c in CASES.items() if c["reml"]]


@pytest.mark.parametrize("case_id", KR_CASES)
def test_kenward_roger_coefficients(case_id):
    ref = CASES[case_id]["kenward_roger"]   # R: coef(summary(m, ddf = "Kenward-Roger"))
    co = get_fit(case_id).coef_table("kenward-roger")
    _close(co["std_error"], ref["std_error"], rtol=1e-3)
    _close(co["df"], ref["df"])
    _close(co["statistic"], ref["t"], rtol=RTOL, atol=1e-4)
    _logp(co["p_value"], ref["p"])


@pytest.mark.parametrize("case_id", KR_CASES)
def test_vcov_adjusted(case_id):
    ref = np.array(CASES[case_id]["vcov_adj"], dtype=float).reshape(-1, len(get_fit(case_id).fixef))
    # R: as.matrix(pbkrtest::vcovAdj(m))
    V = ddfmod.vcov_adjusted(get_fit(case_id))
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    _close(V / scale, ref / scale, rtol=0, atol=2e-3)


CONTESTS = [(k, i, m) for k, c in CASES.items() for i in range(len(c["contrasts"]))
            for m in (("satterthwaite", "kenward_roger") if c["reml"] else ("satterthwaite",))]


@pytest.mark.parametrize("case_id,i,method", CONTESTS)
def test_contest(case_id, i, method):
    c = CASES[case_id]
    L = np.array(c["contrasts"][i]["L"], dtype=float)
    ref = c[f"contest_{method}"][i]          # R: contest(m, L, joint = TRUE, ddf = method)
    r = ddfmod.contrast_test(get_fit(case_id), L, ddf=method.replace("_", "-"), joint=True)
    _close(r.num_df, ref["num_df"], rtol=0)
    _close(r.den_df, ref["den_df"])
    _close(r.F, ref["F"])
    _close(r.mean_sq, ref["mean_sq"])
    _logp(r.p_value, ref["p"])


@pytest.mark.parametrize("case_id,i", [(k, i) for k in KR_CASES for i in range(len(CASES[k]["contrasts"]))])
def test_krmodcomp(case_id, i):
    c = CASES[case_id]
    L = np.array(c["contrasts"][i]["L"], dtype=float)
    ref = c["krmodcomp"][i]                  # R: pbkrtest::KRmodcomp(m, L)$test["Ftest", ]
    r = ddfmod.contrast_test(get_fit(case_id), L, ddf="kenward-roger", joint=True)
    _close(r.den_df, ref["ddf"])
    _close(r.F, ref["F"])
    _logp(r.p_value, ref["p"])


# --- identities ------------------------------------------------------------------------------

def balanced_one_way(seed=4, groups=12, per=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    y = 3.0 + rng.normal(0, 1.0, groups)[g] + rng.normal(0, 1.0, g.size)
    return pd.DataFrame({"y": y, "g": g})


def test_balanced_one_way_intercept_has_groups_minus_one_df():
    # Balanced y ~ 1 + (1 | g): the mean of the group means is an exact t with G - 1 df,
    # so Satterthwaite's and Kenward-Roger's df are G - 1 exactly (Kenward & Roger 1997).
    m = quiet_fit("y ~ 1 + (1 | g)", balanced_one_way())
    assert m.coefficients["df"].iloc[0] == pytest.approx(11.0, rel=1e-5)
    assert m.coef_table("kenward-roger")["df"].iloc[0] == pytest.approx(11.0, rel=1e-5)
    # and the KR-adjusted SE equals the unadjusted one (no small-sample bias to correct)
    assert m.coef_table("kenward-roger")["std_error"].iloc[0] == pytest.approx(
        m.coef_table("satterthwaite")["std_error"].iloc[0], rel=1e-6)


def test_residual_and_normal_methods():
    m = get_fit("sleep_slope")
    res = m.coef_table("residual")
    assert (res["df"] == m.nobs - 2).all()                      # n - p
    _close(res["p_value"], 2 * stats.t.sf(np.abs(res["statistic"]), 178), rtol=1e-12)
    z = m.coef_table("normal")
    assert np.isinf(z["df"]).all()
    _close(z["p_value"], 2 * stats.norm.sf(np.abs(z["statistic"])), rtol=1e-12)
    half = z["conf_high"] - z["estimate"]
    _close(half, stats.norm.ppf(0.975) * z["std_error"], rtol=1e-12)


def test_intervals_use_t_with_the_df():
    co = get_fit("hsb_sector_slope").coefficients
    half = co["conf_high"] - co["estimate"]
    _close(half, stats.t.ppf(0.975, co["df"]) * co["std_error"], rtol=1e-12)
    wide = get_fit("hsb_sector_slope").coef_table(level=0.99)
    _close(wide["conf_high"] - wide["estimate"], stats.t.ppf(0.995, co["df"]) * co["std_error"], rtol=1e-12)


def test_ddf_recorded_and_refit_free():
    d = load("sleepstudy")
    m = quiet_fit("Reaction ~ Days + (Days | Subject)", d, ddf="kenward-roger")
    assert m.ddf == "kenward-roger" and m.df_method == "kenward-roger"
    _close(m.coefficients["std_error"], CASES["sleep_slope"]["kenward_roger"]["std_error"], rtol=1e-3)
    assert m.coef_table("satterthwaite").attrs["ddf"] == "satterthwaite"
    assert quiet_fit("Reaction ~ Days + (Days | Subject)", d).ddf == "satterthwaite"


def test_one_row_contrast_equals_coefficient_row():
    m = get_fit("hsb_sector_slope")
    co = m.coefficients
    for j, name in enumerate(m.fixef.index):
        c = np.eye(len(m.fixef))[j]
        r = ddfmod.contrast_test(m, c)
        assert r.kind == "t"
        assert r.den_df == pytest.approx(co.loc[name, "df"], rel=1e-12)
        assert r.statistic == pytest.approx(co.loc[name, "statistic"], rel=1e-12)


# --- summary -------------------------------------------------------------------------------

def test_summary_names_the_method():
    m = get_fit("sleep_slope")
    text = m.summary()
    assert "t value" in text and "Pr(>|t|)" in text and " df " in text
    assert "t-tests use Satterthwaite's method" in text
    z = quiet_fit("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), ddf="normal").summary()
    assert "z value" in z and "Pr(>|z|)" in z and "Wald z-tests" in z
    kr = quiet_fit("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), ddf="KR").summary()
    assert "Kenward-Roger's method" in kr


# --- bad input -------------------------------------------------------------------------------

def test_unknown_ddf():
    with pytest.raises(mlm.MLMError, match="Unknown ddf 'between'"):
        quiet_fit("Reaction ~ Days + (1 | Subject)", load("sleepstudy"), ddf="between")
    with pytest.raises(mlm.MLMError, match="Unknown ddf"):
        get_fit("sleep_slope").coef_table("fisher")


def test_kenward_roger_needs_reml():
    with pytest.raises(mlm.MLMError, match="needs a REML fit"):
        quiet_fit("Reaction ~ Days + (1 | Subject)", load("sleepstudy"), reml=False, ddf="kenward-roger")
    with pytest.raises(mlm.MLMError, match="only available for REML fits"):
        get_fit("sleep_slope_ml").coef_table("kenward-roger")
    with pytest.raises(mlm.MLMError, match="only available for REML fits"):
        mlm.anova(get_fit("sleep_slope_ml"), ddf="kenward-roger")


def test_kenward_roger_refuses_large_models_before_running(monkeypatch):
    d = load("scotssec")
    monkeypatch.setattr(kenward_roger, "KR_MAX_ENTRIES", 1000)
    with pytest.raises(mlm.MLMError, match="ddf='kenward-roger' would need about .* Use ddf='satterthwaite'"):
        quiet_fit("attain ~ verbal + (1 | primary) + (1 | second)", d, ddf="kenward-roger")


def test_contrast_of_wrong_width():
    m = get_fit("sleep_slope")
    with pytest.raises(mlm.MLMError, match=r"has 3 column\(s\) but the model has 2 fixed effects"):
        ddfmod.contrast_test(m, [1, 0, 0])
    with pytest.raises(mlm.MLMError, match=r"has 1 column\(s\) but the model has 2"):
        mlm.test(m, [[1]])
    with pytest.raises(mlm.MLMError, match="must be numeric"):
        ddfmod.contrast_test(m, ["a", "b"])
