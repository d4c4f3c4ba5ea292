"""mlm.report.hlm_glmm: glmer fits in HLM2's layout of a Bernoulli, binomial or Poisson model.

Reference numbers: tests/reference/report_glmm.R -> report_glmm.json. HLM's approximate
d.f. are computed there by HLM's rule (J - F_q for the effects predicting a random
coefficient, N - p for a coefficient that does not vary), the p-values as 2 pt(-|t|, df) and
the ratio intervals as exp(b -+ qt(0.975, df) se), all from lme4's estimates. Printed
numbers are compared at the printed precision plus the estimates' tolerance
(tests/glmm_cases.py): coefficients 1e-3 relative, SEs and variances 1e-2.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mlm
from glmm_cases import FIXEF_RTOL, R, case, values
from mlm.report.hlm_glmm import hlm_fixed_table
from mlm.report.hlm_style import HLMStyleError


def _rows(text, header):
    """The gamma rows of the table that follows ``header``: label -> numbers."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if header in line)
    out = {}
    for line in lines[i + 1:]:
        m = re.match(r"^    (.+?, G\d+)\s+(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
        elif line.startswith("Intervals") or line.startswith("t-ratio"):
            break
    return out


@pytest.fixture(scope="module")
def slopes():
    return case("slopes").summary(style="hlm")


def test_equations(slopes):
    lines = slopes.splitlines()
    assert lines[0] == "Two-level Bernoulli model as HLM2 lays it out  [mlm; ML, Laplace Approximation]"
    assert "    Prob(USE=Y|B) = P" in lines
    l1 = next(x for x in lines if x.startswith("    log[P/(1 - P)] = "))
    assert l1.endswith("B0 + B1*(CWC(AGE, DISTRICT)) + B2*(URBANY) + B3*(LIVCH1) + B4*(LIVCH2) + B5*(LIVCH3+)")
    assert "    B0 = G00 + G01*(GM(AGE, DISTRICT)) + U0" in lines
    assert "    B2 = G20 + G21*(GM(AGE, DISTRICT)) + U2" in lines
    assert "    B1 = G10" in lines
    assert " + R" not in slopes                          # no level-1 residual in an HGLM
    assert "Results for Non-linear Model with the Logit Link Function" in lines
    assert "Unit-Specific Model (conditional on the random effects)" in lines


def test_fixed_effects_table_is_lme4_with_hlm_df(slopes):
    fit = case("slopes")
    rows = _rows(slopes, "Final estimation of fixed effects")
    b, se = values("slopes", "fixef"), values("slopes", "se")
    df, p = values("slopes", "hlm_df"), values("slopes", "hlm_p")
    # gamma labels in the order of the fixed effects
    order = ["INTRCPT2, G00", "INTRCPT2, G10", "GM(AGE, DISTRICT), G01", "INTRCPT2, G20",
             "INTRCPT2, G30", "INTRCPT2, G40", "INTRCPT2, G50", "GM(AGE, DISTRICT), G21"]
    assert sorted(rows) == sorted(order)
    for k, label in enumerate(order):
        coef, err, t, d, pv = rows[label].split()
        assert float(coef) == pytest.approx(b[k], rel=1e-3, abs=1e-6)      # fixef(m)
        assert float(err) == pytest.approx(se[k], rel=1e-2)                # sqrt(diag(vcov(m)))
        assert float(t) == pytest.approx(b[k] / se[k], rel=1e-2, abs=2e-3)
        assert float(d) == df[k]                                           # HLM's rule, in R
        if pv == "<0.001":
            assert p[k] < 0.001
        else:
            assert float(pv) == pytest.approx(p[k], abs=0.0005 + 0.01 * p[k])  # 2 * pt(-|t|, df)
    table = hlm_fixed_table(fit)
    np.testing.assert_array_equal(table["df"].to_numpy(), df)
    np.testing.assert_allclose(table["p_value"].to_numpy(), p, rtol=0.02, atol=1e-6)


@pytest.mark.parametrize("name, noun", [("slopes", "Odds Ratio"), ("poisson", "Event Rate Ratio")])
def test_ratio_table(name, noun):
    text = case(name).summary(style="hlm")
    assert noun in text
    rows = _rows(text, f"Coefficient{noun:>18}")
    ratio, lo, hi = values(name, "exp_fixef"), values(name, "hlm_ratio_low"), values(name, "hlm_ratio_high")
    rtol = FIXEF_RTOL.get(name, 1e-3)
    got = sorted((float(v.split()[1]), v) for v in rows.values())
    want = sorted(zip(ratio, lo, hi))
    for (r, line), (r_r, r_lo, r_hi) in zip(got, want):
        assert r == pytest.approx(r_r, rel=rtol)                     # exp(fixef(m))
        m = re.search(r"\(([0-9.]+),([0-9.]+)\)", line)
        assert float(m.group(1)) == pytest.approx(r_lo, rel=1e-2)    # exp(b - qt(.975, df) se)
        assert float(m.group(2)) == pytest.approx(r_hi, rel=1e-2)


def test_poisson_exposure_and_df():
    text = case("poisson").summary(style="hlm")
    assert "    E(INCIDENCE|B) = SIZE*L" in text.splitlines()
    assert "    log[L] = B0 + B1*(PERIOD2) + B2*(PERIOD3) + B3*(PERIOD4)" in text.splitlines()
    np.testing.assert_array_equal(hlm_fixed_table(case("poisson"))["df"].to_numpy(),
                                  values("poisson", "hlm_df"))
    assert text.splitlines()[0].startswith("Two-level Poisson model")


def test_variance_components_without_chi_square_say_why(slopes):
    vc = {r["var1"]: r for r in R["slopes"]["varcorr"] if r.get("var2") is None}
    for label, name in (("INTRCPT1, U0", "(Intercept)"), ("URBANY slope, U2", "urbanY")):
        line = next(x for x in slopes.splitlines() if x.startswith(label))
        sd, var, *rest = line[len(label):].split()
        assert float(sd) == pytest.approx(vc[name]["sdcor"], rel=1e-2)    # VarCorr(m)
        assert float(var) == pytest.approx(vc[name]["vcov"], rel=1e-2)
        assert rest == ["-", "-", "-"]
    flat = " ".join(slopes.split())
    assert "Chi-square tests and reliabilities not computed" in flat
    assert "linearised outcome of PQL's last iteration" in flat
    assert "level-1, R" not in slopes
    assert "Deviance = " in slopes and "Number of estimated parameters = 11" in slopes
    assert "tau (as correlations)" in slopes


def test_probit_has_no_odds_ratios():
    text = case("probit").summary(style="hlm")
    assert "probit[P] = " in text and "Odds Ratio" not in text
    assert "No odds ratios: with the probit link" in " ".join(text.split())


def test_refusals():
    with pytest.raises(HLMStyleError, match=r"robust='CR2': robust standard errors .* linear fits"):
        mlm.report.hlm_style.hlm_summary(case("cbind"), robust="CR2")
    d = mlm.load_dataset("cbpp")
    d["obs"] = range(len(d))
    m = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs)", d)
    with pytest.raises(HLMStyleError, match=r"2 grouping factors"):
        m.summary(style="hlm")
