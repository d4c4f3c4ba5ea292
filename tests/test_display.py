"""The printed summary (issue 13, item 7): names, alignment, what is shown and what is left out."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import mlm
from mlm.results.linear import _abbreviate
from support import fit, hsb_with_cses


@pytest.fixture(scope="module")
def rb():
    """R&B's intercepts-and-slopes-as-outcomes model."""
    return fit("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb_with_cses())


@pytest.mark.parametrize("names, expected", [
    (["(Intercept)", "meanses", "cses", "meanses:cses"], ["(Inter", "meanses", "cses", "meanses:"]),
    (["a", "bb"], ["a", "bb"]),
    (["abcdefgh1", "abcdefgh2"], ["abcdefgh1", "abcdefgh2"]),
])
def test_abbreviations_are_unique(names, expected):
    out = _abbreviate(names, 6)
    assert out == expected
    assert len(set(out)) == len(out)


def test_correlation_labels_are_distinct(rb):
    """Cutting to six characters printed 'meanse' twice for meanses and meanses:cses."""
    block = str(rb).split("Correlation of fixed effects:\n")[1].split("\n\n")[0]
    labels = [line.split()[0] for line in block.splitlines()[1:]]
    assert len(labels) == len(set(labels)) == 5
    assert block.splitlines()[0].split() == ["(Inter", "meanses", "cses", "sector", "meanses:"]


def test_correlation_hidden_above_twelve_fixed_effects():
    exam = mlm.load_dataset("exam")
    f = fit("normexam ~ standLRT * vr * sex + schgend + (1 | school)", exam)
    assert len(f.fixef) > 12
    text = str(f)
    assert "Correlation of fixed effects:" not in text
    assert re.search(rf"Correlation of fixed effects not shown: there are {len(f.fixef)} fixed effects", text)


def test_random_effects_columns_align_with_long_names():
    f = fit("mathach ~ cwc(ses, school) + (cwc(ses, school) | school)", mlm.load_dataset("hsb"))
    lines = f._random_effects_lines()
    # every number column ends where its header ends
    head = lines[0]
    end_var = head.index("Variance") + len("Variance")
    end_sd = head.index("Std.Dev.") + len("Std.Dev.")
    for line in lines[1:]:
        assert re.match(r"\d", line[end_var - 1]) and re.match(r"\d", line[end_sd - 1]), line
    assert "cwc(ses, school)" in lines[2]


def test_no_corr_header_without_correlations():
    f = fit("mathach ~ ses + (1 | school)", mlm.load_dataset("hsb"))
    assert "Corr" not in f._random_effects_lines()[0]
    g = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    assert g._random_effects_lines()[0].endswith("Corr")


def test_data_line():
    f = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    assert "   Data: sleepstudy (180 rows)" in str(f)
    d = mlm.load_dataset("sleepstudy")
    d.attrs.clear()
    assert "   Data: a data frame of 180 rows" in str(fit("Reaction ~ Days + (1 | Subject)", d))


def test_anova_and_simple_slopes_print_like_r(rb):
    """Readable tables (issue 13): a title, R-style p-values, and what is held at 0."""
    a = mlm.anova(rb)
    text = str(a)
    assert text.splitlines()[0] == "Type III Analysis of Variance Table (Satterthwaite's method)"
    assert "<2e-16" in text and "..." not in text
    assert type(a[["F"]]) is pd.DataFrame                  # subsets are plain frames
    s = mlm.simple_slopes(rb, "cses", "meanses")
    lines = str(s).splitlines()
    assert lines[0] == "Simple slopes of cses by meanses"
    assert "sector held at 0" in lines[-1] and "over the 160 groups of school" in lines[-1]
    assert "<b>Simple slopes of cses by meanses</b>" in s._repr_html_()
