"""mlm.center and the formula helpers cwc()/gm(): identities and hand computations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import DataError


def small():
    return pd.DataFrame({"g": ["a", "a", "a", "b", "b", "c", "c", "c"],
                         "x": [1.0, 2.0, np.nan, 4.0, 8.0, 3.0, 3.0, 6.0],
                         "z": [1, 2, 3, 4, 5, 6, 7, 8]})


def test_within_plus_between_is_original(hsb):
    out = mlm.center(hsb, "ses", by="school")
    np.testing.assert_allclose(out["ses_within"] + out["ses_between"], hsb["ses"], atol=1e-12)
    assert out.groupby("school")["ses_within"].mean().abs().max() < 1e-12
    # R: ave(hsb$ses, hsb$school)
    np.testing.assert_allclose(out["ses_between"], hsb.groupby("school")["ses"].transform("mean"))


def test_grand_mean_centering(hsb):
    out = mlm.center(hsb, ["ses", "mathach"])
    assert abs(out["ses_centered"].mean()) < 1e-12
    np.testing.assert_allclose(out["mathach_centered"], hsb["mathach"] - hsb["mathach"].mean())


def test_missing_values_per_group():
    d = small()
    out = mlm.center(d, "x", by="g")
    # group a: mean of the observed 1 and 2 is 1.5; the missing row stays missing in within
    np.testing.assert_allclose(out["x_between"], [1.5, 1.5, 1.5, 6, 6, 4, 4, 4])
    np.testing.assert_allclose(out["x_within"], [-0.5, 0.5, np.nan, -2, 2, -1, -1, 2])
    assert np.isnan(out.loc[2, "x_within"])
    obs = d["x"].notna()
    np.testing.assert_allclose((out["x_within"] + out["x_between"])[obs], d["x"][obs])


def test_caller_frame_unchanged(hsb):
    d = small()
    before = d.copy()
    out = mlm.center(d, ["x", "z"], by="g")
    pd.testing.assert_frame_equal(d, before)
    assert out is not d and "x_within" not in d.columns
    h_before = hsb.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    pd.testing.assert_frame_equal(hsb, h_before)


def test_nested_centering_adds_up():
    d = pd.DataFrame({"s": [1, 1, 1, 1, 2, 2, 2, 2], "c": [1, 1, 2, 2, 1, 1, 2, 2],
                      "x": [1.0, 3.0, 5.0, 7.0, 2.0, 2.0, 4.0, 8.0]})
    out = mlm.center(d, "x", by=["s", "c"])
    total = out["x_within"] + out["x_between_s"] + out["x_between_c"]
    np.testing.assert_allclose(total, d["x"])
    np.testing.assert_allclose(out["x_between_s"], [4, 4, 4, 4, 4, 4, 4, 4])
    np.testing.assert_allclose(out["x_between_c"], [-2, -2, 2, 2, -2, -2, 2, 2])


def test_center_errors(hsb):
    with pytest.raises(DataError,
                       match=r"data must be a pandas DataFrame or another data frame \(polars.*not list"):
        mlm.center([1, 2], "x")
    with pytest.raises(DataError, match="Column 'sess' not found in the data"):
        mlm.center(hsb, "sess", by="school")
    with pytest.raises(DataError, match="Column 'g' is not numeric"):
        mlm.center(small(), "g")


def test_formula_helpers_match_center(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    cen = mlm.center(hsb, "ses", by="school")
    X = m.design.X
    np.testing.assert_allclose(X[:, 1], cen["ses_within"], atol=1e-12)
    np.testing.assert_allclose(X[:, 2], cen["ses_between"], atol=1e-12)


def test_prediction_uses_training_group_means(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    train_mean = hsb.groupby("school")["ses"].mean()
    new = pd.DataFrame({"ses": [1.0, -0.5, 0.25, 0.75], "school": [1224, 1224, 9586, 99999]},
                       index=["p", "q", "r", "s"])
    pred = m.predict(new, include_random=False)
    b0, bw, bb = m.fixef
    # known schools: centred on the training mean, however few new rows there are
    for label in ("p", "q", "r"):
        x, s = new.loc[label, "ses"], new.loc[label, "school"]
        mu = train_mean[s]
        assert pred[label] == pytest.approx(b0 + bw * (x - mu) + bb * mu, rel=1e-12)
    # an unseen school: its own mean in the new data (one row -> within part 0)
    assert pred["s"] == pytest.approx(b0 + bb * 0.75, rel=1e-12)
    # with the random effects, a known school adds its conditional mode
    full = m.predict(new)
    u = m.ranef["school"].loc[1224, "(Intercept)"]
    assert full["p"] == pytest.approx(pred["p"] + u, rel=1e-12)
    assert full["s"] == pytest.approx(pred["s"], rel=1e-12)


def test_object_column_of_numbers_is_centered_like_its_float_twin():
    """Found by QA: lmer read an object column of floats with None as numbers while
    center() refused it as not numeric."""
    hsb = mlm.load_dataset("hsb").head(200)
    obj = hsb.copy()
    obj["ses"] = pd.Series([None if i % 7 == 0 else v for i, v in enumerate(hsb["ses"])], dtype=object)
    flt = hsb.copy()
    flt["ses"] = obj["ses"].astype(float)
    a, b = mlm.center(obj, "ses", by="school"), mlm.center(flt, "ses", by="school")
    pd.testing.assert_frame_equal(a.drop(columns="ses"), b.drop(columns="ses"))
