"""Tests of mlm/cli_output.py: the JSON dump of a fit and the ICC and comparison tables the
``mlm`` command prints in text, Markdown, LaTeX and HTML.

The LaTeX is compiled with a LaTeX engine from Debian when one is installed (skipped with a
message otherwise); the HTML is parsed as XML; the Markdown has one cell per column on
every row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm import cli_output as out


@pytest.fixture(scope="module")
def awkward():
    """Names with LaTeX/Markdown specials (underscores, a space), a nested ICC and a comparison."""
    rng = np.random.default_rng(11)
    g = np.repeat([f"s_{i}" for i in range(15)], 12)
    c = np.array([f"{a}_c{k % 3}" for k, a in enumerate(g)])
    x = rng.normal(size=g.size)
    y = (1 + 0.5 * x + np.repeat(rng.normal(size=15), 12) + rng.normal(scale=0.5, size=g.size))
    data = pd.DataFrame({"y_out": y, "x_1": x, "grp_id": g, "cls": c})
    m0 = mlm.lmer("y_out ~ 1 + (1 | grp_id/cls)", data)
    m1 = mlm.lmer("y_out ~ x_1 + (1 | grp_id/cls)", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = mlm.compare(m0, m1, names=["null_m", "with_x"])
    tables = [("ICC of y_out", out.icc_table(mlm.icc(m0))),
              ("Model comparison", comp._display().rename_axis("Model"))]
    return m1, tables


def _document(body):
    return "\\documentclass{article}\n\\begin{document}\n" + body + "\n\\end{document}\n"


def test_latex_compiles(tmp_path, awkward):
    engine = shutil.which("pdflatex") or shutil.which("lualatex")
    if engine is None:
        pytest.skip("no LaTeX engine (pdflatex/lualatex) installed: apt-get install texlive-latex-base")
    text = out.render(awkward[1], "latex", ["Convention: 100% of the ~ & _ notes"])
    assert text.count("\\begin{tabular}") == 2 and "null\\_m" in text and "cls:grp\\_id" in text
    (tmp_path / "t.tex").write_text(_document(text))
    proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "t.pdf").exists()


def test_html_parses(awkward):
    fit, tables = awkward
    text = out.render(tables, "html", ["a <note> & more"])
    root = ET.fromstring(f"<div>{text}</div>")
    parsed = root.findall("table")
    assert [t.find("caption").text for t in parsed] == ["ICC of y_out", "Model comparison"]
    for t, (_, frame) in zip(parsed, tables):
        body = t.find("tbody").findall("tr")
        assert [r.find("th").text for r in body] == [str(i) for i in frame.index]
        assert all(len(r) == len(frame.columns) + 1 for r in body)
        assert [td.text or "" for td in body[-1].findall("td")] == list(frame.iloc[-1])
    assert root.find("p/i").text == "a <note> & more"


def test_markdown_rows_have_every_cell(awkward):
    text = out.render(awkward[1], "markdown")
    blocks = [b for b in text.split("\n\n") if b.startswith("|")]
    assert len(blocks) == 2
    for block in blocks:
        rows = block.splitlines()
        assert len({r.count(" | ") for r in [rows[0], *rows[2:]]}) == 1
        assert rows[1].count("|") == rows[0].count(" | ") + 2
    assert "| null\\_m |" in text and "| cls:grp\\_id |" in text


def test_text_alignment():
    table = pd.DataFrame({"name": ["a", "bbb"], "value": ["1.5", "-10.25"]}, index=["r1", "row2"])
    assert out.render([("", table)], "text").splitlines() == [
        "      name   value", "r1    a        1.5", "row2  bbb   -10.25"]


def test_icc_table_cells(awkward):
    shown = awkward[1][0][1]
    assert list(shown.index) == ["cls:grp_id", "grp_id"]
    assert "ICC (cumulative)" in shown.columns           # nested: differs from the ICC
    assert all(v.startswith("[") and v.endswith("]") for v in shown["95% CI"])


def test_json_is_strict(awkward):
    fit, _ = awkward
    text = out.to_json(out.fit_json(fit, "x.csv"))      # allow_nan=False: no NaN/Infinity tokens
    back = json.loads(text)
    assert back["fixef"] == pytest.approx(fit.fixef.to_dict(), rel=1e-15)
    assert back["varcorr"][0]["vcov"] == pytest.approx(fit.varcorr["vcov"].iloc[0], rel=1e-15)
    assert back["df_method"] == fit.df_method
    assert back["nobs"] == 180 and back["ngroups"] == {"cls:grp_id": 45, "grp_id": 15}
