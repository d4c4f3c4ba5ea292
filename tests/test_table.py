"""mlm.table (mlm/report/table.py): every number shown is the fit's own and lme4's, in every format.

Reference numbers: tests/reference/report_table.R -> report_table.json (lme4 1.1-31,
performance 0.10.2), Raudenbush & Bryk's sequence of models on hsb, fitted by REML.
Tolerances for the lme4 values are those of tests/test_lme4_reference.py (set by the
optimizer's convergence criterion): fixed effects rtol 1e-4, standard errors rtol 1e-3,
variances rel 1e-3, log-likelihoods abs 0.01 (so deviance, AIC, BIC abs 0.02).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.report.table import ComparisonTable, TableError, latex_escape
from support import fit, hsb_with_cses

REF = json.loads((Path(__file__).parent / "reference" / "report_table.json").read_text())["models"]
FORMULAS = {
    "null": "mathach ~ 1 + (1 | school)",
    "means": "mathach ~ meanses + (1 | school)",
    "random_coef": "mathach ~ cses + (cses | school)",
    "slopes": "mathach ~ meanses + sector + cses + meanses:cses + sector:cses + (cses | school)",
}
NAMES = list(FORMULAS)


@pytest.fixture(scope="module")
def hsb():
    return hsb_with_cses()


@pytest.fixture(scope="module")
def models(hsb):
    return {k: fit(f, hsb) for k, f in FORMULAS.items()}


@pytest.fixture(scope="module")
def full(models):
    return mlm.table(*models.values(), names=NAMES)


def varcorr_key(r):
    return (r["grp"], r["var1"], r["var2"])


def row_label(key, variance="var"):
    grp, v1, v2 = key
    if grp == "Residual":
        return ("Var" if variance == "var" else "SD") + ": Residual"
    if v2 is None:
        return f"{'Var' if variance == 'var' else 'SD'}: {grp} {v1}"
    return f"{'Cov' if variance == 'var' else 'Corr'}: {grp} {v1}, {v2}"


# --------------------------------------------------------------------------- the numbers
def test_numbers_are_the_fits_own(models, full):
    frame = full.to_frame(numeric=True)
    assert list(frame.columns) == NAMES
    for name, f in models.items():
        col = frame[name]
        co = f.coefficients
        for term in co.index:
            assert col[("Fixed effects", term)] == co.loc[term, "estimate"] == f.fixef[term]
            assert col[("Fixed effects", f"{term} (SE)")] == co.loc[term, "std_error"]
        for r in f.varcorr.itertuples():
            key = (r.grp, None if pd.isna(r.var1) else r.var1, None if pd.isna(r.var2) else r.var2)
            assert col[("Random effects", row_label(key))] == r.vcov
        assert col[("Units", "Observations")] == f.nobs
        for g, n in f.ngroups.items():
            assert col[("Units", f"Groups: {g}")] == n
        assert col[("Model fit", "Deviance")] == f.deviance
        assert col[("Model fit", "AIC")] == f.aic
        assert col[("Model fit", "BIC")] == f.bic


@pytest.mark.parametrize("name", NAMES)
def test_numbers_agree_with_lme4(full, name):
    ref, col = REF[name], full.to_frame(numeric=True)[name]
    for term, est in ref["fixef"].items():
        assert col[("Fixed effects", term)] == pytest.approx(est, rel=1e-4)          # R: fixef(m)
        assert col[("Fixed effects", f"{term} (SE)")] == pytest.approx(ref["se"][term], rel=1e-3)
        # R: sqrt(diag(vcov(m)))
    vars_ = {(r["grp"], r["var1"]): r["vcov"] for r in ref["varcorr"] if r["var2"] is None}
    for r in ref["varcorr"]:                                                         # R: as.data.frame(VarCorr(m))
        got = col[("Random effects", row_label(varcorr_key(r)))]
        if r["var2"] is None:
            assert got == pytest.approx(r["vcov"], rel=1e-3)
        else:  # a covariance: correlation to 2e-3 (as test_lme4_reference), times the SDs
            scale = np.sqrt(vars_[(r["grp"], r["var1"])] * vars_[(r["grp"], r["var2"])])
            assert got == pytest.approx(r["vcov"], abs=2e-3 * scale + 2e-3 * abs(r["vcov"]))
    assert col[("Units", "Observations")] == ref["nobs"]                             # R: nobs(m)
    for g, n in ref["ngroups"].items():
        assert col[("Units", f"Groups: {g}")] == n                                   # R: ngrps(m)
    assert col[("Model fit", "Deviance")] == pytest.approx(ref["remlcrit"], abs=0.02)  # R: REMLcrit(m)
    assert col[("Model fit", "AIC")] == pytest.approx(ref["aic"], abs=0.02)           # R: AIC(m)
    assert col[("Model fit", "BIC")] == pytest.approx(ref["bic"], abs=0.02)           # R: BIC(m)
    if "icc" in ref:  # R: performance::icc(m)$ICC_adjusted; variances to rel 1e-3
        assert col[("Random effects", "ICC: school")] == pytest.approx(ref["icc"], abs=1e-3)
    else:  # random slopes: no ICC is shown
        assert np.isnan(col[("Random effects", "ICC: school")])


@pytest.mark.parametrize("digits", [0, 2, 3, 5])
def test_cells_are_rounded_to_digits(models, digits):
    t = mlm.table(*models.values(), names=NAMES, digits=digits, fit_digits=digits)
    shown, nums = t.to_frame(), t.to_frame(numeric=True)
    for name in NAMES:
        for (section, row), value in nums[name].items():
            cell = shown.loc[(section, row), name]
            if np.isnan(value):
                assert cell == ""
                continue
            if section == "Units":
                assert cell == f"{int(value):,}"
                continue
            expected = f"{value:.{digits}f}"
            assert cell == (f"({expected})" if row.endswith("(SE)") else expected)
    # the rounded cells are lme4's numbers to the precision shown
    half = 0.5 * 10.0 ** -digits
    for term, est in REF["slopes"]["fixef"].items():                                 # R: fixef(m)
        assert abs(float(shown.loc[("Fixed effects", term), "slopes"]) - est) <= half + 1e-4 * abs(est)


def test_missing_terms_are_blank_and_rows_in_order_of_first_appearance(full):
    shown = full.to_frame()
    fixed = [r for r in shown.loc["Fixed effects"].index if not r.endswith("(SE)")]
    # null, then meanses (means), cses (random_coef), then the slopes model's new terms
    assert fixed == ["(Intercept)", "meanses", "cses", "sector", "meanses:cses", "sector:cses"]
    assert shown.loc[("Fixed effects", "meanses"), "null"] == ""
    assert shown.loc[("Fixed effects", "meanses (SE)"), "random_coef"] == ""
    assert shown.loc[("Random effects", "Var: school cses"), "means"] == ""
    random = list(shown.loc["Random effects"].index)
    assert random[-2:] == ["Var: Residual", "ICC: school"]
    # the ICC is shown for random-intercept models only
    assert shown.loc[("Random effects", "ICC: school"), "slopes"] == ""
    assert list(shown.loc["Model fit"].index) == ["Deviance", "AIC", "BIC", "Estimation", "df method"]
    assert list(shown.loc[("Model fit", "Estimation")]) == ["REML"] * 4
    assert list(shown.loc[("Model fit", "df method")]) == [f.df_method for f in full.fits]


def test_confidence_intervals(models):
    t = mlm.table(models["slopes"], se="ci", digits=2)
    co = models["slopes"].coefficients
    shown, nums = t.to_frame(), t.to_frame(numeric=True)
    for term in co.index:
        lo, hi = co.loc[term, "conf_low"], co.loc[term, "conf_high"]
        assert shown.loc[("Fixed effects", f"{term} [95% CI]"), "Model 1"] == f"[{lo:.2f}, {hi:.2f}]"
        assert nums.loc[("Fixed effects", f"{term} [95% CI] low"), "Model 1"] == lo
        assert nums.loc[("Fixed effects", f"{term} [95% CI] high"), "Model 1"] == hi
    assert "95% confidence intervals in brackets." in t.notes
    bare = mlm.table(models["slopes"], se=None).to_frame()
    assert not any("(SE)" in r or "CI" in r for r in bare.index.get_level_values("row"))


def test_standard_deviations_and_correlations(models):
    t = mlm.table(models["random_coef"], variance="sd").to_frame(numeric=True)["Model 1"]
    for r in REF["random_coef"]["varcorr"]:                                          # R: as.data.frame(VarCorr(m))
        got = t[("Random effects", row_label(varcorr_key(r), "sd"))]
        if r["var2"] is None:
            assert got == pytest.approx(r["sdcor"], rel=1e-3)
        else:
            assert got == pytest.approx(r["sdcor"], abs=2e-3)


def test_stars_follow_the_p_values_and_have_a_legend(hsb):
    # terms chosen so that the p-values fall on both sides of 0.05
    f = fit("mathach ~ ses + female + size + pracad + (1 | school)", hsb)
    t = mlm.table(f, stars=True)
    shown = t.to_frame()["Model 1"]
    marks = set()
    for term, p in f.coefficients["p_value"].items():
        mark = "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
        marks.add(mark)
        assert shown[("Fixed effects", term)] == f"{f.fixef[term]:.3f}" + mark
    assert "" in marks and "***" in marks
    assert any(n.startswith("* p < 0.05, ** p < 0.01, *** p < 0.001") for n in t.notes)
    plain = mlm.table(f)
    assert not any("*" in c for c in plain.to_frame()["Model 1"])
    assert not any("p < 0.05" in n for n in plain.notes)


def test_labels_for_terms_interactions_and_groups(models):
    t = mlm.table(models["slopes"], labels={"cses": "SES (centred)", "sector": "Catholic",
                                            "school": "School"})
    rows = list(t.to_frame().index.get_level_values("row"))
    assert "SES (centred)" in rows and "Catholic" in rows
    assert "meanses × SES (centred)" in rows and "Catholic × SES (centred)" in rows
    assert "Var: School SES (centred)" in rows and "Groups: School" in rows
    own = mlm.table(models["slopes"], labels={"sector:cses": "Catholic slope"})
    assert "Catholic slope" in own.to_frame().index.get_level_values("row")


def test_ml_fits_and_several_grouping_factors():
    pastes = mlm.load_dataset("pastes")
    f = fit("strength ~ 1 + (1 | batch/cask)", pastes, reml=False)
    shown = mlm.table(f).to_frame()["Model 1"]
    assert shown[("Model fit", "Estimation")] == "ML"
    for g, n in f.ngroups.items():
        assert shown[("Units", f"Groups: {g}")] == str(n)
    icc = mlm.icc(f)["icc"]
    for g, v in icc.items():
        assert shown[("Random effects", f"ICC: {g}")] == f"{v:.3f}"
    assert mlm.table(f).notes[-1] == "Deviance: -2 log-likelihood."
    assert not any("REML" in n for n in mlm.table(f).notes)


# --------------------------------------------------------------------------- the formats
def test_text_fits_80_columns(models):
    three = mlm.table(models["means"], models["random_coef"], models["slopes"], stars=True)
    text = str(three)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert repr(three) == text
    for f in three.fits:
        for v in f.fixef:
            assert f"{v:.3f}" in text
    assert "Standard errors in parentheses." in text


def _md_cells(line):
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown(models):
    t = mlm.table(models["null"], models["slopes"], names=["Null_model", "Slopes"], stars=True)
    md = t.to_markdown().splitlines()
    table_lines = [line for line in md if line.startswith("|")]
    assert all(len(_md_cells(line)) == 3 for line in table_lines)
    assert _md_cells(md[0]) == ["", r"Null\_model", "Slopes"]
    est = models["slopes"].fixef["sector:cses"]
    row = next(line for line in table_lines if _md_cells(line)[0] == "sector:cses")
    assert _md_cells(row)[2] == f"{est:.3f}" + r"\*\*\*"
    assert md[-1].startswith("Notes: Standard errors in parentheses.")


@pytest.mark.parametrize("raw, escaped", [
    ("cwc(ses, school)", "cwc(ses, school)"),
    ("sectorCatholic:ses", "sectorCatholic:ses"),
    ("a_b", r"a\_b"), ("10%", r"10\%"), ("a & b", r"a \& b"), ("#1", r"\#1"),
    ("x^2", r"x\textasciicircum{}2"), ("a|b", r"a\textbar{}b"), ("$", r"\$"),
    ("{x}", r"\{x\}"), ("~", r"\textasciitilde{}"), ("a\\b", r"a\textbackslash{}b"),
    ("<>", r"\textless{}\textgreater{}"), ("a × b", r"a $\times$ b"),
])
def test_latex_escape(raw, escaped):
    assert latex_escape(raw) == escaped


NASTY = {"cses": "SES_c & 100% #1 ^x |y| ~z $w {v} <u> \\t", "school": "School_ID"}


def test_latex_content(models):
    t = mlm.table(models["means"], models["slopes"], names=["M_1", "50% & more"], labels=NASTY,
                  stars=True)
    tex = t.to_latex()
    assert tex.startswith(r"\begin{tabular}{lcc}") and tex.endswith(r"\end{tabular}")
    assert r"M\_1 & 50\% \& more \\" in tex
    assert latex_escape(NASTY["cses"]) in tex
    est = models["slopes"].fixef["sector:cses"]
    assert f"$-${abs(est):.3f}$^{{***}}$" in tex
    assert r"\footnotesize" in tex and r"\footnotesize" not in t.to_latex(notes=False)


def test_latex_compiles(models, tmp_path):
    engine = shutil.which("pdflatex") or shutil.which("latex")
    if engine is None:
        pytest.skip("no LaTeX engine: install one (Debian: apt-get install texlive-latex-base) to "
                    "compile the table")
    t = mlm.table(models["null"], models["random_coef"], models["slopes"],
                  names=["M_1", "50% & more", "#3"], labels=NASTY, stars=True, se="ci")
    doc = "\\documentclass{article}\n\\begin{document}\n" + t.to_latex() + "\n\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "! " not in log


class _Cells(HTMLParser):
    """Text of every table cell, and a check that the tags balance."""

    def __init__(self):
        super().__init__()
        self.cells, self.stack, self.current = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag != "br":
            self.stack.append(tag)
        if tag in ("td", "th"):
            self.current = ""

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()
        if tag in ("td", "th"):
            self.cells.append(self.current)
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current += data


def test_html_parses_and_holds_the_numbers(models):
    t = mlm.table(models["null"], models["slopes"], names=["<Null>", "Slopes"],
                  labels={"cses": "SES <centred> & more"}, stars=True)
    parser = _Cells()
    parser.feed(t.to_html())
    parser.close()
    assert parser.stack == []
    cells = parser.cells
    assert "<Null>" in cells and "SES <centred> & more" in cells
    f = models["slopes"]
    for term in f.fixef.index:
        assert f"{f.fixef[term]:.3f}***" in cells
        assert f"({f.coefficients.loc[term, 'std_error']:.3f})" in cells
    for v in f.varcorr["vcov"]:
        assert f"{v:.3f}" in cells
    assert f"{f.deviance:.1f}" in cells and f"{f.bic:.1f}" in cells
    assert f"{f.nobs:,}" in cells
    assert t._repr_html_() == t.to_html()


def test_docx_opens_and_holds_the_numbers(models, tmp_path):
    docx = pytest.importorskip("docx", reason="python-docx is in the test extra")
    t = mlm.table(models["means"], models["slopes"], names=["Means", "Slopes"], stars=True)
    path = tmp_path / "table.docx"
    assert t.to_docx(path) == path
    doc = docx.Document(str(path))
    assert len(doc.tables) == 1
    grid = doc.tables[0]
    cells = {c.text for row in grid.rows for c in row.cells}
    assert {"Means", "Slopes", "Fixed effects", "Random effects"} <= cells
    f = models["slopes"]
    for term in f.fixef.index:
        assert f"{f.fixef[term]:.3f}***" in cells
        assert f"({f.coefficients.loc[term, 'std_error']:.3f})" in cells
    assert f"{f.aic:.1f}" in cells and "7,185" in cells
    # rules above and below; OOXML's order of table properties (Word refuses others)
    order = [el.tag.split("}")[1] for el in grid._tbl.tblPr]
    assert "tblBorders" in order and order.index("tblBorders") < order.index("tblLook")
    paragraphs = [p.text for p in doc.paragraphs]
    assert "Standard errors in parentheses." in paragraphs


def test_docx_without_python_docx(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "docx", None)  # import docx now raises ImportError
    with pytest.raises(TableError, match=r'pip install "mlm\[docx\]"'):
        mlm.table(models["null"]).to_docx(tmp_path / "t.docx")
    assert not (tmp_path / "t.docx").exists()


def test_docx_unwritable_path(models, tmp_path):
    pytest.importorskip("docx", reason="python-docx is in the test extra")
    with pytest.raises(TableError, match="Cannot write the Word file"):
        mlm.table(models["null"]).to_docx(tmp_path / "no_such_folder" / "t.docx")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"names": ["a"]}, r"names has 1 label\(s\) for 2 model\(s\)"),
    ({"names": ["a", "a"]}, r"names must be distinct"),
    ({"names": "ab"}, r"names must be a list of 2 labels"),
    ({"labels": {"SES": "x"}}, r"labels has name\(s\) that are in none of the models: \['SES'\]"),
    ({"labels": ["ses"]}, r"labels must be a dict"),
    ({"se": "brackets"}, r"se must be 'parentheses', 'ci' or None, not 'brackets'"),
    ({"variance": "sds"}, r"variance must be 'var'"),
    ({"digits": -1}, r"digits must be a whole number of decimals from 0 to 12, not -1"),
    ({"digits": 2.5}, r"digits must be a whole number"),
    ({"fit_digits": True}, r"fit_digits must be a whole number"),
])
def test_bad_arguments(models, kwargs, match):
    with pytest.raises(TableError, match=match):
        mlm.table(models["null"], models["means"], **kwargs)


def test_not_fits():
    with pytest.raises(mlm.MLMError, match=r"needs at least one fitted model"):
        mlm.table()
    with pytest.raises(TableError, match=r"Argument 1 of mlm.table\(\) must be a fitted model"):
        mlm.table("mathach ~ 1 + (1 | school)")


def test_a_list_of_fits(models):
    t = mlm.table([models["null"], models["means"]])
    assert t.names == ("Model 1", "Model 2")


# --------------------------------------------------------------------------- compare()
@pytest.fixture(scope="module")
def comparison(models):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.compare(models["null"], models["means"], models["slopes"])


def test_compare_is_still_a_dataframe(comparison):
    assert isinstance(comparison, pd.DataFrame) and isinstance(comparison, ComparisonTable)
    assert list(comparison.columns) == ["npar", "aic", "bic", "loglik", "deviance", "chisq", "df",
                                        "p_value"]
    sub = comparison[["chisq", "p_value"]]
    assert type(sub) is pd.DataFrame and type(comparison.round(2)) is pd.DataFrame
    assert "REML fit(s) refitted" in comparison.attrs["note"]


def test_compare_prints_every_column_formatted(comparison):
    text = str(comparison)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "npar" in line)
    # the table and the note fit 80 columns (a formula above is as long as it is written)
    assert max(len(line) for line in lines[start:]) <= 80
    assert repr(comparison) == text and "..." not in text
    assert lines[0] == "Models:"
    assert lines[1] == f"model1: {FORMULAS['null']}"
    header = next(line for line in lines if "npar" in line).split()
    assert header == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
    row = next(line for line in lines if line.startswith("model2 ")).split()
    r = comparison.loc["model2"]
    assert row == ["model2", str(int(r["npar"])), f"{r['aic']:.1f}", f"{r['bic']:.1f}",
                   f"{r['loglik']:.1f}", f"{r['deviance']:.1f}", f"{r['chisq']:.2f}",
                   str(int(r["df"])), "<0.001"]
    assert r["p_value"] < 0.001
    first = next(line for line in lines if line.startswith("model1 ")).split()
    assert len(first) == 6  # no test in the first row
    assert "e-" not in text


def test_compare_html(comparison):
    parser = _Cells()
    parser.feed(comparison._repr_html_())
    parser.close()
    assert parser.stack == []
    assert "<0.001" in parser.cells and f"{comparison.loc['model2', 'chisq']:.2f}" in parser.cells
    assert FORMULAS["slopes"] in comparison._repr_html_()
