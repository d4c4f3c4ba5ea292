"""Data frames in: one conversion, one validation, columns with their numpy meaning.

Every public function that takes data (``lmer``, ``build_design``, ``icc`` with a formula,
``center``, ``describe_nesting``, ``MixedResult.predict``'s ``newdata``) calls
:func:`as_pandas` first, so every frame library is accepted, and every problem is
reported, in the same way (issue 11).

:func:`model_columns` then gives the model's columns the meaning their numpy twins
have: pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``, ``string``) and
pyarrow-backed columns (``int64[pyarrow]``, ``string[pyarrow]``, ...) become the
int64 / float64 / bool / object columns a numpy-backed frame would hold, with ``pd.NA``
as a missing value, so both give the same estimates.
"""

from __future__ import annotations

import decimal
import numbers
import warnings

import numpy as np
import pandas as pd

from mlm.errors import DataError

__all__ = ["as_pandas", "model_columns", "sorted_levels"]


def as_pandas(data, what: str = "data") -> pd.DataFrame:
    """The caller's data as a pandas DataFrame, checked for the problems every tool shares.

    Parameters
    ----------
    data : pandas.DataFrame or a data frame of another library
        A pandas DataFrame is used as it is (never modified, never copied here). Any
        other data frame is converted with pandas' own
        :func:`pandas.api.interchange.from_dataframe`: for objects with Arrow's
        PyCapsule interface (``__arrow_c_stream__``: polars, pyarrow Tables, DuckDB,
        ...) it reads the Arrow stream with pyarrow, otherwise it uses the dataframe
        interchange protocol (``__dataframe__``). Without pyarrow installed (polars does
        not require it), a frame that offers ``columns`` and per-column ``to_numpy()``
        (polars, narwhals) is read column by column instead. Missing values become NaN
        (None in text columns); categorical (dictionary) columns stay categorical.
    what : str
        The argument's name, for messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        If ``data`` is not a data frame, has no rows, or has two columns of the same name.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from mlm.frames import as_pandas
    >>> as_pandas(pa.table({"y": [1.0, 2.0], "g": ["a", "b"]})).shape
    (2, 2)
    """
    frame = data if isinstance(data, pd.DataFrame) else _convert(data, what)
    if frame.shape[0] == 0:
        raise DataError(f"{what} has no rows: there is nothing to fit.")
    if not frame.columns.is_unique:
        dup = frame.columns[frame.columns.duplicated()].unique()
        raise DataError(f"{what} has more than one column named {', '.join(repr(c) for c in dup)}: "
                        "it is not clear which one the model should use. Rename or drop the "
                        "duplicates first, e.g. data.loc[:, ~data.columns.duplicated()].")
    return frame


def _convert(data, what: str) -> pd.DataFrame:
    has_stream = hasattr(data, "__arrow_c_stream__")
    if hasattr(data, "collect") and not has_stream and not hasattr(data, "__dataframe__"):
        raise DataError(f"{what} is a lazy frame ({type(data).__name__}): compute it first with "
                        f"its collect() method, e.g. data.collect().")
    if not (has_stream or hasattr(data, "__dataframe__")):
        raise DataError(f"{what} must be a pandas DataFrame or another data frame (polars, pyarrow "
                        f"Table, any frame with Arrow's PyCapsule interface), not "
                        f"{type(data).__name__}. Build one "
                        "first, e.g. pandas.DataFrame(dict_of_columns) or pandas.read_csv(path).")
    try:
        import pyarrow  # noqa: F401  (pandas reads the Arrow stream with it)
        have_arrow = True
    except ImportError:
        have_arrow = False
    if has_stream and not have_arrow and not hasattr(data, "__dataframe__"):
        return _by_columns(data, what)
    try:
        with warnings.catch_warnings():
            # pandas warns that the interchange protocol is deprecated; the conversion
            # is still its documented one, and the Arrow path is taken when it can be.
            warnings.simplefilter("ignore")
            return pd.api.interchange.from_dataframe(data)
    except Exception as exc:  # the producer's own error type varies by library
        raise DataError(f"{what} ({type(data).__name__}) could not be converted to a pandas "
                        f"DataFrame: {exc}. Convert it yourself (e.g. its to_pandas() method).") from None


def _by_columns(data, what: str) -> pd.DataFrame:
    """Column by column through numpy, for frames read without pyarrow (polars)."""
    try:
        names = list(data.columns)
        cols = {name: np.asarray(data[name].to_numpy()) for name in names}
    except Exception:
        raise DataError(f"{what} ({type(data).__name__}) can only be read with pyarrow, which is "
                        "not installed: pip install pyarrow, or pass a pandas DataFrame.") from None
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{what} has more than one column named {', '.join(map(repr, dup))}.")
    return pd.DataFrame(cols, columns=names)


def model_columns(data: pd.DataFrame, columns, what: str = "data") -> pd.DataFrame:
    """A new frame of ``columns`` with numpy dtypes, same index; ``data`` is not modified.

    Nullable and pyarrow-backed columns become their numpy twins (an integer column with
    a missing value becomes float64 with NaN, a boolean one object), text becomes object
    with NaN for missing; categoricals stay categorical. Dates and times are refused:
    their meaning as a number (days since what?) is the user's to choose.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlm.frames import model_columns
    >>> d = pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64"), "g": ["a", "b", "a"]})
    >>> model_columns(d, ["x"])["x"].tolist()
    [1.0, nan, 3.0]
    """
    columns = list(columns)
    out = model_column_values(data, columns, what)
    # copy=False: numpy columns are shared with the caller's frame under copy-on-write, so
    # a million rows are not copied before the model matrices are built (issue 16). The
    # dict's order is the columns' unless one is repeated; columns= costs 200 instead of
    # 80 us (pandas selects and reindexes).
    if len(out) == len(columns):
        return pd.DataFrame(out, index=data.index, copy=False)
    return pd.DataFrame(out, index=data.index, columns=columns, copy=False)


def model_column_values(data: pd.DataFrame, columns, what: str = "data") -> dict:
    """The columns of :func:`model_columns` as a dict, name -> Series or array, no frame.

    The design stage checks and reads these directly: a DataFrame costs more to build
    than the whole check of a small data set (issue 16). A float64, int64 or bool
    column is the caller's Series itself (shared under copy-on-write); other columns
    are their numpy twins (arrays), or Series for categoricals and text.
    """
    return {col: _numpy_twin(data[col], col, what) for col in columns}


_PLAIN = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))


def _numpy_twin(s: pd.Series, col, what: str):
    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype in _PLAIN:
        return s  # the usual case first (see below)
    if isinstance(dtype, pd.CategoricalDtype):
        return s
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa
        t = dtype.pyarrow_dtype
        if pa.types.is_dictionary(t):
            values = s.astype(object).to_numpy()
            return pd.Categorical(np.where(pd.isna(values), np.nan, values))
        if pa.types.is_temporal(t):
            _refuse_datetime(col, dtype, what)
    if (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype)):
        _refuse_datetime(col, dtype, what)
    if isinstance(dtype, np.dtype) and (dtype == np.float64 or (
            dtype in (np.int64, np.bool_))):
        # Already its numpy twin (missing values of a float column are NaN). The Series
        # itself, not its array, so that pandas' copy-on-write knows the model shares it:
        # the caller writing into the data later copies on their side, never into ours.
        return s
    missing = s.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        if missing.any():
            arr = np.array(s.astype(object).to_numpy(), dtype=object)
            arr[missing] = np.nan
            return arr
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        if missing.any():
            return s.to_numpy(dtype=float, na_value=np.nan)
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_complex_dtype(dtype):
        # numpy would drop the imaginary part without a word.
        raise DataError(f"Column '{col}' of {what} holds complex numbers ({dtype}); a model needs "
                        f"real numbers. Use data['{col}'].real or abs(data['{col}']) if one of "
                        "them is what you mean.")
    if pd.api.types.is_numeric_dtype(dtype):
        try:
            return s.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, pd.ArrowDtype)
                                            and pd.api.types.is_string_dtype(dtype)):
        # Text stays text (pandas 3's own str dtype is the numpy twin); its missing
        # values, pd.NA or NaN, are found by isna, and patsy sees it as a categorical.
        return s
    arr = s.to_numpy(dtype=object, na_value=np.nan) if missing.any() else s.to_numpy(dtype=object)
    arr = np.array(arr, dtype=object)
    if missing.any():
        arr[missing] = np.nan
    present = arr[~missing]
    if present.size and any(isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat")
                            for v in present[:50]):
        _refuse_datetime(col, "dates", what)
    if present.size and all(_is_real_number(v) for v in present):
        # An object column of numbers (a list with None, decimal.Decimal from a database)
        # is numeric, not text: R's as.numeric would read it so.
        return np.array(arr, dtype=float)
    return arr


def _is_real_number(v) -> bool:
    return isinstance(v, (numbers.Real, decimal.Decimal)) and not isinstance(v, (bool, np.bool_))


def _refuse_datetime(col, dtype, what):
    raise DataError(f"Column '{col}' of {what} holds dates or times ({dtype}); a model needs a number "
                    "or a category. Convert it first, e.g. days since the first date: "
                    f"(data['{col}'] - data['{col}'].min()).dt.days, or its year: "
                    f"data['{col}'].dt.year.")


def as_categorical(values, categories, ordered: bool = False) -> pd.Categorical:
    """``values`` as a categorical of ``categories``; other values become missing.

    Examples
    --------
    >>> from mlm.frames import as_categorical
    >>> list(as_categorical(["a", "b", "c"], ["a", "b"]))
    ['a', 'b', nan]
    """
    codes, distinct = pd.factorize(np.asarray(values, dtype=object))
    where = pd.Index(list(categories), dtype=object).get_indexer(pd.Index(distinct, dtype=object))
    codes = np.where(codes >= 0, where[codes], -1)
    return pd.Categorical.from_codes(codes, categories=list(categories), ordered=ordered)


def sorted_levels(values) -> list:
    """Distinct non-missing values in sorted order; mixed types (ints and strings in one
    column) sort as their text, as R's ``factor()`` would after ``as.character``.

    Examples
    --------
    >>> from mlm.frames import sorted_levels
    >>> sorted_levels([10, "b", 9, None, "a"])
    [10, 9, 'a', 'b']
    """
    uniq = pd.unique(pd.Series(values, dtype=object).dropna())
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=lambda v: (str(v), type(v).__name__))


class DesignWarning(UserWarning):
    """A design that can be fitted but is unlikely to mean what was intended."""


class BinaryOutcomeWarning(DesignWarning):
    """A linear mixed model is being fitted to an outcome with two values."""


class ScaleWarning(DesignWarning):
    """Predictors on very different scales: the optimum is hard to find precisely."""


#: Share of a text column's distinct values that, when numbers, makes it a numeric column
#: read as text (a CSV with decimal commas or stray spaces; issue 11).
NUMERIC_TEXT_SHARE = 0.8
#: A text or categorical predictor with more levels than this share of the rows is an id.
ID_LEVEL_SHARE = 0.5
#: Column ranges differing by more than this factor (lme4's check.scaleX uses 1e3 on SDs).
SCALE_RATIO = 1e4


def _is_text(s: pd.Series) -> bool:
    return not isinstance(s.dtype, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(s) \
        and not pd.api.types.is_bool_dtype(s)


def _grouping_columns(parsed) -> set:
    return {c for term in parsed.random for c in term.group}


def check_columns(frame, parsed, n: int | None = None) -> None:
    """Refuse columns whose values say the user meant something else (issue 11).

    ``frame`` is a DataFrame, or a dict of its columns (Series or arrays) with ``n``
    their length.

    A text column that holds numbers (``"48,7"``, ``" 51.2"``) would silently become a
    factor with a dummy per value; a text or categorical predictor with about as many
    levels as rows (an id) leaves nothing to estimate with. Grouping columns are exempt:
    their values are labels.
    """
    groups = _grouping_columns(parsed)
    n = len(frame) if n is None else n
    for col, s in frame.items():
        if col in groups or (isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiub"):
            continue  # numbers: nothing to check here
        if not isinstance(s, pd.Series):
            s = pd.Series(s, dtype=s.dtype)
        if _is_text(s):
            _check_numeric_text(s, col)
        if col == parsed.response:
            continue
        categorical = isinstance(s.dtype, pd.CategoricalDtype)
        if categorical and len(s.dtype.categories) <= max(9, ID_LEVEL_SHARE * n):
            continue  # too few categories to be an id: no need to count those used
        if _is_text(s) or categorical:
            k = s.nunique(dropna=True)
            if k >= 10 and k > ID_LEVEL_SHARE * n:
                raise DataError(
                    f"The predictor '{col}' is text or categorical with {k} different values in "
                    f"{n} rows: each value would get its own fixed effect, estimated from one or "
                    "two rows. It looks like an id or a free-text field, not a factor. Drop it, "
                    "use it as a grouping factor ((1 | " + str(col) + ")), or convert it with "
                    f"pandas.to_numeric if it holds numbers.")


def _check_numeric_text(s: pd.Series, col) -> None:
    distinct = pd.Series(pd.unique(s.dropna().to_numpy()), dtype=object)
    if distinct.empty:
        return
    parsed = pd.to_numeric(distinct.astype(str), errors="coerce")
    share = float(parsed.notna().mean())
    if share < NUMERIC_TEXT_SHARE:
        return
    bad = distinct[parsed.isna()]
    shown = ", ".join(repr(v) for v in bad.head(4))
    what = (f"{share:.0%} of its distinct values are numbers, but {len(bad)} are not "
            f"(e.g. {shown})" if len(bad) else "all its values are numbers")
    raise DataError(
        f"Column '{col}' is text, yet {what}: used as it is, every distinct value would become "
        "a category of its own. If it is a number, convert it first, e.g. "
        f"data['{col}'] = pandas.to_numeric(data['{col}'].str.replace(',', '.'), errors='coerce') "
        "(see pandas.to_numeric); if it really is a set of categories, say so with "
        f"data['{col}'].astype('category').")


def check_fixed_matrix(X, y: np.ndarray, parsed, names=None, gram=None) -> None:
    """Checks on the fixed-effects matrix before the fit: residual degrees of freedom,
    an outcome the fixed part reproduces exactly, a binary outcome, and the scales.

    Both of the first two would leave a residual variance of zero, where the profiled
    deviance is undefined (a ZeroDivisionError or an infinite gradient in the engine).
    ``X`` is a DataFrame, or a float array with its patsy column ``names``; ``gram`` is
    :func:`scaled_gram` of ``X`` when the caller has it already.
    """
    if isinstance(X, pd.DataFrame):
        X, names = X.to_numpy(dtype=float), list(X.columns)
    n, p = X.shape
    resp = parsed.response
    if p >= n:
        raise DataError(
            f"The fixed part has {p} columns for {n} rows: no residual degrees of freedom are "
            "left, so the residual variance cannot be estimated. A predictor with a value per "
            "row (an id, a date or time) or a factor with very many levels is the usual cause: "
            "drop it or use it as a grouping factor.")
    # Each column's range once (one pass over the rows), for the magnitudes and the scales.
    x_lo, x_hi = (X.min(axis=0), X.max(axis=0)) if n else (np.zeros(p), np.zeros(p))
    lo, hi = float(np.min(y)), float(np.max(y))
    _check_magnitudes(names, x_lo, x_hi, lo, hi, resp)
    spread = hi - lo  # np.ptp(y)
    if spread == 0.0:
        raise DataError(f"The outcome '{resp}' has the same value ({y[0]:.6g}) in every row used: "
                        "there is no variation to model.")
    yc = (y - y.mean()) / spread
    with np.errstate(all="ignore"):
        if _gram_residual_share(X, yc, gram) > 1e-6:
            rss = np.inf  # clearly not an exact fit: no need for the rows' least squares
        else:
            coef, *_ = np.linalg.lstsq(X, yc, rcond=None)
            rss = float(np.sum((yc - X @ coef) ** 2))
    if rss <= (1e-10) ** 2 * n:
        raise DataError(
            f"The outcome '{resp}' is an exact linear function of the fixed effects (no residual "
            "variation is left): a predictor is the outcome in disguise (a copy, a sum with "
            "it, or a row id in a tiny data set). Remove it from the formula.")
    if np.all((y == lo) | (y == hi)):
        warnings.warn(
            f"The outcome '{resp}' takes only two values ({lo:g} and {hi:g}): lmer "
            "fits a linear model to a binary outcome (a linear probability model), whose "
            "predictions can leave the range of the outcome. The usual model for a binary "
            "outcome is a logistic mixed model (glmer).", BinaryOutcomeWarning, stacklevel=4)
    _check_scales(X, names, x_lo, x_hi)


def scaled_gram(X: np.ndarray):
    """``X'X`` scaled to unit diagonal, the column norms, and its smallest eigenvalue.

    A p x p summary of the rows: tall LAPACK calls (QR, least squares) are what cost
    here, up to 50 ms on 7,000 rows when OpenBLAS's threads compete for the cores.
    """
    G = X.T @ X
    d = np.sqrt(np.diag(G))
    if X.shape[1] == 0 or not np.all(np.isfinite(G)) or not np.all(d > 0):
        return None, d, 0.0
    C = G / np.outer(d, d)
    return C, d, float(np.linalg.eigvalsh(C)[0])


_scaled_gram = scaled_gram


def gram_full_rank(X: np.ndarray, gram=None) -> bool:
    """True when ``X`` certainly has full column rank by the pivoted-QR rule of
    ``design._check_rank`` (every pivot above ``max norm * max(n, p) * eps * 10``).

    The smallest singular value bounds every pivot from below, and is at least
    ``sqrt(lambda_min) * min norm`` with ``lambda_min`` the smallest eigenvalue of the
    scaled Gram matrix; ``lambda_min > 1e-8`` keeps that bound clear of the Gram
    matrix's rounding (about ``n * eps``). False means "ask the QR", not "deficient".
    ``gram``: :func:`scaled_gram` of ``X``, when known.
    """
    C, d, lam = gram if gram is not None else _scaled_gram(np.asarray(X, dtype=float))
    if C is None or lam <= 1e-8:
        return False
    tol = d.max() * max(X.shape) * np.finfo(float).eps * 10
    return bool(np.sqrt(lam - 1e-10) * d.min() > tol)


def _gram_residual_share(X: np.ndarray, y: np.ndarray, gram=None) -> float:
    """Share of ``y'y`` left by its least-squares fit on ``X``, from the Gram matrix.

    Accurate to about ``cond * eps`` (below 1e-7 when ``lambda_min > 1e-8``); returns 0
    ("ask least squares") when ``X'X`` is too ill-conditioned to tell.
    """
    C, d, lam = gram if gram is not None else _scaled_gram(X)
    s = float(y @ y)
    if C is None or lam <= 1e-8 or s <= 0:
        return 0.0
    b = (X.T @ y) / d
    return (s - float(b @ np.linalg.solve(C, b))) / s


#: Magnitudes whose squares leave double precision (sums of squares overflow or vanish).
_TOO_BIG, _TOO_SMALL = 1e150, 1e-150


def _check_magnitudes(names, x_lo, x_hi, y_lo: float, y_hi: float, resp) -> None:
    """Refuse the outcome or a column whose squares leave double precision (from the ranges)."""
    from mlm.design import lme4_name
    columns = [(f"outcome '{resp}'", y_lo, y_hi)]
    columns += [(f"predictor column '{lme4_name(c)}'", float(a), float(b))
                for c, a, b in zip(names, x_lo, x_hi)]
    for what, lo, hi in columns:
        big, spread = max(-lo, hi), hi - lo
        if big > _TOO_BIG or 0.0 < spread < _TOO_SMALL:
            size = f"values up to {big:.3g}" if big > _TOO_BIG else f"a spread of only {spread:.3g}"
            raise DataError(f"The {what} has {size}: sums of squares of such numbers leave the range "
                            "of double precision. Rescale it first (multiply or divide by a power "
                            "of ten).")


def _check_scales(X: np.ndarray, names, x_lo, x_hi) -> None:
    """lme4's ``checkScaleX``: warn when predictor columns differ wildly in scale.

    Columns holding only 0 and 1 (dummies, the intercept) are left out, as in lme4; the
    others' ranges are compared with each other and with 1 (the intercept's scale).
    ``x_lo`` and ``x_hi`` are the columns' minima and maxima: a column whose extremes
    are not both 0 or 1 cannot be a dummy, so only the others are read again.
    """
    from mlm.design import lme4_name
    ranges = {}
    for j, (name, lo, hi) in enumerate(zip(names, x_lo, x_hi)):
        lo, hi = float(lo), float(hi)
        if lo in (0.0, 1.0) and hi in (0.0, 1.0):
            x = X[:, j]
            if np.all((x == 0) | (x == 1)):
                continue
        r = hi - lo  # np.ptp(x)
        if r > 0:
            ranges[lme4_name(name)] = r
    if not ranges:
        return
    big = max(ranges, key=ranges.get)
    small = min(ranges, key=ranges.get)
    hi, lo = max(ranges[big], 1.0), min(ranges[small], 1.0)
    if hi / lo <= SCALE_RATIO:
        return
    parts = []
    if ranges[big] > 1.0:
        parts.append(f"'{big}' ranges over {ranges[big]:.3g}")
    if ranges[small] < 1.0 or len(parts) == 0:
        parts.append(f"'{small}' over {ranges[small]:.3g}")
    warnings.warn(
        "Some predictor variables are on very different scales: "
        f"{' and '.join(parts)}, against 1 for the intercept. Consider rescaling (e.g. divide "
        "by a power of ten, or use scale(x)): the optimum is then found more precisely "
        "(lme4 gives the same advice).", ScaleWarning, stacklevel=5)
