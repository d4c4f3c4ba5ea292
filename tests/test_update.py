"""fit.update() and update_formula(), R's update() (issue 13, item 7)."""

from __future__ import annotations

import pytest

import mlm
from mlm.errors import DataError, FormulaError
from mlm.update import update_formula
from support import fit


@pytest.mark.parametrize("old, new, expected", [
    ("y ~ a + (1 | g)", "~ . + x", "y ~ a + (1 | g) + x"),
    ("y ~ a + b + (1 | g)", ". ~ . - b", "y ~ a + (1 | g)"),
    ("y ~ a + (x | g)", "~ . - (x|g) + (1 | g)", "y ~ a + (1 | g)"),
    ("y ~ a", "log(y) ~ .", "log(y) ~ a"),
    ("y ~ a", "~ . - 1", "y ~ a - 1"),
    ("y ~ a - 1 + (1 | g)", "~ . + x", "y ~ a - 1 + (1 | g) + x"),
    ("y ~ a + b", "~ a", "y ~ a"),
    ("y ~ a", "~ . - a", "y ~ 1"),
    ("y ~ a", "~ . + a", "y ~ a"),
])
def test_update_formula(old, new, expected):
    # R: update(as.formula(old), as.formula(new)) gives the same terms
    assert update_formula(old, new) == expected


@pytest.mark.parametrize("new, match", [
    ("x", r"update needs a formula with '~'"),
    ("~ . - z", r"update cannot remove 'z': the formula has no such term \(terms: 'a', '\(1 \| g\)'\)"),
])
def test_update_formula_errors(new, match):
    with pytest.raises(FormulaError, match=match):
        update_formula("y ~ a + (1 | g)", new)


def test_fit_update_adds_a_column_not_in_the_model():
    hsb = mlm.load_dataset("hsb")
    f = fit("mathach ~ ses + (1 | school)", hsb)
    g = f.update("~ . + sector")
    direct = fit("mathach ~ ses + (1 | school) + sector", hsb)
    assert g.formula == direct.formula
    assert g.loglik == pytest.approx(direct.loglik, abs=1e-9)
    h = f.update(reml=False)
    assert not h.reml and h.loglik == pytest.approx(fit("mathach ~ ses + (1 | school)", hsb, reml=False).loglik)


def test_update_without_data():
    f = fit("mathach ~ ses + (1 | school)", mlm.load_dataset("hsb"))
    d = mlm.fit_design(f.design)
    with pytest.raises(DataError, match=r"does not hold its data.*pass data="):
        d.update("~ . + sector")
