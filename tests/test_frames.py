"""Frames of every kind give the same numbers, or one clear DataError (issue 11, items 2-3).

Twins: a frame whose columns are pandas' nullable or pyarrow-backed versions of numpy
columns (or a polars / pyarrow frame) is converted to those numpy columns, so the model
matrices are identical. The optimum is then the same point up to the optimizer's
stopping rule (theta within about 1e-7 relative; memory alignment alone can move the last
digits of BLAS sums), hence the 1e-6 relative tolerance on fixed effects and 1e-6
absolute on the log-likelihood.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.design import MissingDataWarning
from mlm.errors import DataError, MLMError
from mlm.frames import BinaryOutcomeWarning, ScaleWarning, as_pandas

try:
    import polars as pl
except ImportError:  # the test extra installs both; a bare pandas install skips their cases
    pl = None
try:
    import pyarrow as pa
except ImportError:
    pa = None
needs_polars = pytest.mark.skipif(pl is None, reason="polars is not installed")
needs_arrow = pytest.mark.skipif(pa is None, reason="pyarrow is not installed")

F = "Reaction ~ Days + late + (Days | Subject)"


def sleep() -> pd.DataFrame:
    """sleepstudy with text subject ids and a logical predictor (late = Days > 4)."""
    s = mlm.load_dataset("sleepstudy")
    s["Subject"] = "s" + s["Subject"].astype(str)
    s["late"] = s["Days"] > 4
    return s


@pytest.fixture(scope="module")
def base():
    return mlm.lmer(F, sleep())


def same_fit(a, b):
    assert list(a.fixef.index) == list(b.fixef.index)
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-6)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)
    assert a.nobs == b.nobs and a.nobs_dropped == b.nobs_dropped


def _astype(**dtypes):
    return lambda s: s.astype(dtypes)


TWINS = [
    ("nullable", _astype(Days="Int64", Reaction="Float64", Subject="string", late="boolean")),
    ("python-string", _astype(Subject=pd.StringDtype("python"))),
    ("pyarrow", _astype(Days="int64[pyarrow]", Reaction="double[pyarrow]",
                        Subject="string[pyarrow]", late="bool[pyarrow]")),
    ("object-text", _astype(Subject=object)),
    ("int32-float32-days", _astype(Days="int32")),
    ("categorical-subject", _astype(Subject="category")),
    ("polars", lambda s: pl.from_pandas(s)),
    ("pyarrow-table", lambda s: pa.Table.from_pandas(s, preserve_index=False)),
    ("pyarrow-batch", lambda s: pa.RecordBatch.from_pandas(s, preserve_index=False)),
]


def _marks(name):
    arrow = "pyarrow" in name or name == "polars"
    return ([needs_arrow] if arrow and name != "polars" else []) + ([needs_polars] if name == "polars" else [])


@pytest.mark.parametrize("make", [pytest.param(t[1], id=t[0], marks=_marks(t[0])) for t in TWINS])
def test_twins_give_the_same_fit(base, make):
    data = make(sleep())
    before = data.copy() if isinstance(data, pd.DataFrame) else None
    same_fit(mlm.lmer(F, data), base)
    if before is not None:
        pd.testing.assert_frame_equal(data, before)  # dtypes included: nothing converted in place


def _with_missing(days_dtype, rows=(3, 50, 177)):
    s = sleep()
    days = s["Days"].astype(days_dtype)
    days.iloc[list(rows)] = pd.NA if days_dtype != float else np.nan
    s["Days"] = days
    return s


@pytest.mark.parametrize("dtype", ["Int64", "Float64", pytest.param("int64[pyarrow]", marks=needs_arrow),
                                   pytest.param("double[pyarrow]", marks=needs_arrow)])
def test_pd_na_is_missing(dtype):
    numpy_twin = _with_missing(float)
    with pytest.warns(MissingDataWarning, match=r"3 of 180 rows dropped .*Days: 3"):
        fit = mlm.lmer(F, _with_missing(dtype))
    with pytest.warns(MissingDataWarning):
        same_fit(fit, mlm.lmer(F, numpy_twin))
    assert fit.nobs_dropped == 3
    assert list(fit.design.dropped_index) == [3, 50, 177]


@pytest.mark.parametrize("dtype", ["boolean", pytest.param("bool[pyarrow]", marks=needs_arrow), "string",
                                   pytest.param("string[pyarrow]", marks=needs_arrow)])
def test_pd_na_in_logical_and_text_columns(dtype):
    s = sleep()
    col = "late" if "bool" in dtype else "Subject"
    values = s[col].astype(dtype)
    values.iloc[[7, 70]] = pd.NA
    s[col] = values
    twin = sleep().drop(index=[7, 70])
    with pytest.warns(MissingDataWarning, match=rf"2 of 180 rows dropped .*{col}: 2"):
        fit = mlm.lmer(F, s)
    same_fit_except_dropped = mlm.lmer(F, twin)
    np.testing.assert_allclose(fit.fixef.to_numpy(), same_fit_except_dropped.fixef.to_numpy(),
                               rtol=1e-6)
    assert fit.nobs_dropped == 2


@needs_polars
def test_polars_nulls_are_missing():
    s = sleep()
    s.loc[[4, 9], "Reaction"] = np.nan
    with pytest.warns(MissingDataWarning, match=r"2 of 180 rows dropped"):
        a = mlm.lmer(F, pl.from_pandas(s, nan_to_null=True))
    with pytest.warns(MissingDataWarning):
        same_fit(a, mlm.lmer(F, s))


@needs_polars
def test_polars_without_pyarrow(monkeypatch, base):
    """polars does not require pyarrow: its frames are then read column by column."""
    data = pl.from_pandas(sleep())
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    converted = as_pandas(data)
    assert list(converted.columns) == ["Reaction", "Days", "Subject", "late"]
    same_fit(mlm.lmer(F, data), base)


@needs_arrow
def test_conversion_failure_is_a_data_error():
    class Broken:
        def __arrow_c_stream__(self, requested_schema=None):
            raise RuntimeError("stream closed")

    with pytest.raises(DataError, match=r"data \(Broken\) could not be converted to a pandas "
                                        r"DataFrame: .*stream closed.*to_pandas\(\)"):
        mlm.lmer(F, Broken())


# ---------------------------------------------------------------------------
# Duplicate column names: every function that takes data
# ---------------------------------------------------------------------------

def _dup():
    s = sleep()
    s["x"] = s["Days"]
    s["b"] = 1.0
    frame = s[["Reaction", "x", "Subject", "x", "b"]]
    frame.columns = ["y", "x", "g", "x", "b"]
    return frame


DATA_TAKERS = [
    ("lmer", lambda d: mlm.lmer("y ~ x + (1 | g)", d)),
    ("build_design", lambda d: mlm.build_design("y ~ x + (1 | g)", d)),
    ("icc", lambda d: mlm.icc("y ~ 1 + (1 | g)", d)),
    ("center", lambda d: mlm.center(d, "b", by="g")),
    ("describe_nesting", lambda d: mlm.describe_nesting(d, "g")),
    ("predict", lambda d: mlm.lmer("Reaction ~ Days + (1 | Subject)", sleep()).predict(
        d.set_axis(["Reaction", "Days", "Subject", "Days", "b"], axis=1))),
]


@pytest.mark.parametrize("call", [t[1] for t in DATA_TAKERS], ids=[t[0] for t in DATA_TAKERS])
def test_duplicate_columns_refused_everywhere(call):
    d = _dup()
    with pytest.raises(DataError, match=r"more than one column named '(x|Days)'.*Rename or drop"):
        call(d)


@needs_polars
def test_duplicate_columns_polars_without_pyarrow(monkeypatch):
    """polars itself refuses duplicate names; the check covers frames built otherwise."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)

    class Cols:
        columns = ["y", "x", "x"]

        def __arrow_c_stream__(self, requested_schema=None):
            raise NotImplementedError

        def __getitem__(self, name):
            return pl.Series([1.0, 2.0])

    with pytest.raises(DataError, match=r"more than one column named 'x'"):
        as_pandas(Cols())


@needs_polars
@pytest.mark.parametrize("call", [t[1] for t in DATA_TAKERS[:5]], ids=[t[0] for t in DATA_TAKERS[:5]])
def test_every_data_taker_accepts_polars(call):
    d = _dup().iloc[:, [0, 1, 2, 4]]
    call(pl.from_pandas(d))


# ---------------------------------------------------------------------------
# Levels, ids and indexes
# ---------------------------------------------------------------------------

def test_unused_categories(base):
    s = sleep()
    s["Subject"] = pd.Categorical(s["Subject"], categories=sorted(s["Subject"].unique()) + ["s999"])
    s["phase"] = pd.Categorical(np.where(s["late"], "late", "early"),
                                categories=["early", "middle", "late"])
    fit = mlm.lmer("Reaction ~ Days + phase + (Days | Subject)", s)
    # phase == late: the same column under another name
    np.testing.assert_allclose(fit.fixef.to_numpy(), base.fixef.to_numpy(), rtol=1e-6)
    assert fit.loglik == pytest.approx(base.loglik, abs=1e-6)
    assert list(fit.fixef.index) == ["(Intercept)", "Days", "phaselate"]
    assert fit.ngroups == {"Subject": 18}


def test_unused_levels_after_dropping_rows():
    """A level present only in dropped rows gets no column (R: drop.unused.levels)."""
    s = sleep()
    s["phase"] = np.where(s["Days"] < 2, "first", np.where(s["late"], "late", "early"))
    s.loc[s["phase"] == "first", "Reaction"] = np.nan
    with pytest.warns(MissingDataWarning):
        fit = mlm.lmer("Reaction ~ Days + C(phase) + (1 | Subject)", s)
    assert list(fit.fixef.index) == ["(Intercept)", "Days", "C(phase)late"]


def test_mixed_type_group_ids(base):
    s = sleep()
    ids = s["Subject"].str[1:].astype(int)
    s["Subject"] = np.array([v if v % 2 else f"s{v}" for v in ids], dtype=object)
    fit = mlm.lmer(F, s)
    same_fit(fit, base)
    labels = [str(v) for v in fit.ranef["Subject"].index]
    assert sorted(labels) == labels and len(labels) == 18
    new = s.head(3).copy()
    np.testing.assert_allclose(fit.predict(new).to_numpy(), fit.fitted.to_numpy()[:3], rtol=1e-12)


def test_multiindex_survives():
    s = sleep().set_index(["Subject", "Days"], drop=False)
    s.loc[("s308", 2), "Reaction"] = np.nan
    with pytest.warns(MissingDataWarning):
        fit = mlm.lmer(F, s)
    kept = s.index[s["Reaction"].notna().to_numpy()]
    assert fit.fitted.index.equals(kept) and fit.residuals.index.equals(kept)
    assert fit.fitted.index.names == ["Subject", "Days"]
    pred = fit.predict(s)  # the row without an outcome is predicted too
    assert pred.index.equals(s.index) and np.isfinite(pred.loc[("s308", 2)])
    np.testing.assert_allclose(pred.loc[kept].to_numpy(), fit.fitted.to_numpy(), rtol=1e-12)


def test_repeated_index_labels_survive():
    s = sleep()
    s.index = np.repeat(np.arange(18), 10)  # every label ten times
    s["Reaction"] = s["Reaction"].where(np.arange(180) % 17 != 0)
    with pytest.warns(MissingDataWarning, match=r"11 of 180 rows dropped"):
        fit = mlm.lmer(F, s)
    kept = s.index[s["Reaction"].notna().to_numpy()]
    assert fit.fitted.index.equals(kept) and fit.residuals.index.equals(kept)
    np.testing.assert_allclose(fit.fitted.to_numpy() + fit.residuals.to_numpy(),
                               s["Reaction"].dropna().to_numpy(), rtol=1e-12)
    pred = fit.predict(s)
    assert pred.index.equals(s.index)
    np.testing.assert_allclose(pred.to_numpy()[s["Reaction"].notna().to_numpy()],
                               fit.fitted.to_numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------
# Columns that do not mean what the user meant (item 3)
# ---------------------------------------------------------------------------

def _text_numbers(s):
    # as read from a CSV with decimal commas in some rows and stray spaces in others
    return s["Reaction"].map(lambda v: f"{v:.1f}".replace(".", ",") if v > 350 else f" {v:.1f}")


def _col(**cols):
    def make():
        s = sleep()
        for k, fn in cols.items():
            s[k] = fn(s)
        return s
    return make


BAD_COLUMNS = [
    ("text-numbers-outcome", "r ~ Days + (1 | Subject)", _col(r=_text_numbers),
     r"Column 'r' is text, yet 8\d% of its distinct values are numbers, but \d+ are not "
     r"\(e\.g\. '\d+,\d'.*pandas\.to_numeric.*astype\('category'\)"),
    ("text-numbers-predictor", "Reaction ~ x + (1 | Subject)",
     _col(x=lambda s: _text_numbers(s).where(s.index % 3 > 0, "n/a")),
     r"Column 'x' is text, yet .*\(e\.g\. .*'n/a'"),
    ("text-all-numbers", "Reaction ~ x + (1 | Subject)", _col(x=lambda s: s["Days"].astype(str)),
     r"Column 'x' is text, yet all its values are numbers"),
    ("text-id", "Reaction ~ Days + id + (1 | Subject)",
     _col(id=lambda s: [f"r{i}" for i in range(len(s))]),
     r"predictor 'id' is text or categorical with 180 different values in 180 rows.*an id"),
    ("categorical-id", "Reaction ~ Days + id + (1 | Subject)",
     _col(id=lambda s: pd.Categorical([f"r{i * 2 // 3}" for i in range(len(s))])),
     r"predictor 'id' is text or categorical with 120 different values in 180 rows"),
    ("no-residual-df", "Reaction ~ C(rowid) + (1 | Subject)", _col(rowid=lambda s: np.arange(len(s))),
     r"fixed part has 180 columns for 180 rows: no residual degrees of freedom"),
    ("datetime", "Reaction ~ when + (1 | Subject)",
     _col(when=lambda s: pd.Timestamp("2020-01-01") + pd.to_timedelta(s["Days"], unit="D")),
     r"Column 'when' of data holds dates or times \(datetime64.*\.dt\.days"),
    ("datetime-tz", "Reaction ~ when + (1 | Subject)",
     _col(when=lambda s: (pd.Timestamp("2020-01-01") + pd.to_timedelta(s["Days"], unit="D"))
          .dt.tz_localize("UTC")), r"Column 'when' of data holds dates or times"),
    ("timedelta", "Reaction ~ when + (1 | Subject)",
     _col(when=lambda s: pd.to_timedelta(s["Days"], unit="D")), r"Column 'when' of data holds dates"),
    ("date-objects", "Reaction ~ when + (1 | Subject)",
     _col(when=lambda s: [pd.Timestamp("2020-01-01").date()] * len(s)),
     r"Column 'when' of data holds dates or times \(dates\)"),
    ("arrow-timestamp", "Reaction ~ when + (1 | Subject)",
     _col(when=lambda s: pytest.importorskip("pyarrow") and (
         pd.Timestamp("2020-01-01") + pd.to_timedelta(s["Days"], unit="D")).astype("timestamp[us][pyarrow]")), r"Column 'when' of data holds dates or times"),
    ("exact-fit", "y2 ~ Days + (1 | Subject)", _col(y2=lambda s: 2.0 * s["Days"] + 1),
     r"outcome 'y2' is an exact linear function of the fixed effects"),
    ("constant-outcome", "c ~ Days + (1 | Subject)", _col(c=lambda s: 3.0),
     r"outcome 'c' has the same value \(3\) in every row used"),
]


@pytest.mark.parametrize("formula, make, match", [c[1:] for c in BAD_COLUMNS],
                         ids=[c[0] for c in BAD_COLUMNS])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_bad_columns(formula, make, match, reml):
    data = make()
    before = data.copy()
    with pytest.raises(DataError, match=match):
        mlm.lmer(formula, data, reml=reml)
    pd.testing.assert_frame_equal(data, before)


def test_text_outcome_recommends_nothing_missing():
    s = sleep()
    s["r"] = np.where(s["Reaction"] > 300, "slow", "fast")
    with pytest.raises(DataError, match=r"outcome 'r' is not numeric") as info:
        mlm.lmer("r ~ Days + (1 | Subject)", s)
    assert "logistic" not in str(info.value) and "glmer" not in str(info.value)


@pytest.mark.parametrize("values", [(0, 1), (1, 2), (-1.5, 4.0)], ids=["0/1", "1/2", "two-reals"])
def test_binary_outcome_warns_once(values):
    s = sleep()
    s["y"] = np.where(s["Reaction"] > 300, values[1], values[0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mlm.lmer("y ~ Days + (1 | Subject)", s)
    binary = [w for w in seen if issubclass(w.category, BinaryOutcomeWarning)]
    assert len(binary) == 1
    with pytest.warns(BinaryOutcomeWarning, match=r"outcome 'y' takes only two values .*linear model "
                                                  r"to a binary outcome.*logistic mixed model \(glmer\)"):
        mlm.lmer("y ~ Days + (1 | Subject)", s)


def test_badly_scaled_predictor_warns_and_numpy_stays_quiet():
    hsb = mlm.load_dataset("hsb")
    hsb["ses"] = hsb["ses"] * 1e4
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mlm.lmer("mathach ~ ses + (ses | school)", hsb)
    assert not [w for w in seen if issubclass(w.category, RuntimeWarning)]
    with pytest.warns(ScaleWarning, match=r"Some predictor variables are on very different scales: "
                                          r"'ses' ranges over 6\.45e\+04.*Consider rescaling"):
        mlm.lmer("mathach ~ ses + (ses | school)", hsb)


def test_small_and_large_scales_named():
    s = sleep()
    s["tiny"] = s["Days"] * 1e-6
    s["huge"] = s["Days"] ** 2 * 1000
    with pytest.warns(ScaleWarning, match=r"'huge' ranges over 8\.1e\+04 and 'tiny' over 9e-06"):
        mlm.lmer("Reaction ~ tiny + huge + (1 | Subject)", s)


def test_ordinary_scales_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlm.lmer("mathach ~ ses + size + sector + (ses | school)", mlm.load_dataset("hsb"))


def test_every_error_is_an_mlm_error():
    for name, formula, make, _ in BAD_COLUMNS:
        if name.startswith("arrow") and pa is None:
            continue
        with pytest.raises(MLMError):
            mlm.lmer(formula, make())


@needs_polars
def test_predict_accepts_polars_and_nullable_newdata(base):
    new = sleep().head(12)
    expected = base.predict(new).to_numpy()
    np.testing.assert_allclose(base.predict(pl.from_pandas(new)).to_numpy(), expected, rtol=1e-12)
    nullable = new.astype({"Days": "Int64", "Subject": "string", "late": "boolean"})
    nullable.loc[nullable.index[3], "Days"] = pd.NA
    pred = base.predict(nullable)
    assert np.isnan(pred.iloc[3])
    np.testing.assert_allclose(np.delete(pred.to_numpy(), 3), np.delete(expected, 3), rtol=1e-12)


def test_pandas_frames_are_used_as_they_are():
    d = sleep()
    assert as_pandas(d) is d


# --- found by QA on inputs the tests above did not hold (issue 11: "inputs you have not seen")

def test_object_column_of_numbers_is_numeric():
    """A column of Python floats with None and NaN (object dtype: a list with None, a
    database driver) is the float column with NaN: R's as.numeric reads it so."""
    s = sleep()
    s.loc[[3, 50], "Days"] = np.nan
    o = sleep()
    o["Days"] = pd.Series([None if i == 3 else (np.nan if i == 50 else float(v))
                           for i, v in enumerate(o["Days"])], dtype=object)
    before = o.copy()
    with pytest.warns(MissingDataWarning):
        a = mlm.lmer(F, s)
    with pytest.warns(MissingDataWarning):
        b = mlm.lmer(F, o)
    same_fit(a, b)
    pd.testing.assert_frame_equal(o, before)


def test_decimal_columns_are_numbers(base):
    import decimal
    s = sleep()
    s["Reaction"] = [decimal.Decimal(repr(v)) for v in s["Reaction"]]
    s["Days"] = [decimal.Decimal(int(v)) for v in s["Days"]]
    same_fit(base, mlm.lmer(F, s))


def test_complex_column_refused():
    s = sleep()
    s["Days"] = s["Days"] + 1j
    with pytest.raises(DataError, match=r"Column 'Days' of data holds complex numbers.*\.real"):
        mlm.lmer(F, s)


@pytest.mark.parametrize("dtype", [bool, "boolean"])
def test_logical_outcome_names_the_ways_out(dtype):
    s = sleep()
    s["slow"] = pd.array(s["Reaction"] > 300, dtype=dtype)
    if dtype == "boolean":
        s.loc[5, "slow"] = pd.NA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)  # the pd.NA row is dropped first
        with pytest.raises(DataError, match=r"outcome 'slow' is logical \(True/False\).*"
                                            r"data\['slow'\]\.astype\(int\).*mlm\.glmer\("):
            mlm.lmer("slow ~ Days + (1 | Subject)", s)


@pytest.mark.skipif(pl is None, reason="polars not installed")
def test_lazy_polars_frame_says_collect():
    with pytest.raises(DataError, match=r"lazy frame \(LazyFrame\).*collect\(\)"):
        mlm.lmer(F, pl.from_pandas(sleep()).lazy())
