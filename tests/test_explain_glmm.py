"""mlm.report.explain_glmm: a glmer fit in words (odds and rate ratios, MOR, latent ICC).

Numbers printed are checked against lme4 (tests/reference/report_glmm.R/.json): the odds
and rate ratios are R's ``exp(fixef(m))`` at the printed 2 decimals (the estimates agree to
1e-3 relative, so a printed ratio is within 0.005 + 1e-3 * ratio of R's); the median odds
ratio is Merlo's formula on lme4's variance; the latent ICC is performance's
``icc(m)$ICC_adjusted`` (1e-3 relative: lme4's variance agrees to 4e-4).
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
from glmm_cases import FIXEF_RTOL, R, case, values
from mlm.report.explain_glmm import _Scale, median_ratio
from mlm.toolkit.glmm_variance import latent_icc


def _line(text, start):
    """The (unwrapped) paragraph of the explanation that starts with ``start``."""
    for _, paras in case_sections(text):
        for p in paras:
            if p.startswith(start):
                return p
    raise AssertionError(f"no paragraph starts with {start!r}")


def case_sections(expl):
    return expl.sections


def _printed_ratio(par, noun):
    m = re.search(rf"\({noun} ([0-9.]+), 95% CI ([0-9.]+) to ([0-9.]+);", par)
    assert m, par
    return [float(x) for x in m.groups()]


@pytest.fixture(scope="module")
def logit():
    return case("logit").explain()


def test_every_term_mentioned_with_r_odds_ratio_and_direction(logit):
    fit = case("logit")
    ors, lo, hi = values("logit", "exp_fixef"), values("logit", "exp_conf_low"), values("logit", "exp_conf_high")
    for k, term in enumerate(fit.fixef.index):
        if term == "(Intercept)":
            par = _line(logit, "Intercept:")
            got = _printed_ratio(par, "odds")
        else:
            par = _line(logit, f"{term}:")
            got = _printed_ratio(par, "odds ratio")
            # R: exp(fixef(m)) > 1 -> "times as high (..% higher)", < 1 -> "% lower"
            if ors[k] > 1:
                assert re.search(r"are [0-9.]+ times as high \([0-9.]+% higher\)", par), par
                assert "% lower" not in par
            else:
                assert re.search(r"are [0-9.]+% lower \([0-9.]+ times as high\)", par), par
                assert "% higher" not in par
        tol = 0.005 + FIXEF_RTOL.get("logit", 1e-3) * ors[k]
        # R: exp(fixef(m)), exp(fixef(m) -+ qnorm(0.975) * sqrt(diag(vcov(m))))
        assert got[0] == pytest.approx(ors[k], abs=tol)
        assert got[1] == pytest.approx(lo[k], abs=0.005 + 0.01 * lo[k])   # SEs agree to 1e-2
        assert got[2] == pytest.approx(hi[k], abs=0.005 + 0.01 * hi[k])


def test_success_level_and_reference_categories_named(logit):
    text = str(logit)
    assert "have use = Y, the level modelled as the success (the second level of use, as in R)" \
        in " ".join(text.split())
    assert "for urban = Y than for urban = N (the reference category)" in _line(logit, "urbanY:")
    for lv in ("1", "2", "3+"):
        assert f"for livch = {lv} than for livch = 0 (the reference category)" in _line(logit, f"livch{lv}:")
    assert "when urban = N, livch = 0, age = 0" in _line(logit, "Intercept:")
    assert "a typical district" in _line(logit, "Intercept:")
    assert "unit-specific" in str(logit)


def test_mor_and_latent_icc_against_r(logit):
    fit = case("logit")
    r = R["logit"]
    # Merlo et al. 2006: MOR = exp(sqrt(2 tau2) qnorm(0.75)), on lme4's tau2: an identity
    assert median_ratio(r["tau2"]) == pytest.approx(r["mor"], rel=1e-12)
    par = _line(logit, "Districts differ")
    mor = float(re.search(r"Median odds ratio \(MOR, Merlo et al\. 2006\) ([0-9.]+)", par).group(1))
    assert mor == pytest.approx(r["mor"], abs=0.005 + 1e-3)
    assert "log-odds scale" in par
    # performance::icc(m)$ICC_adjusted (latent residual pi^2/3)
    assert latent_icc(fit)["district"] == pytest.approx(r["icc_adjusted"], rel=1e-3)
    icc = float(re.search(r"Latent-scale ICC: ([0-9.]+)%", par).group(1))
    assert icc == pytest.approx(100 * r["icc_adjusted"], abs=0.05 + 0.1 * r["icc_adjusted"])
    assert "pi^2/3" in par


@pytest.mark.parametrize("name", ["probit", "cloglog"])
def test_probit_and_cloglog_say_their_scale_without_odds_ratios(name):
    fit = case(name)
    expl = fit.explain()
    text = " ".join(str(expl).split())
    fixed = dict(expl.sections)["Fixed effects"]
    assert not any("odds ratio" in p for p in fixed)
    assert not any("odds" in p for p in fixed)
    if name == "probit":
        assert "Probit coefficients are not odds ratios" in text
        assert "z-score" in fixed[1]
    else:
        assert "ratio of hazards" in text and "not an odds ratio" in text
        assert "log(-log(1 - p))" in fixed[1]
    b = values(name, "fixef")
    for k, term in enumerate(fit.fixef.index[1:], 1):
        par = _line(expl, f"{term}:")
        assert f" {'higher' if b[k] > 0 else 'lower'} " in par       # sign of R's fixef(m)
    # performance::icc(m)$ICC_adjusted: residual 1 (probit), pi^2/6 (cloglog)
    assert latent_icc(fit)["district"] == pytest.approx(R[name]["icc_adjusted"], rel=1e-3)
    assert R[name]["residual_variance_latent"] == pytest.approx(
        {"probit": 1.0, "cloglog": math.pi ** 2 / 6}[name], rel=1e-12)
    assert "Median odds ratio" not in text


def test_poisson_rate_ratios_and_median_rate_ratio():
    fit = case("poisson")
    expl = fit.explain()
    rr = values("poisson", "exp_fixef")                      # R: exp(fixef(m))
    for k, term in enumerate(fit.fixef.index[1:], 1):
        par = _line(expl, f"{term}:")
        assert "the expected rate of incidence (per unit of size) is" in par
        assert _printed_ratio(par, "rate ratio")[0] == pytest.approx(rr[k], abs=0.005 + 1e-3)
        assert "% lower" in par and rr[k] < 1
        assert f"for period = {term[-1]} than for period = 1 (the reference category)" in par
    par = _line(expl, "Herds differ")
    mrr = float(re.search(r"Median rate ratio ([0-9.]+)", par).group(1))
    assert mrr == pytest.approx(R["poisson"]["mor"], abs=0.005 + 1e-3)
    assert "No ICC is given" in par
    assert latent_icc(fit) == {}


def test_binomial_counts_name_the_successes():
    fit = case("cbind")
    expl = fit.explain()
    text = " ".join(str(expl).split())
    assert "successes in 842 trials" in text                  # sum(cbpp$size)
    par = _line(expl, "period2:")
    assert "the odds of incidence (the successes of cbind(incidence, size - incidence))" in par
    assert _printed_ratio(par, "odds ratio")[0] == pytest.approx(values("cbind", "exp_fixef")[1],
                                                                  abs=0.005 + 1e-3)
    assert "Few groups" not in text                           # 15 herds


def test_centering_within_between_and_contextual():
    fit = case("centered")
    expl = fit.explain()
    b = values("centered", "fixef")       # (Intercept), age_c, age_m, urbanY
    within = _line(expl, "cwc(age, district), the within-district effect of age")
    assert "within the same district" in within and "above the district's mean" in within
    assert _printed_ratio(within, "odds ratio")[0] == pytest.approx(math.exp(b[1]), abs=0.006)
    assert "higher" in within and b[1] > 0
    between = _line(expl, "gm(age, district), the between-district effect of age")
    assert "in districts whose mean age is 1 unit higher" in between
    assert "lower" in between and b[2] < 0
    ctx = _line(expl, "Contextual effect of age")
    # between minus within (field notes): exp(age_m - age_c) from R's fixef(m)
    assert _printed_ratio(ctx, "odds ratio")[0] == pytest.approx(math.exp(b[2] - b[1]), abs=0.006)
    assert "lower" in ctx and b[2] - b[1] < 0


def test_cross_level_interaction_and_random_slope():
    fit = case("slopes")
    expl = fit.explain()
    b = values("slopes", "fixef")        # ..., urbanY (3), ..., age_m:urbanY (7)
    par = _line(expl, "gm(age, district):urbanY (cross-level)")
    # urbanY > 0 and the interaction < 0 in R: the urban difference is weaker where mean age is higher
    assert b[3] > 0 > b[7]
    assert "the effect of urban = Y (against N) is weaker in districts with higher gm(age, district)" in par
    assert f"its odds ratio is multiplied by {math.exp(b[7]):.2f}" in par
    assert "Odds ratios of urbanY" in par and "(mean + 1 SD)" in par
    slope = _line(expl, "The effect of urbanY varies between districts")
    sd = [r["sdcor"] for r in R["slopes"]["varcorr"] if r["var1"] == "urbanY" and r.get("var2") is None][0]
    lo, hi = math.exp(b[3] - 1.96 * sd), math.exp(b[3] + 1.96 * sd)
    m = re.search(r"odds ratios for urbanY lie between ([0-9.]+) and ([0-9.]+)", slope)
    assert float(m.group(1)) == pytest.approx(lo, rel=0.02) and float(m.group(2)) == pytest.approx(hi, rel=0.02)
    # performance::icc(m)$ICC_adjusted with a random slope (Johnson 2014)
    assert latent_icc(fit)["district"] == pytest.approx(R["slopes"]["icc_adjusted"], rel=1e-3)
    for term in fit.fixef.index[1:]:
        assert any(p.startswith(term) for p in dict(expl.sections)["Fixed effects"]), term


@pytest.mark.parametrize("b, words", [
    (math.log(2.0), "are 2.00 times as high (100% higher)"),
    (math.log(0.65), "are 35% lower (0.65 times as high)"),
    (math.log(1.0003), "are 1.00 times as high (0.03% higher)"),
    (math.log(25.0), "are 25.00 times as high (higher)"),
    (0.0, "are no different"),
])
def test_ratio_words(b, words):
    sc = _Scale(case("logit"))
    assert sc.change(b) == f"the odds of use = Y {words}"


def _simulated(seed, groups, per, effect):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    y = (rng.random(groups * per) < 1 / (1 + np.exp(-(effect * x)))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_warnings_few_groups_and_singular():
    data = _simulated(3, 5, 40, 0.8)     # no group effect at all: the variance goes to zero
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mlm.glmer("y ~ x + (1 | g)", data)
    assert fit.singular
    warn = dict(fit.explain().sections)["Warnings"]
    assert any(w.startswith("Few groups: only 5 g groups") for w in warn)
    assert any(w.startswith("Singular fit") for w in warn)
    assert fit.explain().sections[1][1][1].startswith("x: the odds of y = 1 are")


def test_separation_is_explained():
    data = _simulated(4, 20, 20, 0.5)
    data["grp"] = np.where(np.arange(len(data)) % 10 == 0, "b", "a")
    data.loc[data["grp"] == "b", "y"] = 1           # every 'b' is a success: separation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mlm.glmer("y ~ x + C(grp) + (1 | g)", data)
    warn = dict(fit.explain().sections)["Warnings"]
    sep = [w for w in warn if w.startswith("Separation")]
    assert sep and "should not be reported as estimated" in sep[0]


def test_linear_fits_unchanged_and_non_fits_refused():
    sleep = mlm.load_dataset("sleepstudy")
    text = str(mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep).explain())
    assert text.startswith("A linear mixed model of Reaction")
    from mlm.report.explain import explain
    with pytest.raises(mlm.MLMError, match=r"explain\(\)'s argument must be a fitted model from "
                                           r"mlm.lmer or mlm.glmer.*not DataFrame"):
        explain(sleep)


def test_html_view():
    html = case("cbind").explain()._repr_html_()
    assert "<b>Fixed effects</b>" in html and "odds ratio" in html


def test_proportion_and_logical_outcomes_are_named():
    cbpp = mlm.load_dataset("cbpp")
    prop = mlm.glmer("I(incidence / size) ~ period + (1 | herd)", cbpp, weights="size")
    text = " ".join(str(prop.explain()).split())
    assert "99 successes in 842 trials (11.8%; the outcome is the proportion I(incidence / size) " \
           "with the weights as trials)" in text          # sum(cbpp$incidence), sum(cbpp$size)
    assert "the odds of success in I(incidence / size) are" in text
    d = mlm.load_dataset("contraception")
    d["ybool"] = d["use"] == "Y"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = " ".join(str(mlm.glmer("ybool ~ urban + (1 | district)", d).explain()).split())
    assert "have ybool = True, the level modelled as the success (TRUE, as in R)" in text
