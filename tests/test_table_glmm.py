"""mlm.table with glmer fits, alone and beside lmer fits: every number is the fit's and lme4's.

Reference numbers: tests/reference/report_glmm.R -> report_glmm.json (lme4 1.1-31,
performance 0.10.2) for the glmer fits, tests/reference/report_table.json for the lmer fit.
Tolerances (tests/glmm_cases.py): estimates 1e-3 relative (2e-3 for the contraception
model where lme4 stops early), standard errors and variances 1e-2, -2 logLik, AIC and BIC
0.01 absolute (our optimum is at most 2e-4 lower than lme4's); the latent ICC 1e-3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mlm
from glmm_cases import FIXEF_ATOL_SE, FIXEF_RTOL, R, case, values
from mlm.report.table import TableError
from support import fit

LIN = json.loads((Path(__file__).parent / "reference" / "report_table.json").read_text())["models"]["means"]


@pytest.fixture(scope="module")
def lin():
    return fit("mathach ~ meanses + (1 | school)", mlm.load_dataset("hsb"))


def _col(t, name):
    return t.to_frame(numeric=True)[name]


@pytest.mark.parametrize("name", ["logit", "cbind", "poisson", "probit"])
def test_glmer_alone_link_scale_numbers_are_lme4s(name):
    g = case(name)
    col = _col(mlm.table(g, names=["M"]), "M")
    terms = list(g.fixef.index)
    rtol = FIXEF_RTOL.get(name, 1e-3)
    est = np.array([col[("Fixed effects", t)] for t in terms])
    se = np.array([col[("Fixed effects", f"{t} (SE)")] for t in terms])
    if name in FIXEF_ATOL_SE:                                             # R: fixef(m)
        assert np.all(np.abs(est - values(name, "fixef")) <= FIXEF_ATOL_SE[name] * values(name, "se"))
    else:
        np.testing.assert_allclose(est, values(name, "fixef"), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(se, values(name, "se"), rtol=1e-2)         # sqrt(diag(vcov(m)))
    np.testing.assert_array_equal(est, g.fixef.to_numpy())                # the fit's own numbers
    grp = next(iter(R[name]["ngroups"]))
    assert col[("Random effects", f"Var: {grp} (Intercept)")] == pytest.approx(R[name]["tau2"], rel=1e-2)
    assert col[("Units", "Observations")] == R[name]["nobs"]
    assert col[("Units", f"Groups: {grp}")] == R[name]["ngroups"][grp]
    # -2 logLik, as the 'deviance' of lme4's summary; AIC(m), BIC(m)
    assert col[("Model fit", "Deviance")] == pytest.approx(R[name]["minus2loglik"], abs=0.01)
    assert col[("Model fit", "AIC")] == pytest.approx(R[name]["aic"], abs=0.01)
    assert col[("Model fit", "BIC")] == pytest.approx(R[name]["bic"], abs=0.01)
    if "icc_adjusted" in R[name]:                                         # performance::icc(m)
        assert col[("Random effects", f"ICC: {grp}")] == pytest.approx(R[name]["icc_adjusted"], rel=1e-3)
    else:
        assert ("Random effects", f"ICC: {grp}") not in col.index          # none for counts
    assert ("Random effects", "Var: Residual") not in col.index


@pytest.mark.parametrize("name", ["logit", "poisson"])
def test_exponentiate_gives_r_ratios_and_intervals(name):
    g = case(name)
    t = mlm.table(g, names=["M"], exponentiate=True, se="ci")
    col = _col(t, "M")
    terms = list(g.fixef.index)
    rtol = FIXEF_RTOL.get(name, 1e-3)
    ratio = np.array([col[("Fixed effects", k)] for k in terms])
    low = np.array([col[("Fixed effects", f"{k} [95% CI] low")] for k in terms])
    high = np.array([col[("Fixed effects", f"{k} [95% CI] high")] for k in terms])
    np.testing.assert_allclose(ratio, values(name, "exp_fixef"), rtol=rtol)        # exp(fixef(m))
    np.testing.assert_allclose(low, values(name, "exp_conf_low"), rtol=1e-2)       # exp(Wald ends)
    np.testing.assert_allclose(high, values(name, "exp_conf_high"), rtol=1e-2)
    noun = {"logit": "odds ratios", "poisson": "rate ratios"}[name]
    assert noun in " ".join(t.notes)
    # delta-method SEs: exp(b) * se
    se = _col(mlm.table(g, names=["M"], exponentiate=True), "M")
    got = np.array([se[("Fixed effects", f"{k} (SE)")] for k in terms])
    np.testing.assert_allclose(got, values(name, "exp_fixef") * values(name, "se"), rtol=1e-2)


def test_exponentiate_leaves_probit_and_linear_fits_on_their_scale(lin):
    g = case("probit")
    t = mlm.table(lin, g, names=["Linear", "Probit"], exponentiate=True)
    frame = t.to_frame(numeric=True)
    np.testing.assert_array_equal([frame.loc[("Fixed effects", k), "Probit"] for k in g.fixef.index],
                                  g.fixef.to_numpy())
    assert frame.loc[("Fixed effects", "meanses"), "Linear"] == pytest.approx(LIN["fixef"]["meanses"], rel=1e-4)
    assert "Probit and cloglog fits stay on their link scale." in t.notes


def test_mixed_table_lmer_and_glmer(lin):
    g = case("logit")
    t = mlm.table(lin, g, names=["Linear", "Logit"])
    frame = t.to_frame()
    assert frame.loc[("Model fit", "Family")].tolist() == ["gaussian (identity)", "binomial (logit)"]
    assert frame.loc[("Model fit", "Estimation")].tolist() == ["REML", "ML (Laplace)"]
    assert frame.loc[("Model fit", "df method")].tolist() == ["satterthwaite", "Wald z"]
    assert frame.loc[("Random effects", "Var: Residual")].tolist() == [f"{LIN['varcorr'][1]['vcov']:.3f}", ""]
    num = t.to_frame(numeric=True)
    assert num.loc[("Model fit", "Deviance"), "Linear"] == pytest.approx(LIN["remlcrit"], abs=0.02)
    assert num.loc[("Model fit", "Deviance"), "Logit"] == pytest.approx(R["logit"]["minus2loglik"], abs=0.01)
    assert num.loc[("Random effects", "ICC: school"), "Linear"] == pytest.approx(LIN["icc"], rel=1e-4)
    assert num.loc[("Random effects", "ICC: district"), "Logit"] == pytest.approx(R["logit"]["icc_adjusted"], rel=1e-3)
    notes = " ".join(t.notes)
    assert "sum of squared deviance residuals" in notes and "-2 logLik" in notes
    assert "latent scale" in notes


def test_every_format(lin, tmp_path):
    g = case("cbind")
    t = mlm.table(lin, g, names=["Linear", "Herds_1"], stars=True, exponentiate=True)
    b = g.fixef["period2"]
    cell = f"{np.exp(b):.3f}"
    for text in (str(t), t.to_markdown(), t.to_html(), t.to_latex()):
        assert cell in text and "binomial (logit)" in text
    assert "Herds\\_1" in t.to_latex()
    engine = shutil.which("pdflatex") or shutil.which("latex")
    if engine is not None:
        doc = "\\documentclass{article}\n\\begin{document}\n" + t.to_latex() + "\n\\end{document}\n"
        (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
        run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
    docx = pytest.importorskip("docx", reason="python-docx is in the test extra")
    path = t.to_docx(tmp_path / "t.docx")
    cells = [c.text for row in docx.Document(str(path)).tables[0].rows for c in row.cells]
    assert any(c.startswith(cell) for c in cells) and "ML (Laplace)" in cells


def test_agq_fit_says_so():
    cbpp = mlm.load_dataset("cbpp")
    g = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, nagq=9)
    assert mlm.table(g).to_frame().loc[("Model fit", "Estimation")].tolist() == ["ML (AGQ, 9 nodes)"]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_exponentiate_must_be_bool(bad):
    with pytest.raises(TableError, match=r"exponentiate must be True .* or False, not"):
        mlm.table(case("cbind"), exponentiate=bad)
