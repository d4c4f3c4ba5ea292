"""Likelihood-ratio tests of random terms (mlm/inference/ranova.py) against lmerTest.

Reference: ``tests/reference/inference_confint.json`` (``tests/reference/inference_confint.R``,
lmerTest 3.1.3): ``ranova(m)`` for every case, with lmerTest's row names.

Tolerances: npar and df exactly; log-likelihoods within 2e-3 and LRT within 4e-3. Each fit
(ours and lme4's) stops within about 1e-3 of its optimum in -2 log-likelihood (our
convergence rule: no Newton step could lower it by more than 0.001), so a log-likelihood
can differ by up to 1e-3 from each side and an LRT, twice a difference of two of them,
by twice that. p-values follow from LRT and df (compared at 1e-3 relative where above 1e-12).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.inference.ranova import _bar_groups, _deparse, _droppable, _labelled_terms

from test_inference_confint import REF, fitted


@pytest.mark.parametrize("case_id", sorted(REF["cases"]))
def test_ranova_matches_lmertest(case_id):
    # R: lmerTest::ranova(m)
    ref = REF["cases"][case_id]["ranova"]
    ours = mlm.ranova(fitted(case_id))
    assert list(ours.index) == ref["term"]
    assert ours.index.name == "term"
    assert list(ours.columns) == ["npar", "loglik", "aic", "lrt", "df", "p_value"]
    assert ours["npar"].tolist() == ref["npar"]
    np.testing.assert_allclose(ours["loglik"], ref["loglik"], rtol=0, atol=2e-3)
    np.testing.assert_allclose(ours["aic"], ref["aic"], rtol=0, atol=4e-3)
    assert np.isnan(ours["lrt"].iloc[0]) and np.isnan(ours["df"].iloc[0])
    lrt = np.array(ref["lrt"][1:], dtype=float)
    np.testing.assert_allclose(ours["lrt"].iloc[1:], lrt, rtol=0, atol=4e-3)
    assert ours["df"].iloc[1:].tolist() == ref["df"][1:]
    p_ref = np.array(ref["p_value"][1:], dtype=float)
    big = p_ref > 1e-12
    np.testing.assert_allclose(ours["p_value"].iloc[1:][big], p_ref[big], rtol=1e-3)
    assert np.all(ours["p_value"].iloc[1:][~big] < 1e-11)


def test_ranova_refits_with_the_fits_criterion():
    fit = fitted("hsb_ri_ml")  # ML fit: removing the only term leaves lm, ML log-likelihood
    tab = mlm.ranova(fit)
    assert tab.attrs["criterion"] == "ML"
    assert tab.attrs["formulae"]["(1 | school)"] == "mathach ~ ses + sector"
    # the ML log-likelihood of the linear model, R: logLik(lm(mathach ~ ses + sector, hsb))
    d = mlm.load_dataset("hsb")
    X = np.column_stack([np.ones(len(d)), d["ses"], d["sector"]])
    res = d["mathach"] - X @ np.linalg.lstsq(X, d["mathach"], rcond=None)[0]
    n = len(d)
    ll = -0.5 * n * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(np.sum(res ** 2)))
    assert tab.loc["(1 | school)", "loglik"] == pytest.approx(ll, rel=1e-12)
    assert tab.loc["(1 | school)", "npar"] == 4


def test_ranova_reduced_slope_model_equals_a_fresh_fit():
    # 'ses in (ses | school)' is the model with (1 | school) instead: the same as fitting it
    fit = fitted("hsb_rc")
    tab = mlm.ranova(fit)
    small = mlm.lmer("mathach ~ ses + (1 | school)", mlm.load_dataset("hsb"))
    assert tab.loc["ses in (ses | school)", "loglik"] == pytest.approx(small.loglik, abs=1e-6)
    assert tab.attrs["formulae"]["ses in (ses | school)"] == "mathach ~ ses + (1 | school)"


@pytest.mark.parametrize("formula, labels", [
    ("y ~ x + (x | g)", ["x | g"]),
    ("y ~ x + (1+x|g)", ["1 + x | g"]),
    ("y ~ x + (0 + x | g) + (1 | h)", ["0 + x | g", "1 | h"]),
    ("y ~ (x || g)", ["1 | g", "0 + x | g"]),
    ("y ~ (1 | a/b)", ["1 | b:a", "1 | a"]),
    ("y ~ (1 | a/b/c)", ["1 | c:(b:a)", "1 | b:a", "1 | a"]),
    ("y ~ x*z + (x*z | g)", ["x * z | g"]),
])
def test_term_labels_as_lme4_findbars(formula, labels):
    # R: sapply(findbars(formula), deparse)
    import dataclasses

    parsed = mlm.parse_formula(formula)

    class Fake:
        design = dataclasses.make_dataclass("D", ["formula"])(parsed)

    assert [text for _, text in _labelled_terms(Fake)] == labels


def test_helpers():
    assert _bar_groups("y ~ x + (x | g) + I(x**2) + (1 | a/b)") == ["x | g", "1 | a/b"]
    assert _deparse("x+z") == "x + z" and _deparse("-1+x") == "-1 + x" and _deparse("a:b") == "a:b"
    # R: drop.scope(~ x * z) is "x:z"; drop.scope(~ x + z) is c("x", "z")
    assert _droppable(("x", "z", "x:z")) == ["x:z"]
    assert _droppable(("x", "z")) == ["x", "z"]


def test_ranova_drops_one_slope_at_a_time():
    # lmerTest: (Days + I(Days^2) | Subject) -> one row per slope, each leaving the other
    d = mlm.load_dataset("sleepstudy").assign(D2=lambda f: (f["Days"] - 4.5) ** 2 / 10)
    fit = mlm.lmer("Reaction ~ Days + (Days + D2 | Subject)", d)
    tab = mlm.ranova(fit)
    assert list(tab.index) == ["<none>", "Days in (Days + D2 | Subject)",
                               "D2 in (Days + D2 | Subject)"]
    assert tab["df"].iloc[1:].tolist() == [3.0, 3.0]
    assert tab.attrs["formulae"]["Days in (Days + D2 | Subject)"].endswith("(1 + D2 | Subject)")


def test_ranova_needs_a_fit():
    with pytest.raises(mlm.MLMError, match="must be a fitted model from mlm.lmer"):
        mlm.ranova(pd.DataFrame())
