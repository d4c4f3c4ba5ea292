"""fit.summary(style="hlm"): the HLM2 layout of a two-level fit (mlm/report/hlm_style.py).

Published values: Raudenbush & Bryk (2002), Hierarchical Linear Models, 2nd ed., tables
4.2 and 4.5 (High School and Beyond), and HLM 6's own output of the null model as
reproduced by UCLA's statistical consulting group for Singer (1998, J. Educ. Behav.
Stat. 23(4), p. 329): sigma^2 39.14831, tau 8.61431, reliability 0.901, G00 12.636972
(SE 0.244412; robust SE 0.243628), "INTRCPT1, U0  2.93501  8.61431  159  1660.23264",
deviance 47116.793475 with 2 parameters. HLM stops iterating at a "small change in
likelihood function", before the REML optimum that lme4 and mlm reach, so its digits
beyond the third or fourth are not ours; the published values are checked at the
precision R&B print them. The other checks are identities: every number printed equals
the fit's own (fit.coefficients, mlm.variance_tests, mlm.robust, fit.varcorr) at the
printed rounding, each of which is itself tested against R.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.report.hlm_style import HLMStyleError, hlm_summary
from support import fit, hsb_with_cses

# a fixed-effects row: "    MEANSES, G01    5.339118   0.369299   14.457   151.0   <0.001   157"
_ROW = re.compile(r"^    (?P<name>\S.*?), (?P<g>G\d+)\s+(?P<est>-?\d+\.\d{6})\s+(?P<se>\d+\.\d{6})"
                  r"\s+(?P<t>-?\d+\.\d{3})\s+(?P<df>\S+)\s+(?P<p>\S+)\s+(?P<hlmdf>\d+)$")
T45 = "mathach ~ meanses*cses + sector*cses + (cses | school)"


@pytest.fixture(scope="module")
def hsb_rb():
    """R&B's own cses (ses minus the school file's MEANSES), as in test_inference_hlm.py."""
    d = mlm.load_dataset("hsb")
    d["cses"] = d["ses"] - d["meanses"]
    return d


@pytest.fixture(scope="module")
def t45(hsb_rb):
    return fit(T45, hsb_rb)


@pytest.fixture(scope="module")
def null_fit():
    return fit("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))


def _section(text, title):
    """The lines of the table that follows ``title`` (up to its closing rule)."""
    lines = text.splitlines()
    i = lines.index(title)
    rules = [j for j in range(i, len(lines)) if set(lines[j]) == {"-"}]
    return lines[rules[1] + 1:rules[2]]


def _fixed_rows(text, title="Final estimation of fixed effects"):
    rows = [_ROW.match(line) for line in _section(text, title)]
    return [m.groupdict() for m in rows if m]


def _p(text):
    return 0.0005 if text == "<0.001" else float(text)


def _check_p(printed, p):
    if printed == "<0.001":
        assert p < 0.001
    else:
        assert float(printed) == round(p, 3)


# --- the equations -----------------------------------------------------------------------------
def test_table_4_5_equations_name_each_predictor_at_its_level(t45):
    text = t45.summary(style="hlm")
    assert "    MATHACH = B0 + B1*(CSES) + R" in text.splitlines()
    assert "    B0 = G00 + G01*(MEANSES) + G02*(SECTOR) + U0" in text.splitlines()
    assert "    B1 = G10 + G11*(MEANSES) + G12*(SECTOR) + U1" in text.splitlines()


@pytest.mark.parametrize("formula, level1, level2", [
    ("mathach ~ 1 + (1 | school)", "MATHACH = B0 + R", ["B0 = G00 + U0"]),
    # a level-1 predictor without a random slope: its coefficient does not vary (no U)
    ("mathach ~ cses + female + (1 | school)", "MATHACH = B0 + B1*(CSES) + B2*(FEMALE) + R",
     ["B0 = G00 + U0", "B1 = G10", "B2 = G20"]),
    # a cross-level interaction on a non-random slope predicts that slope
    ("mathach ~ cses + female + female:meanses + (1 | school)",
     "MATHACH = B0 + B1*(CSES) + B2*(FEMALE) + R",
     ["B0 = G00 + U0", "B1 = G10", "B2 = G20 + G21*(MEANSES)"]),
    # a random slope without an intercept variance, and one without a fixed effect
    ("mathach ~ cses + (0 + cses | school)", "MATHACH = B0 + B1*(CSES) + R",
     ["B0 = G00", "B1 = G10 + U1"]),
    ("mathach ~ 1 + (cses | school)", "MATHACH = B0 + B1*(CSES) + R",
     ["B0 = G00 + U0", "B1 = U1"]),
    # uncorrelated terms on the same factor are one HLM model with a diagonal tau
    ("mathach ~ cses + meanses + (cses || school)", "MATHACH = B0 + B1*(CSES) + R",
     ["B0 = G00 + G01*(MEANSES) + U0", "B1 = G10 + U1"]),
    # centering written in the formula keeps its name
    ("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)",
     "MATHACH = B0 + B1*(CWC(SES, SCHOOL)) + R",
     ["B0 = G00 + G01*(GM(SES, SCHOOL)) + U0", "B1 = G10"]),
])
def test_equations(formula, level1, level2):
    text = fit(formula, hsb_with_cses()).summary(style="hlm")
    lines = [line.strip() for line in text.splitlines()]
    assert level1 in lines
    i = lines.index("Level-2 Model")
    assert lines[i + 1:i + 1 + len(level2)] == level2
    assert lines[i + 1 + len(level2)] == ""      # and no other level-2 equation


# --- the fixed effects -------------------------------------------------------------------------
def test_table_4_5_gamma_labels_carry_rb_estimates(t45):
    # R&B (2002) table 4.5 (HLM, REML): G00 12.1136, G01 5.3391, G02 1.2167, G10 2.9388,
    # G11 1.0389, G12 -1.6426; matched at R&B's 4 decimals (the label is right when it is)
    rows = {(r["name"], r["g"]): float(r["est"]) for r in _fixed_rows(t45.summary(style="hlm"))}
    published = {("INTRCPT2", "G00"): 12.1136, ("MEANSES", "G01"): 5.3391,
                 ("SECTOR", "G02"): 1.2167, ("INTRCPT2", "G10"): 2.9388,
                 ("MEANSES", "G11"): 1.0389, ("SECTOR", "G12"): -1.6426}
    assert {k: round(v, 4) for k, v in rows.items()} == published


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger", "normal"])
def test_fixed_effects_equal_the_fits_coefficients(hsb_rb, ddf):
    m = fit(T45, hsb_rb, ddf=ddf)
    text = m.summary(style="hlm")
    co = m.coefficients
    # the order HLM prints: by coefficient (B0: intercept, meanses, sector; B1: cses, ...)
    order = ["(Intercept)", "meanses", "sector", "cses", "meanses:cses", "cses:sector"]
    rows = _fixed_rows(text)
    assert [r["g"] for r in rows] == ["G00", "G01", "G02", "G10", "G11", "G12"]
    for r, term in zip(rows, order):
        c = co.loc[term]
        assert float(r["est"]) == round(c["estimate"], 6)
        assert float(r["se"]) == round(c["std_error"], 6)
        assert float(r["t"]) == round(c["statistic"], 3)
        assert r["df"] == f"{c['df']:.1f}"               # the fit's own df ("inf" for z)
        _check_p(r["p"], c["p_value"])
        assert int(r["hlmdf"]) == 160 - 3                # HLM: J - F_q = 160 - 3 (R&B table 4.5)
    from mlm.inference.ddf import method_line
    assert method_line(ddf) in text


def test_hlm_df_of_a_non_random_coefficient_is_n_minus_p():
    m = fit("mathach ~ cses + (1 | school)", hsb_with_cses())
    rows = _fixed_rows(m.summary(style="hlm"))
    assert [int(r["hlmdf"]) for r in rows] == [160 - 1, 7185 - 2]


def test_robust_table_equals_mlm_robust_cr0(t45):
    text = t45.summary(style="hlm", robust="CR0")
    title = "(with robust standard errors, CR0, clustered on school)"
    rows = _fixed_rows(text, title)
    rob = mlm.robust(t45, "CR0")
    order = ["(Intercept)", "meanses", "sector", "cses", "meanses:cses", "cses:sector"]
    assert len(rows) == 6
    for r, term in zip(rows, order):
        c = rob.loc[term]
        assert float(r["est"]) == round(c["estimate"], 6)
        assert float(r["se"]) == round(c["std_error"], 6)
        assert float(r["t"]) == round(c["statistic"], 3)
        assert float(r["df"]) == round(c["df"], 1)
        _check_p(r["p"], c["p_value"])
    assert "clubSandwich's Satterthwaite df for CR0" in text
    assert title not in t45.summary(style="hlm")     # only when asked


# --- variance components -----------------------------------------------------------------------
def test_variance_components_equal_variance_tests(t45):
    text = t45.summary(style="hlm")
    vt = mlm.variance_tests(t45)
    rows = _section(text, "Final estimation of variance components")
    for label, name in [("INTRCPT1, U0", "(Intercept)"), ("CSES slope, U1", "cses")]:
        line = next(r for r in rows if r.startswith(label))
        sd, var, df, chi, p = line[len(label):].split()
        v = vt.loc[name]
        assert (float(sd), float(var), int(df), float(chi)) == (
            round(v["sd"], 5), round(v["variance"], 5), v["df"], round(v["chi_square"], 5))
        _check_p(p, v["p_value"])
    level1 = next(r for r in rows if r.startswith("level-1, R")).split()[2:]
    assert [float(x) for x in level1] == [round(t45.sigma, 5), round(t45.sigma ** 2, 5)]
    for label, name in [("INTRCPT1, B0", "(Intercept)"), ("CSES, B1", "cses")]:
        line = next(x for x in text.splitlines() if x.strip().startswith(label))
        assert float(line.split()[-1]) == round(vt.loc[name, "reliability"], 3)


def test_tau_and_its_correlations_equal_varcorr(t45):
    lines = [x.split() for x in t45.summary(style="hlm").splitlines()]
    vc = t45.varcorr
    t00, t11 = vc["vcov"].iloc[0], vc["vcov"].iloc[1]
    t01, r01 = vc["vcov"].iloc[2], vc["sdcor"].iloc[2]
    assert ["INTRCPT1,B0", f"{t00:.5f}", f"{t01:.5f}"] in lines
    assert ["CSES,B1", f"{t01:.5f}", f"{t11:.5f}"] in lines
    assert ["CSES,B1", f"{r01:.3f}", "1.000"] in lines
    assert ["sigma^2", "=", f"{t45.sigma ** 2:.5f}"] in lines


def test_null_model_shows_table_4_2(null_fit):
    text = null_fit.summary(style="hlm")
    lines = text.splitlines()
    # R&B (2002) table 4.2 / HLM 6: tau 8.614 (8.61431), sigma^2 39.148 (39.14831)
    tau = next(x for x in lines if x.strip().startswith("INTRCPT1,B0"))
    assert round(float(tau.split()[1]), 3) == 8.614
    sig = next(x for x in lines if x.startswith("sigma^2"))
    assert round(float(sig.split()[-1]), 3) == 39.148
    # HLM: "INTRCPT1, U0  2.93501  8.61431  159  1660.23264": matched at R&B's printed
    # precision (sd and variance .001, chi-square .01)
    u0 = next(x for x in _section(text, "Final estimation of variance components")
              if x.startswith("INTRCPT1, U0")).split()[2:]
    assert round(float(u0[0]), 3) == 2.935 and round(float(u0[1]), 3) == 8.614
    assert int(u0[2]) == 159 and round(float(u0[3]), 2) == 1660.23 and u0[4] == "<0.001"
    rel = next(x for x in lines if x.strip().startswith("INTRCPT1, B0"))
    assert rel.split()[-1] == "0.901"                       # HLM: reliability 0.901
    g00 = _fixed_rows(text)[0]
    assert (g00["g"], round(float(g00["est"]), 3), round(float(g00["se"]), 3), g00["hlmdf"]) == \
        ("G00", 12.637, 0.244, "159")                       # HLM: 12.636972, 0.244412, df 159
    assert "Deviance = 47116.79" in text                    # HLM: 47116.793475
    assert "Number of estimated parameters = 2" in text     # HLM: 2 (REML: sigma^2, tau)


def test_null_model_robust_se_is_hlms(null_fit):
    rows = _fixed_rows(null_fit.summary(style="hlm", robust="CR0"),
                       "(with robust standard errors, CR0, clustered on school)")
    assert float(rows[0]["se"]) == pytest.approx(0.243628, abs=2e-6)   # HLM: robust SE 0.243628


def test_ml_fit_says_so_and_counts_every_parameter():
    m = fit("mathach ~ cses + (1 | school)", hsb_with_cses(), reml=False)
    text = m.summary(style="hlm")
    assert "Method of estimation: full maximum likelihood" in text
    assert "Number of estimated parameters = 4" in text     # 2 fixed, tau00, sigma^2
    assert f"Deviance = {m.deviance:.6f}" in text.splitlines()


def test_groups_without_their_own_regression_are_counted():
    d = hsb_with_cses()
    first = d["school"].iloc[0]
    keep = (d["school"] != first) | ~d["school"].duplicated()  # one row left in one school
    text = fit("mathach ~ cses + (cses | school)", d[keep]).summary(style="hlm")
    assert ("The chi-square statistics reported above are based on only 159 of 160 units "
            "that had sufficient data for computation.") in text


def test_no_chi_square_when_no_group_has_its_own_regression(hsb_rb):
    # R&B's cses and cwc(ses) differ by a constant within each school: collinear with the
    # intercept in every school's own regression, not in the pooled fixed part
    text = fit("mathach ~ cses + cwc(ses, school) + (1 | school)", hsb_rb).summary(style="hlm")
    u0 = next(x for x in text.splitlines() if x.startswith("INTRCPT1, U0")).split()
    assert u0[-3:] == ["-", "-", "-"]
    assert "Chi-square tests and reliabilities not computed: no group of 'school'" in text


def test_default_summary_is_unchanged(t45):
    assert t45.summary(style="lme4") == t45.summary()
    assert "Level-1 Model" not in t45.summary()


# --- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("formula, match", [
    ("mathach ~ ses + (1 | school) + (1 | sector)",
     r"2 grouping factors \(school, sector\), which HLM2 cannot express.*fit.summary\(\)"),
    ("mathach ~ ses + (1 | sector/school)",
     r"three-level and cross-classified.*Use the default layout: fit.summary\(\)"),
    ("mathach ~ ses + (1 | school) + (1 | school)",
     r"cannot lay this model out: the random coefficient '\(Intercept\)' appears in two terms"),
])
def test_models_hlm2_cannot_express(formula, match):
    m = fit(formula, mlm.load_dataset("hsb"))
    with pytest.raises(HLMStyleError, match=match):
        m.summary(style="hlm")


@pytest.mark.parametrize("kw, match", [
    ({"style": "HLM7"}, r"style='HLM7' is not a summary layout; use one of 'lme4', 'hlm'"),
    ({"style": "hlm", "robust": "HC3"}, r"robust='HC3': type='HC3' is not available"),
])
def test_bad_options(null_fit, kw, match):
    with pytest.raises(mlm.MLMError, match=match):
        null_fit.summary(**kw)


def test_generalised_fit_gets_the_hglm_layout():
    # the HGLM layout itself is tested in tests/test_hlm_glmm.py
    m = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                  mlm.load_dataset("cbpp"), family="binomial")
    assert m.summary(style="hlm").startswith("Two-level Binomial model as HLM2 lays it out")
    assert m.summary(style="lme4") == m.summary()


def test_not_a_fit():
    with pytest.raises(HLMStyleError, match=r"must be a fitted model from mlm.lmer.*not DataFrame"):
        hlm_summary(pd.DataFrame({"y": [1.0]}))


def test_data_untouched():
    d = hsb_with_cses()
    before = d.copy()
    fit(T45, d).summary(style="hlm", robust="CR0")
    pd.testing.assert_frame_equal(d, before)
    assert np.isfinite(before["cses"]).all()
