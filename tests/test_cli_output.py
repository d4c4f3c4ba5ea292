"""Tests of mlm/cli_output.py: the tables the ``mlm`` command prints.

The LaTeX is compiled with a LaTeX engine from Debian when one is installed (skipped with a
message otherwise); the HTML is parsed as XML; the Markdown has one cell per column on
every row; the numbers are the fit's at the printed precision.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm import cli_output as out


@pytest.fixture(scope="module")
def awkward_fit():
    """Names with LaTeX/Markdown specials: underscores, a caret, a power, a correlation."""
    rng = np.random.default_rng(11)
    g = np.repeat([f"s_{i}" for i in range(15)], 12)
    x = rng.normal(size=g.size)
    u = rng.normal(size=(15, 2)) * [1.0, 0.4]
    y = 1 + 0.5 * x + u[np.repeat(np.arange(15), 12), 0] + u[np.repeat(np.arange(15), 12), 1] * x \
        + rng.normal(scale=0.5, size=g.size)
    data = pd.DataFrame({"y_out": y, "x_1": x, "grp_id": g})
    return mlm.lmer("y_out ~ x_1 + I(x_1**2) + (x_1 | grp_id)", data)


def _document(body):
    return "\\documentclass{article}\n\\begin{document}\n" + body + "\n\\end{document}\n"


def test_latex_compiles(tmp_path, awkward_fit):
    engine = shutil.which("pdflatex") or shutil.which("lualatex")
    if engine is None:
        pytest.skip("no LaTeX engine (pdflatex/lualatex) installed: apt-get install texlive-latex-base")
    text = out.render(out.fit_tables(awkward_fit), "latex", out.fit_notes(awkward_fit))
    assert text.count("\\begin{tabular}") == 3 and "x\\_1" in text
    (tmp_path / "t.tex").write_text(_document(text))
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "t.pdf").exists()


def test_latex_escape():
    assert out.latex_escape("a_b & 50% #1 {x} ~ ^ \\ <2e-16 |") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{} $<$2e-16 $|$")


def test_html_parses_and_holds_numbers(awkward_fit):
    text = out.render(out.fit_tables(awkward_fit), "html", out.fit_notes(awkward_fit))
    root = ET.fromstring(f"<div>{text}</div>")
    tables = root.findall("table")
    assert [t.find("caption").text for t in tables] == [
        "Fixed effects", "Random effects (variance components)", "Model fit"]
    fixed = tables[0].find("tbody").findall("tr")
    assert [r.find("th").text for r in fixed] == list(awkward_fit.fixef.index)
    for row, (term, est) in zip(fixed, awkward_fit.fixef.items()):
        assert row.findall("td")[0].text == f"{est:.4f}"
    ncols = len(tables[0].find("thead").find("tr"))
    assert all(len(r) == ncols for r in fixed)


def test_markdown_rows_have_every_cell(awkward_fit):
    text = out.render(out.fit_tables(awkward_fit), "markdown")
    blocks = [b for b in text.split("\n\n") if b.startswith("|")]
    assert len(blocks) == 3
    for block in blocks:
        rows = block.splitlines()
        counts = {r.count(" | ") for r in [rows[0], *rows[2:]]}
        assert len(counts) == 1 and rows[1].count("|") == rows[0].count(" | ") + 2
    vc = awkward_fit.varcorr
    corr = vc.loc[vc["var2"].notna(), "sdcor"].iloc[0]
    assert f"| grp_id | (Intercept) with x_1 |  |  | {corr:.3f} |" in text


def test_no_correlation_column_without_correlations():
    fit = mlm.lmer("Reaction ~ Days + (1 | Subject)", mlm.load_dataset("sleepstudy"))
    (_, fixed), (_, random), (_, stats) = out.fit_tables(fit)
    assert list(random.columns) == ["Term", "Variance", "Std. Dev."]
    assert list(random.index) == ["Subject", "Residual"]
    assert stats.loc["Observations", "Value"] == "180" and stats.loc["Groups: Subject", "Value"] == "18"


def test_json_is_strict(awkward_fit):
    dump = out.fit_json(awkward_fit, "x.csv")
    text = out.to_json(dump)                     # allow_nan=False: no NaN/Infinity tokens
    back = json.loads(text)
    assert back["fixef"] == pytest.approx(awkward_fit.fixef.to_dict(), rel=1e-15)
    assert back["coefficients"][0]["df"] is None  # inf df of a z-test: null, named by df_method
    assert back["df_method"] == awkward_fit.df_method


def test_format_p():
    assert [out.format_p(p) for p in (1e-20, 3.2e-5, 0.01234, 0.5, float("nan"))] == [
        "<2e-16", "3.20e-05", "0.0123", "0.5", ""]


def test_text_alignment():
    table = pd.DataFrame({"name": ["a", "bbb"], "value": ["1.5", "-10.25"]}, index=["r1", "row2"])
    assert out.render([("", table)], "text").splitlines() == [
        "      name   value", "r1    a        1.5", "row2  bbb   -10.25"]
