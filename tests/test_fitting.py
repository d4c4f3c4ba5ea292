"""Tests of mlm.fitting: engines, engine errors, and models that must give the same fit."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import FitError, MLMError

_DATA = {}


def data(name):
    if name not in _DATA:
        _DATA[name] = mlm.load_dataset(name)
    return _DATA[name].copy()


def crossed_toy(seed=0):
    """Crossed factors a (8 levels) and b (6 levels), a slope on x varying over a."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(8), 30)
    b = np.tile(np.arange(6), 40)
    x = rng.normal(size=a.size)
    y = (1 + 0.5 * x + rng.normal(size=8)[a] + 0.3 * rng.normal(size=8)[a] * x
         + rng.normal(size=6)[b] + rng.normal(size=a.size))
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


# ---------------------------------------------------------------------------
# The two engines agree
# ---------------------------------------------------------------------------

ENGINE_CASES = [
    ("hsb-slopes-reml", "hsb", "mathach ~ ses + (ses | school)", True),
    ("hsb-intercept-ml", "hsb", "mathach ~ ses + sector + (1 | school)", False),
    ("sleep-reml", "sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleep-ml", "sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    ("sleep-double-bar", "sleepstudy", "Reaction ~ Days + (Days || Subject)", True),
    ("pastes-nested", "pastes", "strength ~ (1 | batch/cask)", True),
    ("penicillin-crossed", "penicillin", "diameter ~ (1 | plate) + (1 | sample)", True),
]


@pytest.fixture(scope="module")
def engine_fits():
    out = {}
    for key, dataset, formula, reml in ENGINE_CASES:
        d = data(dataset)
        out[key] = (mlm.lmer(formula, d, reml=reml, engine="pls"),
                    mlm.lmer(formula, d, reml=reml, engine="statsmodels"))
    return out


@pytest.mark.parametrize("key", [c[0] for c in ENGINE_CASES])
def test_engines_agree(engine_fits, key):
    pls, sm = engine_fits[key]
    assert pls.engine == "pls" and sm.engine == "statsmodels"
    assert f"engine: {sm.engine}" in sm.summary()
    assert abs(pls.loglik - sm.loglik) < 1e-6
    np.testing.assert_allclose(pls.fixef.to_numpy(), sm.fixef.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(pls.varcorr["vcov"], sm.varcorr["vcov"], rtol=1e-4, atol=1e-8)
    assert pls.converged and sm.converged


@pytest.mark.parametrize("key", [c[0] for c in ENGINE_CASES])
def test_statsmodels_loglik_is_our_deviance(engine_fits, key):
    _, sm = engine_fits[key]
    assert abs(sm.fit_info["statsmodels_loglik"] - sm.loglik) < 1e-6
    assert "statsmodels_loglik" not in engine_fits[key][0].fit_info


def test_auto_engine_reports_its_choice(engine_fits):
    auto = mlm.lmer("Reaction ~ Days + (Days | Subject)", data("sleepstudy"))
    assert auto.engine in ("pls", "statsmodels")
    assert f"engine: {auto.engine}" in auto.summary()
    assert auto.loglik == pytest.approx(engine_fits["sleep-reml"][1].loglik, abs=1e-8)


def test_reml_and_ml_differ(engine_fits):
    reml = engine_fits["sleep-reml"][0]
    ml = engine_fits["sleep-ml"][0]
    assert reml.reml and not ml.reml
    assert reml.loglik == pytest.approx(-871.8141, abs=1e-3)   # lme4
    assert ml.loglik == pytest.approx(-875.9697, abs=1e-3)     # lme4, REML = FALSE


# ---------------------------------------------------------------------------
# Engine errors
# ---------------------------------------------------------------------------

def _chem_subset():
    chem = data("chem97")
    return chem[chem["lea"] <= 10]


ENGINE_ERRORS = [
    ("statsmodels-chem97-correlated-inner", "score ~ gcsescore + (1 | lea) + (gcsescore | school)",
     _chem_subset, "statsmodels", FitError,
     r"engine='statsmodels' cannot fit this model.*\(1 \+ gcsescore \| school\).*engine='pls'"),
    ("statsmodels-crossed-slopes", "y ~ x + (x | a) + (1 | b)", crossed_toy, "statsmodels", FitError,
     r"engine='statsmodels' cannot fit this model: the grouping factors are crossed.*engine='pls'"),
    ("unknown-engine", "Reaction ~ Days + (Days | Subject)", lambda: data("sleepstudy"), "lme4",
     MLMError, r"Unknown engine 'lme4': use one of (?=.*auto)(?=.*pls)(?=.*statsmodels)"),
    ("engine-case", "Reaction ~ Days + (Days | Subject)", lambda: data("sleepstudy"), "PLS",
     MLMError, r"Unknown engine 'PLS'"),
]


@pytest.mark.parametrize("formula, make, engine, error, match", [c[1:] for c in ENGINE_ERRORS],
                         ids=[c[0] for c in ENGINE_ERRORS])
def test_engine_errors(formula, make, engine, error, match):
    d = make()
    start = time.perf_counter()
    with pytest.raises(error, match=match) as info:
        mlm.lmer(formula, d, engine=engine)
    assert isinstance(info.value, MLMError)
    # The refusal comes before any optimisation.
    assert time.perf_counter() - start < 3.0


def test_fit_design_checks_engine():
    design = mlm.build_design("Reaction ~ Days + (1 | Subject)", data("sleepstudy"))
    with pytest.raises(MLMError, match=r"Unknown engine 'fast'"):
        mlm.fit_design(design, engine="fast")


def test_auto_fits_what_statsmodels_cannot():
    f = mlm.lmer("y ~ x + (x | a) + (1 | b)", crossed_toy())
    assert f.engine == "pls" and f.converged
    assert "engine: pls" in f.summary()
    assert f.ngroups == {"a": 8, "b": 6}


# ---------------------------------------------------------------------------
# Equivalent models give the same fit
# ---------------------------------------------------------------------------

def _sleep_str():
    s = data("sleepstudy")
    s["Subject"] = "S" + s["Subject"].astype(str)
    return s


def _sleep_str_plain():
    s = data("sleepstudy")
    s["Subject"] = s["Subject"].astype(str)
    return s


def _pastes_str():
    p = data("pastes")
    for c in ("batch", "cask"):
        p[c] = p[c].astype(str)
    return p


def _shuffled(name, seed):
    def make():
        d = data(name)
        return d.sample(frac=1, random_state=seed)
    return make


EQUIVALENT = [
    ("double-bar", "sleepstudy", "Reaction ~ Days + (Days || Subject)",
     "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", None),
    ("nested-slash", "pastes", "strength ~ (1 | batch/cask)",
     "strength ~ (1 | batch) + (1 | cask:batch)", None),
    ("implicit-intercept", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
     "Reaction ~ Days + (1 + Days | Subject)", None),
    ("numeric-vs-string-group", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
     "Reaction ~ Days + (Days | Subject)", _sleep_str),
    ("categorical-vs-string-group", "pastes", "strength ~ (1 | batch/cask)",
     "strength ~ (1 | batch/cask)", _pastes_str),
    ("reordered-rows-sleep", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
     "Reaction ~ Days + (Days | Subject)", _shuffled("sleepstudy", 1)),
    ("reordered-rows-hsb", "hsb", "mathach ~ ses + (ses | school)",
     "mathach ~ ses + (ses | school)", _shuffled("hsb", 2)),
    ("reordered-rows-crossed", "penicillin", "diameter ~ (1 | plate) + (1 | sample)",
     "diameter ~ (1 | plate) + (1 | sample)", _shuffled("penicillin", 3)),
]


@pytest.mark.parametrize("dataset, formula_a, formula_b, make_b", [c[1:] for c in EQUIVALENT],
                         ids=[c[0] for c in EQUIVALENT])
def test_equivalent_models(dataset, formula_a, formula_b, make_b):
    a = mlm.lmer(formula_a, data(dataset))
    b = mlm.lmer(formula_b, make_b() if make_b else data(dataset))
    assert abs(a.loglik - b.loglik) < 1e-8
    # Equal models, but not equal arithmetic (row order changes summation order): the
    # optimizer stops within its precision of the same optimum, about 1e-7 relative here.
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-6, atol=1e-12)
    assert list(a.fixef.index) == list(b.fixef.index)
    assert a.nobs == b.nobs and a.npar == b.npar
    assert sorted(a.ngroups.values()) == sorted(b.ngroups.values())
    np.testing.assert_allclose(np.sort(a.varcorr["vcov"].to_numpy()),
                               np.sort(b.varcorr["vcov"].to_numpy()), rtol=1e-5, atol=1e-8)


def test_reordered_rows_keep_labels():
    """Fitted values follow their rows; random effects follow their group labels."""
    d = data("sleepstudy")
    a = mlm.lmer("Reaction ~ Days + (Days | Subject)", d)
    b = mlm.lmer("Reaction ~ Days + (Days | Subject)", d.sample(frac=1, random_state=5))
    pd.testing.assert_series_equal(b.fitted.sort_index(), a.fitted, rtol=1e-6)
    pd.testing.assert_frame_equal(b.ranef["Subject"], a.ranef["Subject"], rtol=1e-5, atol=1e-6)


def test_numeric_and_string_groups_same_ranef():
    a = mlm.lmer("Reaction ~ Days + (Days | Subject)", data("sleepstudy"))
    b = mlm.lmer("Reaction ~ Days + (Days | Subject)", _sleep_str_plain())
    np.testing.assert_allclose(a.ranef["Subject"].to_numpy(), b.ranef["Subject"].to_numpy(),
                               rtol=1e-6, atol=1e-8)
    assert [str(v) for v in a.ranef["Subject"].index] == list(b.ranef["Subject"].index)


def test_group_in_the_index_suggests_reset_index():
    """Issue 11: a grouping column moved into the index is named, with the way out."""
    indexed = data("sleepstudy").set_index(["Subject", "Days"], drop=False).drop(columns="Subject")
    for call in (mlm.lmer, mlm.build_design):
        with pytest.raises(mlm.FormulaError, match=r"Unknown variable 'Subject'.*'Subject' is a "
                                                   r"level of the data's index, not a column: "
                                                   r"make it a column with data\.reset_index\(\)"):
            call("Reaction ~ Days + (Days | Subject)", indexed)
    a = mlm.lmer("Reaction ~ Days + (Days | Subject)", indexed.reset_index(level="Subject"))
    b = mlm.lmer("Reaction ~ Days + (Days | Subject)", data("sleepstudy"))
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("formula, match", [
    ("Reaction ~ np.log(, + 10) + (1 | Subject)", r"Nothing before the comma ',' inside np\.log"),
    ("Reaction ~ np.log(Days : 10) + (1 | Subject)", r"':' cannot be used inside np\.log"),
    ('Reaction ~ Q("Days) + (1 | Subject)', r"Unterminated string"),
    ("Reaction ~ I(Days^2) + (1 | Subject)", r"Python writes powers '\*\*'"),
])
def test_toolkit_formulas_raise_formula_errors(formula, match):
    """Functions that take a formula report a malformed one the way lmer does."""
    d = data("sleepstudy")
    for call in (lambda: mlm.lmer(formula, d), lambda: mlm.icc(formula, d),
                 lambda: mlm.build_design(formula, d), lambda: mlm.parse_formula(formula)):
        with pytest.raises(mlm.FormulaError, match=match):
            call()


def test_no_fixed_effects_is_a_clear_error():
    """lme4 allows a model without fixed effects; mlm says it needs one (found in issue 12's work)."""
    with pytest.raises(FitError, match=r"has no fixed effects.*keep the intercept"):
        mlm.lmer("strength ~ 0 + (1 | batch)", data("pastes"))
