"""fit.explain(): the words say what the numbers say.

Outside references: ``tests/reference/toolkit_comparison.json`` (written by
``tests/reference/toolkit_comparison.R``, lme4): ``slopes_as_outcomes`` (R&B's
intercepts-and-slopes-as-outcomes model on hsb, its fixef and simple slopes) and
``contextual`` (the within, between and contextual effects of ses). lme4's sleepstudy
estimates are quoted beside their asserts. Everything else is checked against the fit's
own table at the printed rounding (the explanation must not invent or recompute numbers)
or against an identity (contextual = between - within; a negated outcome flips signs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.report.explain import FEW_GROUPS, Explanation, explain
from support import fit, hsb_with_cses

REF = json.loads((Path(__file__).parent / "reference" / "toolkit_comparison.json").read_text())
RB = REF["slopes_as_outcomes"]
RB_FORMULA = "mathach ~ meanses*cses + sector*cses + (cses | school)"


def section(ex: Explanation, title: str) -> tuple:
    return dict(ex.sections).get(title, ())


def para(ex: Explanation, term: str) -> str:
    """The fixed-effects paragraph about ``term`` (it starts with the term's name)."""
    hits = [p for p in section(ex, "Fixed effects")
            if p.startswith(f"{term}: ") or p.startswith(f"{term} (") or p.startswith(f"{term},")]
    assert len(hits) == 1, (term, section(ex, "Fixed effects"))
    return hits[0]


def fmt(x, d=2):
    """d decimals; a small nonzero number that would print as 0 gets 2 significant digits."""
    if x != 0 and abs(x) < 0.5 * 10 ** -d:
        return f"{x:.2g}"
    s = f"{x:.{d}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


@pytest.fixture(scope="module")
def hsb():
    return hsb_with_cses()


@pytest.fixture(scope="module")
def rb(hsb):
    return fit(RB_FORMULA, hsb)


@pytest.fixture(scope="module")
def exam():
    return mlm.load_dataset("exam")


# --------------------------------------------------------------------------- every term
MODELS = {
    "sleep": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "rb": ("hsb_cses", RB_FORMULA),
    "centered": ("hsb", "mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)"),
    "factors": ("exam", "normexam ~ standLRT + sex + schgend + (1 | school)"),
    "interaction": ("exam", "normexam ~ standLRT * sex + (standLRT | school)"),
    "null": ("hsb", "mathach ~ 1 + (1 | school)"),
}


def _data(name, hsb):
    return hsb if name == "hsb_cses" else mlm.load_dataset(name)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_every_fixed_effect_is_explained(key, hsb):
    data, formula = MODELS[key]
    f = fit(formula, _data(data, hsb))
    ex = f.explain()
    assert isinstance(ex, Explanation) and str(ex) == str(explain(f))
    for term in f.fixef.index:
        p = para(ex, "Intercept" if term == "(Intercept)" else term)
        row = f.coefficients.loc[term]
        # the estimate's size and its interval at the printed rounding
        d = 3 if data == "exam" else 2
        assert fmt(abs(row["estimate"]), d) in p
        assert f"CI {fmt(row['conf_low'], d)} to {fmt(row['conf_high'], d)}" in p
        assert f"t({row['df']:.1f}) = {row['statistic']:.2f}" in p
        assert ("not significant" in p) == (row["p_value"] >= 0.05)
    # sample sizes at each level
    head = section(ex, "")[0]
    assert f"{f.nobs} observations" in head
    for g, n in f.ngroups.items():
        assert re.search(rf"\b{n} {g}", head)
    assert "Warnings" not in dict(ex.sections)                     # none of these needs one
    assert not re.search(r"[=^]\s*[a-z]+\s*\+", str(ex).split("\n", 1)[1].replace("+- 1.96", ""))


def test_rb_reads_without_the_formula_and_is_short(rb):
    text = str(rb.explain())
    assert len(text.splitlines()) < 30                             # issue 13: short enough to read
    assert "160 schools" in text and "7185 observations" in text
    assert "~" not in text                                         # no formula, no equations


# --------------------------------------------------------------------------- higher / lower
def test_sleepstudy_days_is_higher_and_flips_when_negated(sleep):
    f = fit("Reaction ~ Days + (Days | Subject)", sleep)
    p = para(f.explain(), "Days")
    # lme4: fixef(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))["Days"] = 10.46729
    assert "Reaction is 10.47 higher for each 1 unit higher Days" in p
    neg = sleep.assign(negReaction=-sleep["Reaction"])
    g = fit("negReaction ~ Days + (Days | Subject)", neg)
    q = para(g.explain(), "Days")
    assert "negReaction is 10.47 lower for each 1 unit higher Days" in q
    assert "CI -13.73 to -7.21" in q and "CI 7.21 to 13.73" in p   # the same interval, mirrored
    # slopes' spread: middle 95% = fixed slope +- 1.96 SD, in the slope's own sign
    r = [x for x in section(g.explain(), "Random effects") if x.startswith("The effect of Days")][0]
    sd = float(g.varcorr.query("var1 == 'Days' and var2 != var2")["sdcor"].iloc[0])
    lo, hi = -10.46729 - 1.96 * sd, -10.46729 + 1.96 * sd
    assert f"between {fmt(lo)} and {fmt(hi)}" in r
    # negating y negates both intercepts and slopes: their correlation (0.07) is unchanged
    assert "higher average negReaction tend to have higher Days slopes (correlation 0.07)" in r


@pytest.mark.parametrize("sign", [1, -1])
def test_factor_dummies_name_the_reference_and_direction(exam, sign):
    data = exam.assign(y=sign * exam["normexam"])
    f = fit("y ~ standLRT + sex + schgend + (1 | school)", data)
    ex = f.explain()
    for term, var, cat, ref in [("sexM", "sex", "M", "F"), ("schgendboys", "schgend", "boys", "mixed"),
                                ("schgendgirls", "schgend", "girls", "mixed")]:
        b = f.fixef[term]
        word = "higher" if b > 0 else "lower"
        assert f"y is {fmt(abs(b), 3)} {word} for {var} = {cat} than for {var} = {ref} " \
               "(the reference category)" in para(ex, term)
    # mlmRev's Exam: girls score higher (lme4's fixef sexM < 0 for normexam)
    assert ("lower" if sign == 1 else "higher") in para(ex, "sexM").split("(")[0]
    assert "sex = F, schgend = mixed" in para(ex, "Intercept")


def test_reference_category_set_in_the_formula(exam):
    f = fit('normexam ~ C(schgend, Treatment("girls")) + (1 | school)', exam)
    ex = f.explain()
    for term in f.fixef.index[1:]:
        assert "than for schgend = girls (the reference category)" in para(ex, term)


# --------------------------------------------------------------------------- R&B (lme4 numbers)
def test_rb_numbers_are_lme4s(rb):
    ex = rb.explain()
    r = dict(zip(RB["fixef_names"], RB["fixef"]))       # R: fixef(rb)
    assert f"the expected mathach is {fmt(r['(Intercept)'])}" in para(ex, "Intercept")
    assert f"have mathach {fmt(r['meanses'])} higher when cses = 0" in para(ex, "meanses")
    assert f"mathach is {fmt(r['cses'])} higher" in para(ex, "cses")
    assert "(a within-school effect: cses varies only within schools)" in para(ex, "cses")  # group-centered by hand
    assert f"mathach {fmt(r['sector'])} higher" in para(ex, "sector")
    p = para(ex, "meanses:cses")
    assert "the effect of cses is stronger in schools with higher meanses" in p
    assert f"its slope {fmt(r['meanses:cses'])} higher per unit of meanses" in p
    q = para(ex, "cses:sector")
    assert "the effect of cses is weaker in schools with sector = 1 than with sector = 0" in q
    assert f"its slope {fmt(-r['cses:sector'])} lower with sector = 1" in q


def test_rb_simple_slopes_are_r_and_mlm_simple_slopes(rb):
    ex = rb.explain()
    s = RB["simple_slopes_meanses_schools"]
    p = para(ex, "meanses:cses")
    # R: g[cses] + W g[meanses:cses] at W = mean(sch$meanses) + c(-1, 0, 1) sd(sch$meanses), over
    # schools (meanses is school-level; sch <- hsb[!duplicated(hsb$school), ])
    for w, slope, lab in zip(s["at"], s["slope"], ["mean - 1 SD", "mean", "mean + 1 SD"]):
        assert f"{fmt(slope)} at {'meanses = ' if lab == 'mean - 1 SD' else ''}{fmt(w)} ({lab})" in p
    assert "(with sector = 0)" in p                            # what simple_slopes holds at 0
    ss = mlm.simple_slopes(rb, "cses", "sector")
    q = para(ex, "cses:sector")
    assert f"{fmt(ss['slope'].iloc[0])} at sector = 0, {fmt(ss['slope'].iloc[1])} at sector = 1" in q
    assert "(with meanses = 0)" in q


def test_rb_random_part_in_words(rb):
    ex = rb.explain()
    rnd = section(ex, "Random effects")
    vc = rb.varcorr
    tau0 = vc.query("var1 == '(Intercept)' and var2 != var2")["sdcor"].iloc[0]
    tau1 = vc.query("var1 == 'cses' and var2 != var2")["sdcor"].iloc[0]
    rho = vc.query("var2 == 'cses'")["sdcor"].iloc[0]
    icc = mlm.icc(rb).loc["school", "icc"]
    assert f"standard deviation {fmt(tau0)} between them" in rnd[0]
    assert f"against {fmt(rb.sigma)} within them" in rnd[0]
    assert f"ICC: {100 * icc:.1f}% of the variation in mathach" in rnd[0]
    g = rb.fixef["cses"]
    assert f"between {fmt(g - 1.96 * tau1)} and {fmt(g + 1.96 * tau1)}" in rnd[1]
    assert "beyond what meanses and sector explain" in rnd[1]
    assert f"higher cses slopes (correlation {rho:.2f})" in rnd[1]


# --------------------------------------------------------------------------- centering
def test_within_between_and_contextual_effects():
    hsb = mlm.load_dataset("hsb")
    f = fit("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    ex = f.explain()
    c = REF["contextual"]   # R: lmer(mathach ~ cses + sesm + (1|school)), sesm = ave(ses, school)
    assert "the within-school effect of ses" in para(ex, "cwc(ses, school)")
    assert f"mathach is {fmt(c['within'])} higher" in para(ex, "cwc(ses, school)")
    assert "the between-school effect of ses" in para(ex, "gm(ses, school)")
    assert f"mathach {fmt(c['between'])} higher" in para(ex, "gm(ses, school)")
    ctx = [p for p in section(ex, "Fixed effects") if p.startswith("Contextual effect of ses")]
    assert len(ctx) == 1
    # identity (field notes): contextual = between - within = gm's coefficient in y ~ x + gm(x)
    same = fit("mathach ~ ses + gm(ses, school) + (1 | school)", hsb)
    row = same.coefficients.loc["gm(ses, school)"]
    assert f"mathach {fmt(c['contextual'])} higher" in ctx[0]           # R: 3.675
    assert f"mathach {fmt(row['estimate'])} higher" in ctx[0]
    assert f"CI {fmt(row['conf_low'])} to {fmt(row['conf_high'])}" in ctx[0]
    assert f"= {row['statistic']:.2f}" in ctx[0]


def test_negative_within_effect_says_lower():
    hsb = mlm.load_dataset("hsb").assign(neg=lambda d: -d["mathach"])
    f = fit("neg ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    ex = f.explain()
    assert "neg is 2.19 lower for each 1 unit of ses above the school's mean" in para(ex, "cwc(ses, school)")
    ctx = [p for p in section(ex, "Fixed effects") if p.startswith("Contextual")][0]
    assert "neg 3.68 lower" in ctx


# --------------------------------------------------------------------------- warnings
def _zero_variance_data():
    # R: zd, see toolkit_comparison.R (lme4 finds the group variance 0: isSingular TRUE)
    j, g = np.meshgrid(np.arange(8), np.arange(1, 13), indexing="ij")
    j, g = j.ravel(), g.ravel()
    x = (7 * j + 3 * g) % 8 - 3.5
    e = (5 * j + 11 * g) % 8 - 3.5
    return pd.DataFrame({"y": 2 + x + 0.5 * e, "x": x, "g": g})


def test_singular_fit_is_warned():
    assert REF["zero_variance"]["singular"]
    f = fit("y ~ x + (1 | g)", _zero_variance_data())
    assert f.singular
    w = section(f.explain(), "Warnings")
    assert any(x.startswith("Singular fit") for x in w)
    assert not any(x.startswith("Few groups") for x in w)            # 12 groups


def test_few_groups_warned_only_for_the_small_factor():
    pen = mlm.load_dataset("penicillin")
    f = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    w = section(f.explain(), "Warnings")
    assert len(w) == 1 and w[0].startswith("Few groups: only 6 sample groups")
    assert "plate" not in w[0] and FEW_GROUPS == 10


def test_few_subjects(sleep):
    keep = sleep["Subject"].astype(str).isin(sorted(sleep["Subject"].astype(str).unique())[:5])
    f = fit("Reaction ~ Days + (1 | Subject)", sleep[keep])
    w = section(f.explain(), "Warnings")
    assert any("only 5 Subject groups" in x for x in w)


# --------------------------------------------------------------------------- form
def test_normal_df_says_z(sleep):
    f = fit("Reaction ~ Days + (Days | Subject)", sleep, ddf="normal")
    ex = f.explain()
    assert "Wald z-tests" in section(ex, "")[0] and "z = 6.77" in para(ex, "Days")


def test_html_and_str(rb):
    ex = rb.explain()
    h = ex._repr_html_()
    assert "<b>Fixed effects</b>" in h and "<li>meanses:cses (cross-level)" in h
    assert all(len(line) <= 100 for line in str(ex).splitlines())


def test_not_a_fit_is_a_clear_error():
    with pytest.raises(mlm.MLMError, match=r"explain\(\)'s argument must be a fitted model"):
        explain("mathach ~ ses + (1 | school)")


# --------------------------------------------------------------------------- more shapes
def test_dummy_moderator_is_named_by_its_categories(exam):
    f = fit("normexam ~ standLRT * sex + schavg * standLRT + (1 | school)", exam)
    ex = f.explain()
    b = f.fixef["standLRT:sexM"]
    ss = mlm.simple_slopes(f, "standLRT", "sexM")
    p = para(ex, "standLRT:sexM")
    word, strength = ("higher", "stronger") if b > 0 else ("lower", "weaker")
    assert f"the effect of standLRT is {strength} with sex = M than with sex = F" in p
    assert f"its slope {fmt(abs(b), 3)} {word} with sex = M" in p
    assert f"Slopes of standLRT (with schavg = 0): {fmt(ss['slope'].iloc[0], 3)} at sex = F, " \
           f"{fmt(ss['slope'].iloc[1], 3)} at sex = M" in p
    q = para(ex, "standLRT:schavg")
    assert "(cross-level)" in q and "(with sex = F)" in q             # the other moderator at 0


def test_within_effect_moderated_by_a_school_variable(hsb):
    f = fit("mathach ~ cwc(ses, school)*sector + gm(ses, school) + (cwc(ses, school) | school)", hsb)
    ex = f.explain()
    p = para(ex, "cwc(ses, school):sector")
    b = f.fixef["cwc(ses, school):sector"]
    assert b < 0 and "the within-school effect of ses is weaker in schools with sector = 1" in p
    r = section(ex, "Random effects")[1]
    assert "beyond what sector explains" in r and "among schools with sector = 0" in r


def test_uncorrelated_slopes_name_the_factor(sleep):
    f = fit("Reaction ~ Days + (Days || Subject)", sleep)
    rnd = section(f.explain(), "Random effects")
    assert len(rnd) == 2 and rnd[1].startswith("The effect of Days varies between Subjects:")
    assert "correlation" not in " ".join(rnd)


def test_dropped_rows_are_counted(sleep):
    data = sleep.copy()
    data.loc[[0, 5, 17], "Reaction"] = np.nan
    f = fit("Reaction ~ Days + (1 | Subject)", data)
    head = section(f.explain(), "")[0]
    assert "on 177 observations (3 row(s) with missing values left out)" in head
    assert data["Reaction"].isna().sum() == 3                       # the caller's data untouched


def test_glmm_fit_is_read_by_explain_glmm():
    # GLMM fits are read in odds ratios by mlm.report.explain_glmm (tests/test_explain_glmm.py)
    cbpp = mlm.load_dataset("cbpp")
    g = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    assert str(explain(g)) == str(g.explain())
    assert "odds ratio" in str(explain(g))
