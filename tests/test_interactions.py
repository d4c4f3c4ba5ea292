"""mlm.interactions against R: simple slopes and Johnson-Neyman points computed from lme4's
fixef and vcov by Preacher, Curran & Bauer's formulas; cross-level detection; identities.

Reference numbers: ``tests/reference/toolkit_comparison.json`` (``slopes_as_outcomes``,
``contextual``), written by ``tests/reference/toolkit_comparison.R`` (R 4.2.2, lme4 1.1.31).
Model: R&B's intercepts-and-slopes-as-outcomes model
``mathach ~ meanses * cses + sector * cses + (cses | school)``, cses = ses - ave(ses, school), REML.
R's numbers use qnorm (Wald z), so the fits here use ddf="normal" (infinite df); with the
default Satterthwaite df the same code gives t-tests (test_slopes_use_the_fits_df).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from support import fit, hsb_with_cses
from mlm.toolkit.interactions import (InteractionError, JohnsonNeyman, _jn_solve, cross_level,
                                      johnson_neyman, simple_slopes)

REF = json.loads((Path(__file__).parent / "reference" / "toolkit_comparison.json").read_text())
RB = REF["slopes_as_outcomes"]
RB_FORMULA = "mathach ~ meanses*cses + sector*cses + (cses | school)"
COLS = ["slope", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


@pytest.fixture(scope="module")
def hsb():
    return hsb_with_cses()


@pytest.fixture(scope="module")
def rb(hsb):
    return fit(RB_FORMULA, hsb, ddf="normal")  # z-tests, as the R reference (qnorm)


@pytest.fixture(scope="module")
def rb_base(hsb):
    return fit("mathach ~ meanses + sector + cses + (cses | school)", hsb, ddf="normal")


def r_name(name):
    """R writes the sector interaction as cses:sector; compare terms as sets of parts."""
    return frozenset(name.split(":"))


def test_fixef_and_vcov_match_lme4(rb):
    names = [r_name(n) for n in RB["fixef_names"]]
    order = [names.index(r_name(n)) for n in rb.fixef.index]
    # R: fixef(rb), vcov(rb)
    np.testing.assert_allclose(rb.fixef.to_numpy(), np.array(RB["fixef"])[order], rtol=1e-4)
    V = np.array(RB["vcov"])[np.ix_(order, order)]
    np.testing.assert_allclose(rb.vcov.to_numpy(), V, rtol=2e-3, atol=1e-7)


@pytest.mark.parametrize("moderator,key,given", [("meanses", "simple_slopes_meanses_schools", False),
                                                 ("meanses", "simple_slopes_meanses", True),
                                                 ("sector", "simple_slopes_sector", False)])
def test_simple_slopes_match_r(rb, moderator, key, given):
    r = RB[key]
    out = simple_slopes(rb, "cses", moderator, at=r["at"] if given else None)
    # defaults: meanses is school-level, so R's sch <- hsb[!duplicated(hsb$school), ];
    # mean(sch$meanses) + c(-1, 0, 1) * sd(sch$meanses) (over schools, issue 13); sector 0/1.
    # The rows-based values (mean(hsb$meanses) + c(-1, 0, 1) * sd(hsb$meanses)) when given.
    np.testing.assert_allclose(out.index.to_numpy(), r["at"], rtol=1e-12)
    assert out.index.name == moderator and list(out.columns) == COLS
    # R: g[cses] + W g[inter]; sqrt(V10 + 2 W C + W^2 V11); z; 2 pnorm(-|z|); est -+ qnorm(0.975) se
    np.testing.assert_allclose(out["slope"], r["slope"], rtol=1e-4)
    np.testing.assert_allclose(out["std_error"], r["std_error"], rtol=2e-3)
    np.testing.assert_allclose(out["statistic"], r["statistic"], rtol=2e-3)
    np.testing.assert_allclose(np.log(out["p_value"]), np.log(r["p_value"]), rtol=1e-2)
    np.testing.assert_allclose(out["conf_low"], r["conf_low"], rtol=1e-3)
    np.testing.assert_allclose(out["conf_high"], r["conf_high"], rtol=1e-3)
    assert np.isinf(out.attrs["df"]) and "Wald z" in out.attrs["note"]


def test_simple_slopes_say_what_they_hold(rb):
    out = simple_slopes(rb, "cses", "meanses")
    assert "over the 160 groups of school (meanses is constant within school)" in out.attrs["at"]
    assert out.attrs["held_at_zero"] == ["sector"]
    assert "sector held at 0" in out.attrs["note"]
    assert simple_slopes(rb, "cses", "sector").attrs["held_at_zero"] == ["meanses"]


def test_simple_slopes_interaction_in_either_order(rb, hsb):
    # R (and mlm) name it cses:sector: variables in order of first appearance in
    # mathach ~ meanses*cses + sector*cses; the interaction is found whichever way round
    assert "cses:sector" in rb.fixef.index
    a = simple_slopes(rb, "cses", "sector", at=[0.5])
    g, V = rb.fixef, rb.vcov
    assert a["slope"].iloc[0] == pytest.approx(g["cses"] + 0.5 * g["cses:sector"])
    var = V.loc["cses", "cses"] + 2 * 0.5 * V.loc["cses", "cses:sector"] + 0.25 * V.loc["cses:sector", "cses:sector"]
    assert a["std_error"].iloc[0] == pytest.approx(np.sqrt(var))
    other = fit("mathach ~ cses + meanses + cses:meanses + (1 | school)", hsb)
    assert "cses:meanses" in other.fixef.index
    s = simple_slopes(other, "cses", "meanses", at=[0.0, 1.0])
    assert s["slope"].iloc[1] == pytest.approx(other.fixef["cses"] + other.fixef["cses:meanses"])


def test_simple_slopes_level(rb):
    out = simple_slopes(rb, "cses", "sector", level=0.90)
    half = (out["conf_high"] - out["conf_low"]) / 2
    np.testing.assert_allclose(half, stats.norm.ppf(0.95) * out["std_error"])


def test_simple_slopes_errors(rb):
    with pytest.raises(InteractionError, match=r"focal predictor 'ses' is not a fixed-effect term.*'cses'"):
        simple_slopes(rb, "ses", "meanses")
    with pytest.raises(InteractionError, match=r"moderator 'size' is not a term or variable.*'meanses:cses'"):
        simple_slopes(rb, "cses", "size")
    with pytest.raises(InteractionError, match=r"no interaction of 'meanses' with 'sector'.*meanses \* sector"):
        simple_slopes(rb, "meanses", "sector")
    with pytest.raises(InteractionError, match="level must be between 0 and 1"):
        simple_slopes(rb, "cses", "sector", level=95)
    with pytest.raises(InteractionError, match="both 'cses'"):
        simple_slopes(rb, "cses", "cses")
    with pytest.raises(InteractionError, match="fit must be a fitted model from mlm.lmer"):
        simple_slopes(None, "cses", "sector")


# ----------------------------------------------------------------------------- Johnson-Neyman
def test_johnson_neyman_matches_r(rb):
    jn = johnson_neyman(rb, "cses", "meanses")
    r = RB["johnson_neyman_meanses"]
    assert isinstance(jn, JohnsonNeyman)
    # R: sort(Re(polyroot(c(cc, b, a)))) with a = b1^2 - q^2 v1, b = 2 (b0 b1 - q^2 c01), cc = b0^2 - q^2 v0
    np.testing.assert_allclose(jn.bounds, r["roots"], rtol=2e-3)
    # R: range(hsb$meanses)
    np.testing.assert_allclose(jn.observed_range, r["meanses_range"])
    assert jn.significant_outside is True
    assert "below -6.32" in jn.text and "above -1.83" in jn.text
    assert "significant throughout the data" in str(jn)
    # at each bound the simple slope's |z| is exactly the critical value
    at = simple_slopes(rb, "cses", "meanses", at=jn.bounds)
    np.testing.assert_allclose(np.abs(at["statistic"]), stats.norm.ppf(0.975), rtol=1e-8)


def test_johnson_neyman_solver_branches(rb):
    # the solver's branches (a W^2 + b W + cc > 0 means significant)
    assert _jn_solve(1.0, 0.0, 1.0) == ((), None, True, False)     # always positive
    assert _jn_solve(-1.0, 0.0, -1.0) == ((), None, False, True)   # always negative
    bounds, outside, *_ = _jn_solve(1.0, 0.0, -4.0)                # significant outside [-2, 2]
    assert bounds == (-2.0, 2.0) and outside is True
    bounds, outside, *_ = _jn_solve(-1.0, 0.0, 4.0)                # significant inside [-2, 2]
    assert bounds == (-2.0, 2.0) and outside is False
    bounds, outside, *_ = _jn_solve(0.0, 2.0, -2.0)                # linear: significant above 1
    assert bounds == (1.0,) and outside is True
    jn = johnson_neyman(rb, "cses", "sector")
    assert all(np.isfinite(jn.bounds))


def noise_data(seed=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 10)
    x, w = rng.normal(size=300), rng.normal(size=300)
    y = rng.normal(size=30)[g] + rng.normal(size=300)   # x has no effect at any w
    return pd.DataFrame({"y": y, "x": x, "w": w, "g": g})


def test_johnson_neyman_nowhere():
    # A slope that is significant at no moderator value has no real root (a < 0, disc < 0).
    # (A slope significant everywhere is impossible unless the interaction is exactly 0: where
    # the line g10 + g11 W crosses zero it is never significant.)
    m = fit("y ~ x * w + (1 | g)", noise_data(), ddf="normal")  # z: the text names the test
    jn = johnson_neyman(m, "x", "w")
    assert jn.bounds == () and jn.significant_nowhere and not jn.significant_everywhere
    assert "not significant (two-sided alpha = 0.05, Wald z) for any value of w" in jn.text
    grid = simple_slopes(m, "x", "w", at=np.linspace(-50, 50, 201))
    assert (np.abs(grid["statistic"]) < stats.norm.ppf(0.975)).all()


def test_johnson_neyman_errors(rb):
    with pytest.raises(InteractionError, match=r"no interaction of 'cses' with 'size'|moderator 'size'"):
        johnson_neyman(rb, "cses", "size")
    with pytest.raises(InteractionError, match=r"focal predictor 'x' is not a fixed-effect term"):
        johnson_neyman(rb, "x", "meanses")


# ----------------------------------------------------------------------------- cross-level
def test_cross_level_finds_terms(rb, rb_base):
    out = cross_level(rb, baseline=rb_base)
    assert list(out["term"]) == ["meanses:cses", "cses:sector"]
    assert list(out["level1"]) == ["cses", "cses"]
    assert list(out["level2"]) == ["meanses", "sector"]
    assert set(out["factor"]) == {"school"}
    co = rb.coefficients
    np.testing.assert_allclose(out["estimate"], co.loc[out["term"], "estimate"])
    np.testing.assert_allclose(out["p_value"], co.loc[out["term"], "p_value"])
    r = RB["slope_variance"]
    # R: 1 - VarCorr(rb)$school["cses","cses"] / VarCorr(rb_base)$school["cses","cses"]
    sv = out.attrs["slope_variance"]
    # the reduction belongs to both interactions together: one row for the cses slope
    assert list(sv.index) == [("school", "cses")]
    assert sv.loc[("school", "cses"), "terms"] == "meanses:cses, cses:sector"
    assert "slope_variance_explained" not in out.columns
    np.testing.assert_allclose(sv["explained"], r["explained"], atol=2e-3)


def test_cross_level_none_and_same_level(hsb):
    # ses:female: both vary within schools; meanses:sector: both school-level
    m = fit("mathach ~ ses * female + meanses * sector + (1 | school)", hsb)
    out = cross_level(m)
    assert out.empty and "slope_variance_explained" not in out.columns
    assert list(out.columns)[:4] == ["term", "level1", "level2", "factor"]


def test_cross_level_with_formula_helpers(hsb):
    m = fit("mathach ~ cwc(ses, school) * gm(ses, school) + (1 | school)", hsb)
    out = cross_level(m)
    assert list(out["level1"]) == ["cwc(ses, school)"]
    assert list(out["level2"]) == ["gm(ses, school)"]
    # no random slope of the level-1 variable: nothing to explain
    base = fit("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    assert np.isnan(cross_level(m, baseline=base).attrs["slope_variance"]["explained"].iloc[0])


def test_cross_level_errors(hsb, rb):
    with pytest.raises(InteractionError, match=r"still contains the cross-level term\(s\) 'meanses:cses'"):
        cross_level(rb, baseline=rb)
    small = fit("mathach ~ cses + (cses | school)", hsb.iloc[:2000])
    with pytest.raises(InteractionError, match=r"different rows \(nobs 2000 against 7185"):
        cross_level(rb, baseline=small)


# ----------------------------------------------------------------------------- identities
def test_hand_made_product_equals_cross_level_term(hsb, rb):
    d = hsb.copy()
    d["meanses_x_cses"] = d["meanses"] * d["cses"]
    hand = fit("mathach ~ meanses + cses + meanses_x_cses + sector*cses + (cses | school)", d)
    assert hand.fixef["meanses_x_cses"] == pytest.approx(rb.fixef["meanses:cses"], rel=1e-5)
    assert hand.coefficients.loc["meanses_x_cses", "std_error"] == pytest.approx(
        rb.coefficients.loc["meanses:cses", "std_error"], rel=1e-4)
    assert hand.loglik == pytest.approx(rb.loglik, abs=1e-4)
    assert cross_level(hand)["term"].tolist() == ["cses:sector"]  # the product is a main effect


def test_contextual_effect_identity(hsb):
    ctx = fit("mathach ~ ses + gm(ses, school) + (1 | school)", hsb)
    split = fit("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    between, within = split.fixef["gm(ses, school)"], split.fixef["cwc(ses, school)"]
    assert ctx.fixef["gm(ses, school)"] == pytest.approx(between - within, rel=1e-5)
    assert ctx.fixef["ses"] == pytest.approx(within, rel=1e-5)
    assert ctx.loglik == pytest.approx(split.loglik, abs=1e-6)
    r = REF["contextual"]
    # R: fixef(lmer(mathach ~ ses + sesm + (1|school)))["sesm"], sesm = ave(ses, school)
    assert ctx.fixef["gm(ses, school)"] == pytest.approx(r["contextual"], rel=1e-4)
    # R: fixef(lmer(mathach ~ cses + sesm + (1|school))); logLik of both
    assert within == pytest.approx(r["within"], rel=1e-4)
    assert between == pytest.approx(r["between"], rel=1e-4)
    assert ctx.loglik == pytest.approx(r["loglik1"], abs=0.01)


# ----------------------------------------------------------------------------- term names
def test_term_names_match_regardless_of_spaces(hsb):
    """Issue 11: "cwc(ses,school)" names the term patsy writes "cwc(ses, school)".

    cwc(ses, school) is R&B's cses exactly, so the numbers are R's for the cses model.
    """
    f = fit("mathach ~ meanses*cwc(ses, school) + sector*cwc(ses, school) "
            "+ (cwc(ses, school) | school)", hsb, ddf="normal")  # z-tests, as the R reference
    assert "cwc(ses, school)" in f.fixef.index
    r = RB["simple_slopes_meanses_schools"]
    for focal, moderator in [("cwc(ses,school)", "meanses"), ("cwc( ses , school )", " meanses"),
                             ("cwc(ses, school)", "meanses")]:
        out = simple_slopes(f, focal, moderator)
        # R: g[cses] + W g[meanses:cses], W = mean + c(-1, 0, 1) sd of meanses over schools
        np.testing.assert_allclose(out["slope"], r["slope"], rtol=1e-4)
        np.testing.assert_allclose(out["std_error"], r["std_error"], rtol=2e-3)
        assert out.attrs["focal"] == "cwc(ses, school)" and out.index.name == "meanses"
    jn = johnson_neyman(f, "cwc(ses,school)", "meanses")
    # R: sort(Re(polyroot(c(cc, b, a)))) (see test_johnson_neyman_matches_r)
    np.testing.assert_allclose(jn.bounds, RB["johnson_neyman_meanses"]["roots"], rtol=2e-3)
    assert jn.focal == "cwc(ses, school)"
    with pytest.raises(InteractionError, match=r"focal predictor 'cwc\(ses,schol\)' is not a "
                                               r"fixed-effect term"):
        simple_slopes(f, "cwc(ses,schol)", "meanses")


@pytest.mark.parametrize("bad", [None, "x", [0.9], np.array([0.9]), 95])
def test_level_of_any_type_is_a_clear_error(rb, bad):
    """Found by the issue-11 QA pass: a non-number level raised a raw TypeError."""
    with pytest.raises(InteractionError, match="level must be between 0 and 1"):
        simple_slopes(rb, "cses", "meanses", level=bad)
    with pytest.raises(InteractionError, match="level must be between 0 and 1"):
        johnson_neyman(rb, "cses", "meanses", level=bad)


# --------------------------------------------------------------------------- glmer fits
def test_glmer_fit_simple_slopes_on_the_link_scale():
    # Simple slopes of a glmer fit are on the log-odds scale: w(W) = g10 + g11 W from lme4's
    # fixef (tests/reference/report_glmm.json, case "slopes"), Wald z tests (df infinite).
    from glmm_cases import case, values
    from mlm.toolkit.nesting import levels
    import mlm

    g = case("slopes")
    b = values("slopes", "fixef")          # (Intercept), age_c, age_m, urbanY, ..., age_m:urbanY
    ss = mlm.simple_slopes(g, "urbanY", "gm(age, district)", at=[-2.0, 0.0, 2.0])
    np.testing.assert_allclose(ss["slope"].to_numpy(), b[3] + b[7] * np.array([-2.0, 0.0, 2.0]),
                               rtol=1e-3)
    assert ss.attrs["df"] == np.inf
    cl = mlm.cross_level(g)
    assert cl[["term", "level1", "level2", "factor"]].values.tolist() == [
        ["gm(age, district):urbanY", "urbanY", "gm(age, district)", "district"]]
    assert levels(g).loc["gm(age, district)", "level"] == "district"
    with pytest.raises(mlm.MLMError, match=r"baseline= .* is for linear fits"):
        mlm.cross_level(g, baseline=g)
