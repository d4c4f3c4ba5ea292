"""Tests of mlm.results.linear.MixedResult: shapes and names, identities, predictions, display."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import DataError, MLMError

SLEEP_F = "Reaction ~ Days + (Days | Subject)"
HSB_F = "mathach ~ ses + sector + (ses | school)"
EXAM_F = "normexam ~ standLRT + sex + (1 | school)"
SINGULAR_F = "normexam ~ standLRT + sex + (1 + standLRT + sex | school)"

_DATA = {}
_FITS = {}


def data(name):
    if name not in _DATA:
        _DATA[name] = mlm.load_dataset(name)
    return _DATA[name].copy()


def fit(key):
    """Fits shared by the tests of this module (each made once)."""
    if key not in _FITS:
        dataset, formula, reml = {
            "sleep": ("sleepstudy", SLEEP_F, True),
            "sleep_ml": ("sleepstudy", SLEEP_F, False),
            "sleep_dbar": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", True),
            "hsb": ("hsb", HSB_F, True),
            "exam": ("exam", EXAM_F, True),
            "singular": ("exam", SINGULAR_F, True),
            "pastes": ("pastes", "strength ~ (1 | batch/cask)", True),
        }[key]
        _FITS[key] = mlm.lmer(formula, data(dataset), reml=reml)
    return _FITS[key]


ALL = ["sleep", "sleep_ml", "sleep_dbar", "hsb", "exam", "pastes"]


# ---------------------------------------------------------------------------
# Shapes, names and indexes
# ---------------------------------------------------------------------------

FIXED_NAMES = {
    "sleep": ["(Intercept)", "Days"],
    "sleep_ml": ["(Intercept)", "Days"],
    "sleep_dbar": ["(Intercept)", "Days"],
    "hsb": ["(Intercept)", "ses", "sector"],
    "exam": ["(Intercept)", "standLRT", "sexM"],
    "pastes": ["(Intercept)"],
}

RANEF_SHAPES = {
    "sleep": {"Subject": (18, ["(Intercept)", "Days"])},
    "sleep_ml": {"Subject": (18, ["(Intercept)", "Days"])},
    "sleep_dbar": {"Subject": (18, ["(Intercept)", "Days"])},
    "hsb": {"school": (160, ["(Intercept)", "ses"])},
    "exam": {"school": (65, ["(Intercept)"])},
    "pastes": {"batch": (10, ["(Intercept)"]), "cask:batch": (30, ["(Intercept)"])},
}

VARCORR_ROWS = {
    "sleep": [("Subject", "(Intercept)", None), ("Subject", "Days", None),
              ("Subject", "(Intercept)", "Days"), ("Residual", None, None)],
    "sleep_dbar": [("Subject", "(Intercept)", None), ("Subject.1", "Days", None),
                   ("Residual", None, None)],
    "hsb": [("school", "(Intercept)", None), ("school", "ses", None),
            ("school", "(Intercept)", "ses"), ("Residual", None, None)],
    "exam": [("school", "(Intercept)", None), ("Residual", None, None)],
    "pastes": [("cask:batch", "(Intercept)", None), ("batch", "(Intercept)", None),
               ("Residual", None, None)],
}


@pytest.mark.parametrize("key", ALL)
def test_fixef_coefficients_vcov(key):
    f = fit(key)
    names = FIXED_NAMES[key]
    assert isinstance(f.fixef, pd.Series)
    assert list(f.fixef.index) == names and f.fixef.index.name == "term"
    co = f.coefficients
    assert list(co.columns) == ["estimate", "std_error", "df", "statistic", "p_value",
                                "conf_low", "conf_high"]
    assert list(co.index) == names and co.index.name == "term"
    np.testing.assert_array_equal(co["estimate"].to_numpy(), f.fixef.to_numpy())
    assert list(f.vcov.index) == names and list(f.vcov.columns) == names
    assert f.vcov.index.name == "term"
    np.testing.assert_allclose(co["std_error"], np.sqrt(np.diag(f.vcov)), rtol=1e-12)
    np.testing.assert_allclose(f.vcov.to_numpy(), f.vcov.to_numpy().T, rtol=1e-12)
    np.testing.assert_allclose(co["statistic"], co["estimate"] / co["std_error"], rtol=1e-12)
    assert ((co["conf_low"] < co["estimate"]) & (co["estimate"] < co["conf_high"])).all()
    assert ((co["p_value"] >= 0) & (co["p_value"] <= 1)).all()


@pytest.mark.parametrize("key", [k for k in ALL if k in VARCORR_ROWS])
def test_varcorr_layout(key):
    vc = fit(key).varcorr
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    rows = [(r.grp, None if pd.isna(r.var1) else r.var1, None if pd.isna(r.var2) else r.var2)
            for r in vc.itertuples()]
    assert rows == VARCORR_ROWS[key]
    var = vc[vc["var2"].isna()]
    np.testing.assert_allclose(var["sdcor"] ** 2, var["vcov"], rtol=1e-12)
    assert vc.iloc[-1]["sdcor"] == pytest.approx(fit(key).sigma, rel=1e-12)
    cor = vc[vc["var2"].notna()]["sdcor"]
    assert ((cor >= -1) & (cor <= 1)).all()


@pytest.mark.parametrize("key", ALL)
def test_ranef_ranef_sd_coef(key):
    f = fit(key)
    assert set(f.ranef) == set(RANEF_SHAPES[key]) == set(f.ranef_sd) == set(f.coef)
    for g, (n, cols) in RANEF_SHAPES[key].items():
        for frame in (f.ranef[g], f.ranef_sd[g]):
            assert frame.shape == (n, len(cols)) and list(frame.columns) == cols
            assert frame.index.name == g
            assert frame.index.is_unique
        assert (f.ranef_sd[g].to_numpy() >= 0).all()
        assert f.ngroups[g] == n
        # coef = fixef + ranef, column by column
        co = f.coef[g]
        assert co.index.equals(f.ranef[g].index)
        for col in co.columns:
            expected = np.full(n, f.fixef[col]) if col in f.fixef.index else 0.0
            if col in f.ranef[g].columns:
                expected = expected + f.ranef[g][col].to_numpy()
            np.testing.assert_allclose(co[col].to_numpy(), expected, rtol=1e-12, atol=1e-12)


def test_ranef_table():
    t = fit("pastes").ranef_table()
    assert list(t.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    assert len(t) == 40 and set(t["grpvar"]) == {"batch", "cask:batch"}


@pytest.mark.parametrize("key", ALL)
def test_fitted_plus_residuals_is_y(key):
    f = fit(key)
    assert f.fitted.index.equals(f.residuals.index)
    assert len(f.fitted) == f.nobs
    np.testing.assert_allclose((f.fitted + f.residuals).to_numpy(), f.design.y, rtol=0, atol=1e-9)
    pd.testing.assert_series_equal(f.predict(), f.fitted.rename("prediction"))


@pytest.mark.parametrize("key", ALL)
def test_information_criteria(key):
    f = fit(key)
    assert not np.isnan(f.aic) and not np.isnan(f.bic)
    assert f.aic == pytest.approx(f.deviance + 2 * f.npar, rel=1e-14)
    assert f.bic == pytest.approx(f.deviance + np.log(f.nobs) * f.npar, rel=1e-14)
    assert f.loglik == pytest.approx(-0.5 * f.deviance, rel=1e-14)
    assert f.npar == len(f.fixef) + len(f.theta) + 1


def test_npar_values():
    assert fit("sleep").npar == 6           # lme4: df = 6
    assert fit("sleep_dbar").npar == 5
    assert fit("pastes").npar == 4


# ---------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------

def test_predict_newdata_known_groups_equals_fitted():
    f = fit("hsb")
    new = data("hsb").sample(50, random_state=3)
    pd.testing.assert_series_equal(f.predict(new), f.fitted.loc[new.index].rename("prediction"),
                                   rtol=1e-12)


def test_predict_unseen_groups_fixed_part():
    f = fit("sleep")
    new = pd.DataFrame({"Days": [0, 5, 9], "Subject": [999, 308, 1000]}, index=["a", "b", "c"])
    pred = f.predict(new)
    assert list(pred.index) == ["a", "b", "c"]
    fixed = f.fixef["(Intercept)"] + f.fixef["Days"] * new["Days"]
    assert pred["a"] == pytest.approx(fixed["a"], rel=1e-12)
    assert pred["c"] == pytest.approx(fixed["c"], rel=1e-12)
    assert pred["b"] == pytest.approx(f.coef["Subject"].loc[308, "(Intercept)"]
                                      + 5 * f.coef["Subject"].loc[308, "Days"], rel=1e-12)
    np.testing.assert_allclose(f.predict(new, include_random=False), fixed, rtol=1e-12)


def test_predict_without_group_column_when_fixed_only():
    f = fit("sleep")
    pred = f.predict(pd.DataFrame({"Days": [1, 2]}), include_random=False)
    np.testing.assert_allclose(pred, f.fixef.iloc[0] + f.fixef.iloc[1] * np.array([1, 2]))


def test_predict_na_rows_and_index():
    f = fit("exam")
    e = data("exam")
    new = e.iloc[[0, 1, 2, 3]].copy()
    new.index = pd.Index(["w", "x", "y", "z"], name="id")
    new.loc["x", "standLRT"] = np.nan
    new.loc["z", "school"] = np.nan
    pred = f.predict(new)
    assert pred.index.equals(new.index) and pred.index.name == "id"
    assert np.isnan(pred["x"]) and np.isnan(pred["z"])
    assert pred["w"] == pytest.approx(f.fitted.iloc[0], rel=1e-12)
    assert pred["y"] == pytest.approx(f.fitted.iloc[2], rel=1e-12)


@pytest.mark.parametrize("coding", ["original-categorical", "new-categorical-one-level", "strings"])
def test_predict_categorical_with_one_level_present(coding):
    f = fit("exam")
    e = data("exam")
    new = e[e["sex"] == "M"].head(6).copy()
    if coding == "new-categorical-one-level":
        new["sex"] = pd.Categorical(new["sex"].astype(str))
    elif coding == "strings":
        new["sex"] = new["sex"].astype(str)
    pred = f.predict(new)
    np.testing.assert_allclose(pred.to_numpy(), f.fitted.loc[new.index].to_numpy(), rtol=1e-12)


PREDICT_ERRORS = [
    ("missing-column", lambda: data("sleepstudy")[["Subject"]], DataError,
     r"newdata lacks the column\(s\) 'Days'"),
    ("not-a-frame", lambda: [[1, 308]], DataError, r"newdata must be a pandas DataFrame or another.*not list"),
    ("numpy", lambda: np.array([[1, 308]]), DataError,
     r"newdata must be a pandas DataFrame or another.*not ndarray"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in PREDICT_ERRORS],
                         ids=[c[0] for c in PREDICT_ERRORS])
def test_predict_errors(make, error, match):
    with pytest.raises(error, match=match) as info:
        fit("sleep").predict(make())
    assert isinstance(info.value, MLMError)


def test_predict_unknown_level_of_fixed_factor():
    new = data("exam").head(2)
    new["sex"] = ["F", "X"]
    with pytest.raises(DataError, match=r"newdata cannot be coded.*'X'"):
        fit("exam").predict(new)


# ---------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------

def test_summary_reml_sections():
    f = fit("sleep")
    s = f.summary()
    for part in ("Linear mixed model fit by REML", "Formula: Reaction ~ Days + (Days | Subject)",
                 "REML criterion at convergence: 1743.6", "Scaled residuals:", "Random effects:",
                 "Residual", "Fixed effects:", "Number of obs: 180, groups:  Subject, 18",
                 "Correlation of fixed effects:"):
        assert part in s, part
    assert "logLik" not in s.split("Random effects:")[0]
    assert f"engine: {f.engine}" in s


def test_summary_ml_shows_criteria():
    f = fit("sleep_ml")
    s = f.summary()
    assert "fit by maximum likelihood" in s
    assert "REML criterion" not in s
    assert re.search(r"AIC\s+BIC\s+logLik\s+deviance\s+df.resid", s)
    assert f"{f.aic:.1f}" in s and f"{f.bic:.1f}" in s and f"{f.loglik:.1f}" in s
    assert f.loglik == pytest.approx(-875.9697, abs=1e-3)        # lme4, REML = FALSE


def test_summary_groups_for_nested():
    # lme4 separates grouping factors with "; "
    assert "Number of obs: 60, groups:  cask:batch, 30; batch, 10" in fit("pastes").summary()


@pytest.mark.parametrize("coding", ["float", "float-with-nan", "string"])
def test_predict_group_column_recoded(coding):
    """Known groups are recognised however the id column comes back (308, 308.0, "308")."""
    f = fit("sleep")
    new = data("sleepstudy").iloc[[0, 11, 25, 179]].copy()
    if coding == "float":
        new["Subject"] = new["Subject"].astype(float)
    elif coding == "float-with-nan":
        new = pd.concat([new, new.iloc[[0]].assign(Subject=np.nan).set_axis([-1])])
    else:
        new["Subject"] = new["Subject"].astype(str)
    pred = f.predict(new)
    known = new["Subject"].notna()
    np.testing.assert_allclose(pred[known].to_numpy(), f.fitted.loc[new.index[known]].to_numpy(),
                               rtol=1e-12)
    assert pred[~known].isna().all()


@pytest.mark.parametrize("key", ALL)
def test_str_repr_html(key):
    f = fit(key)
    assert str(f) == f.summary()
    r = repr(f)
    assert "\n" not in r and r.startswith("<MixedResult") and f.formula in r
    h = f._repr_html_()
    assert "<table" in h and "</table>" in h and "Fixed effects" in h


def test_singular_fit_reported():
    f = fit("singular")
    assert f.singular is True
    assert "Singular fit" in f.summary()
    assert any("Singular fit" in m for m in f.messages())
    assert "Singular fit" in f._repr_html_()


@pytest.mark.parametrize("key", ["sleep", "hsb", "exam"])
def test_regular_fit_not_singular(key):
    f = fit(key)
    assert f.singular is False and f.converged
    assert "Singular fit" not in f.summary()
