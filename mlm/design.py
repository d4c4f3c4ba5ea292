"""The design stage: a parsed formula and a DataFrame in, model matrices out.

:func:`build_design` checks the data (type, columns, missing and infinite values,
grouping factors), drops incomplete rows while counting them, and builds the
fixed-effects matrix and one block of columns per random-effects term. The result, a
frozen :class:`Design`, is everything an engine needs; it is reused for refits
(bootstrap, simulation) and keeps patsy's design information so that predictions on
new data are coded the same way.

Cost (issue 16): each model column is looked up once, and the checks read a dict of
its values (Series or arrays), not DataFrames: missing values are found with one
vectorised mask per column (counted per column only when something is missing), and
the model frame (:attr:`Design.frame`) is built on first read, which a fit never does.
When every factor of the formula is a column name, the matrices are read straight from
the columns (:mod:`mlm.design_columns`, coded as patsy codes them), and patsy evaluates
only formulas that need it (transforms, ``C()``, ``I()``, splines). The rows are not
copied beyond the model matrices: numeric columns of the caller's frame are shared
read-only (pandas' copy-on-write), and random-effects columns that the fixed-effects
matrix already holds are a view of it. ``benchmarks/design_parts.py`` times the pieces.

The caller's DataFrame is never modified: nothing is ever written into its columns.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
import scipy.linalg as sla

from mlm.toolkit.centering import FORMULA_HELPERS
from mlm.errors import DataError, FormulaError
from mlm.formula import ALLOWED_FUNCTIONS, ParsedFormula, RandomTerm, parse_formula
from mlm.design_columns import _termlists, build_matrix, column_plan
from mlm.transforms import TRANSFORMS
from mlm.frames import (DesignWarning, as_categorical, as_pandas, check_columns, check_fixed_matrix,
                        gram_full_rank, model_column_values, scaled_gram, sorted_levels)

__all__ = ["Design", "RandomBlock", "build_design", "eval_environment", "lme4_name"]

_NUMPY_FUNCTIONS = ("log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan")


#: Build numeric columns and plain factors without patsy's evaluation (mlm.design_columns);
#: False forces patsy's path (the equivalence tests compare the two).
DIRECT_COLUMNS = True


class MissingDataWarning(UserWarning):
    """Rows with missing values in model variables were dropped (and counted)."""


def eval_environment() -> patsy.EvalEnvironment:
    """patsy's evaluation environment: exactly the functions a formula may call.

    The caller's namespace is never consulted, so a name that is not a column or one
    of these functions cannot resolve to anything (the parser rejects it first).
    """
    ns = {name: getattr(np, name) for name in _NUMPY_FUNCTIONS}
    ns.update({"np": np, "numpy": np})
    ns.update(TRANSFORMS)  # R's scale(); NaN-aware center/standardize (mlm.transforms)
    ns.update(FORMULA_HELPERS)
    for name in ("Treatment", "Sum", "Diff", "Helmert", "Poly"):
        ns[name] = getattr(patsy, name)
    missing = set(ALLOWED_FUNCTIONS) - set(ns) - {"C", "I", "Q"}
    assert not missing, f"allowed but not provided: {missing}"
    return patsy.EvalEnvironment([ns])


def lme4_name(patsy_name: str) -> str:
    """lme4's name for a patsy column: ``Intercept`` -> ``(Intercept)``, ``sex[T.M]`` -> ``sexM``."""
    if patsy_name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", patsy_name)


@dataclass(frozen=True)
class RandomBlock:
    """The columns and grouping of one random-effects term.

    Attributes
    ----------
    term : RandomTerm
        The parsed term, e.g. ``(1 + ses | school)``.
    group_name : str
        The grouping factor's name as lme4 prints it (``school``, ``cask:batch``).
    columns : tuple of str
        Names of the term's columns, lme4 style (``(Intercept)``, ``ses``).
    Z : ndarray, shape (n, k)
        The term's columns for the model rows.
    codes : ndarray of int, shape (n,)
        0-based level of each row in the grouping factor.
    levels : pandas.Index
        The level labels, in sorted order (lme4's order).
    design_info : patsy.DesignInfo
        For rebuilding the columns on new data (in patsy's order).
    order : tuple of int
        Positions of patsy's columns in ``Z`` (formula order, as lme4).
    """

    term: RandomTerm
    group_name: str
    columns: tuple
    Z: np.ndarray = field(repr=False)
    codes: np.ndarray = field(repr=False)
    levels: pd.Index = field(repr=False)
    design_info: object = field(repr=False)
    order: tuple = ()

    @property
    def k(self) -> int:
        """Number of random effects per level."""
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)


@dataclass(frozen=True)
class Design:
    """Model matrices for one formula on one data set.

    Attributes
    ----------
    formula : ParsedFormula
    y : ndarray, shape (n,)
        The outcome.
    X : ndarray, shape (n, p)
        The fixed-effects columns.
    fixed_names : tuple of str
        lme4-style names of the columns of ``X``.
    blocks : tuple of RandomBlock
        One per random-effects term, in formula order.
    frame : pandas.DataFrame
        The model variables for the rows used (index = the caller's row labels); its
        numeric columns share memory with the caller's frame when no row was dropped.
        Built on first read (a fit does not need it).
    nobs_dropped : int
        Rows dropped because a model variable was missing.
    dropped_index : pandas.Index
        Their labels.
    x_info : patsy.DesignInfo
        For building ``X`` on new data (columns in patsy's order).
    x_order : tuple of int
        Positions of patsy's columns in ``X`` (lme4's formula order).
    """

    formula: ParsedFormula
    y: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    fixed_names: tuple
    blocks: tuple
    frame: pd.DataFrame = field(repr=False)
    nobs_dropped: int
    dropped_index: pd.Index = field(repr=False)
    x_info: object = field(repr=False)
    x_order: tuple = ()

    @property
    def nobs(self) -> int:
        """Number of rows used."""
        return self.X.shape[0]

    @property
    def grouping_factors(self) -> dict:
        """Grouping factor name -> its level labels (each factor once)."""
        out = {}
        for b in self.blocks:
            out.setdefault(b.group_name, b.levels)
        return out

    def pls_terms(self):
        """The random-effects terms in the form :class:`mlm.engine.pls.PLSProblem` takes."""
        return [(b.Z, b.codes, b.n_levels, b.group_name) for b in self.blocks]


class _FrameParts:
    """The model frame's columns (name -> Series or array) and row labels, not yet a frame."""

    __slots__ = ("columns", "index")

    def __init__(self, columns: dict, index: pd.Index):
        self.columns, self.index = columns, index

    def build(self) -> pd.DataFrame:
        # No columns= argument: the dict's order is the variables' (and pandas selects and
        # reindexes when given one: 200 instead of 80 us).
        return pd.DataFrame(self.columns, index=self.index, copy=False)


class _LazyFrame:
    """``Design.frame``, made into a DataFrame on first use.

    A fit never reads the frame (it reads ``X``, ``y`` and the blocks); building it costs
    a sixth of the design stage of a small model (80 us; issue 16), so
    :func:`build_design` stores its columns (:class:`_FrameParts`) and the first access
    builds the frame, once. A data descriptor: the frozen dataclass's ``__init__`` and
    :func:`dataclasses.replace` store through ``__set__``, and a DataFrame given there is
    kept as it is.
    """

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__["frame"]
        if isinstance(value, _FrameParts):
            value = value.build()
            obj.__dict__["frame"] = value
        return value

    def __set__(self, obj, value):
        obj.__dict__["frame"] = value


Design.frame = _LazyFrame()


def _check_frame(data, what: str = "data") -> pd.DataFrame:
    """The data as a pandas DataFrame (see :func:`mlm.frames.as_pandas`)."""
    return as_pandas(data, what)


def group_codes(frame: pd.DataFrame, columns) -> tuple[np.ndarray, pd.Index]:
    """0-based codes and sorted level labels of the (interaction of the) grouping columns.

    A numeric grouping column is a factor, as in lme4. Labels of an interaction are the
    levels joined by ':' in the order of ``columns`` (lme4's ``b:a`` for ``a/b``).
    ``frame`` is a DataFrame or a dict of its columns (Series or arrays).
    """
    cols = list(columns)
    if len(cols) == 1:
        values = frame[cols[0]]
        if not isinstance(values, pd.Series) and not isinstance(values.dtype, np.dtype):
            values = pd.Series(values, copy=False)  # a pandas array (pd.Categorical)
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.cat.remove_unused_categories()
            return values.cat.codes.to_numpy().astype(np.intp), pd.Index(values.cat.categories)
        if pd.api.types.is_integer_dtype(values.dtype) and len(values):
            # Integer ids over a modest range: a table of the values present, no hashing
            # and no sort of the rows (a million rows: 8 MB instead of 40 MB, issue 16).
            arr = _array(values)
            lo, hi = int(arr.min()), int(arr.max())
            if hi - lo <= 4 * len(arr):
                return _integer_codes(arr, lo, hi)
        if pd.api.types.is_numeric_dtype(values.dtype):
            # Hash, then sort only the distinct values (np.unique sorts every row).
            first, uniques = pd.factorize(_array(values), sort=True)
            return first.astype(np.intp, copy=False), pd.Index(uniques)
        # Text: hash first, sort only the distinct labels (np.unique sorts every row,
        # 7 s for a million rows); mixed types sort as text (mlm.frames.sorted_levels).
        first, distinct = pd.factorize(values)
        levels = sorted_levels(distinct)
        distinct = pd.Index(np.asarray(distinct, dtype=object), dtype=object)
        codes = pd.Index(levels, dtype=object).get_indexer(distinct)[first]
        return codes.astype(np.intp), pd.Index(levels)
    parts = []
    for c in cols:
        codes, levels = group_codes(frame, [c])
        parts.append((codes, levels))
    n = len(parts[0][0])
    mult = np.ones(n, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    for codes, levels in reversed(parts):
        key += codes * mult
        mult = mult * len(levels)
    uniq, codes = np.unique(key, return_inverse=True)
    labels = []
    for first in uniq:
        rem = int(first)
        pieces = []
        for _, levels in reversed(parts):
            pieces.append(str(levels[rem % len(levels)]))
            rem //= len(levels)
        labels.append(":".join(reversed(pieces)))
    return codes.astype(np.intp), pd.Index(labels)


def _integer_codes(arr: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, pd.Index]:
    """Codes and levels of integer ids between ``lo`` and ``hi``, by a table of the values present.

    One array of the rows is made besides the codes, at most (a million rows: 8 MB instead
    of 24 MB, issue 16). The codes are always a new, writable array, never a view of the
    caller's column: ``np.bincount`` copies a read-only array (a column under pandas'
    copy-on-write) at every call, and the engine calls it a dozen times per fit.
    """
    offset = arr if lo == 0 else arr - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[offset] = True
    levels = pd.Index((np.flatnonzero(present) + lo).astype(arr.dtype))
    if present.all():  # ids lo .. hi, every one used: the offsets are the codes
        return (offset.astype(np.intp) if offset is arr else offset.astype(np.intp, copy=False)), levels
    rank = np.cumsum(present, dtype=np.intp) - 1
    return rank[offset], levels


def _array(values) -> np.ndarray:
    """A column's numpy values; ``Series.to_numpy`` (np.asarray asks a Series for
    ``__array_interface__`` through pandas' slow attribute lookup first)."""
    return values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)


def _missing_mask(values) -> np.ndarray | None:
    """The rows where a model column is missing (``isna``'s meaning), or None if none is.

    One vectorised test per column, without an ``isna()`` frame (issue 16); integer and
    logical numpy columns cannot hold a missing value.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iub":
            return None
        arr = _array(values)
        mask = np.isnan(arr) if dtype.kind == "f" else pd.isna(arr)
    elif isinstance(dtype, pd.CategoricalDtype):
        mask = np.asarray(values.array.codes) < 0
    else:
        mask = np.asarray(pd.isna(values))
    return mask if mask.any() else None


def _drop_missing(missing: pd.DataFrame, parsed: ParsedFormula):
    """Rows kept and labels dropped, from the frame of missing-value masks.

    Only called when some value is missing: the counts per column are for the message.
    """
    frame = missing
    response = parsed.response if parsed.response in frame.columns else None
    if response is not None and missing[response].all():
        raise DataError(f"The outcome '{response}' is missing in every row: there is nothing to fit.")
    bad = missing.any(axis=1)
    n_bad = int(bad.sum())
    if n_bad == len(frame):
        worst = missing.sum().sort_values(ascending=False)
        raise DataError("Every row has a missing value in at least one model variable "
                        f"(most missing: {', '.join(f'{c} ({n})' for c, n in worst.head(3).items())}). "
                        "Remove the variable or impute it.")
    if n_bad:
        counts = missing.sum()
        which = ", ".join(f"{c}: {n}" for c, n in counts[counts > 0].items())
        warnings.warn(f"{n_bad} of {len(frame)} rows dropped because of missing values "
                      f"(missing per variable: {which}).", MissingDataWarning, stacklevel=4)
    bad = bad.to_numpy()
    return ~bad, frame.index[bad]


def _check_values(columns: dict, parsed: ParsedFormula) -> None:
    """Infinite values, and an outcome that is logical or not numeric.

    ``columns``: name -> the column's values (Series or array) in the rows kept.
    """
    for col, values in columns.items():
        dtype = values.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            # Of the numpy twins (float64, int64, bool, object, categorical, text) only
            # float64 can be infinite; it is read in place, not copied.
            arr = _array(values)
            if np.isinf(arr).any():
                n_inf = int(np.isinf(arr).sum())
                raise DataError(f"Column '{col}' has {n_inf} infinite value(s). "
                                "Replace them (e.g. with NaN, to drop those rows) before fitting.")
    resp = parsed.response
    if resp in columns:
        values = columns[resp]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fi":
            return  # numbers, never Python bools
        if not isinstance(values, pd.Series):
            values = pd.Series(values, copy=False)
        present = values.dropna()
        if pd.api.types.is_bool_dtype(values) or (
                len(present) and all(isinstance(v, (bool, np.bool_)) for v in present)):
            raise DataError(f"The outcome '{resp}' is logical (True/False). A linear model needs "
                            f"numbers: code it 0/1 with data['{resp}'].astype(int) (a linear model "
                            "of a binary outcome); the usual model for a binary outcome is "
                            f"mlm.glmer(formula, data, family='binomial').")
        if not pd.api.types.is_numeric_dtype(values):
            raise DataError(f"The outcome '{resp}' is not numeric (dtype {values.dtype}). "
                            "A linear mixed model needs a numeric outcome: convert numbers stored "
                            "as text with pandas.to_numeric; a binary (yes/no) outcome must be "
                            f"coded 0/1 first, e.g. (data['{resp}'] == 'yes').astype(int).")


def _patsy_frames(frame: pd.DataFrame, keep: np.ndarray, parsed: ParsedFormula):
    """The two frames patsy sees: every row (to memorise transforms) and the rows kept.

    R evaluates ``scale(x)``, ``log(x)``, ... on the whole data before ``na.omit`` drops
    the rows with a missing model variable (``model.frame``), so a transform's state
    (the mean and SD of ``scale``, the group means of ``cwc``) comes from all values of
    its variable. Factor levels, though, are those of the rows kept
    (``drop.unused.levels``): text, logical and categorical columns become categoricals
    of the levels in the kept rows, and a numeric column used inside ``C()`` is blanked
    in the dropped rows. Both frames get a plain 0..n-1 index (patsy aligns on it; the
    caller's MultiIndex or repeated labels stay on ``Design.frame``).
    """
    memo = {}
    kept_rows = np.flatnonzero(keep)
    coded = set(re.findall(r"\bC\(\s*(?:Q\(\s*['\"])?([A-Za-z_][\w.]*)", parsed.fixed_formula))
    for term in parsed.random:
        coded.update(re.findall(r"\bC\(\s*(?:Q\(\s*['\"])?([A-Za-z_][\w.]*)", term.lhs))
    text = parsed.fixed_formula + " " + " ".join(term.lhs for term in parsed.random)
    for col in frame.columns:
        s = frame[col]
        if str(col) not in text:
            continue  # a grouping column only: patsy never sees it (group_codes does)
        if isinstance(s.dtype, pd.CategoricalDtype):
            used = set(s.iloc[kept_rows].dropna().unique())
            cats = [c for c in s.cat.categories if c in used]
            memo[col] = as_categorical(s, cats, s.cat.ordered)
        elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            memo[col] = as_categorical(s, sorted_levels(s.to_numpy()[kept_rows]))
        elif col in coded:
            memo[col] = _coded_numbers(s.to_numpy(dtype=float), keep, kept_rows)
        else:
            memo[col] = s.to_numpy()
    memo = pd.DataFrame(memo, columns=list(memo))
    return memo, memo.iloc[kept_rows].reset_index(drop=True)


def _coded_numbers(values: np.ndarray, keep: np.ndarray, kept_rows: np.ndarray):
    """A numeric column written ``C(x)``: its levels are the values in the kept rows.

    Whole numbers become integer levels, so that the dummies are named ``C(x)1`` as R's
    ``factor(x)1``, not ``C(x)1.0`` (gallery issue: ScotsSec's ``social``); other numbers stay
    floats. Dropped rows are missing, so a level seen only there is no column.
    """
    kept = values[kept_rows]
    if kept.size and np.all(np.isfinite(kept)) and np.all(kept == np.round(kept)) \
            and np.all(np.abs(kept) < 2 ** 53):
        levels = np.unique(kept).astype(np.int64)
        codes = np.searchsorted(levels, np.where(keep, values, levels[0]).astype(np.int64))
        return pd.Categorical.from_codes(np.where(keep, codes, -1), categories=levels)
    arr = values.copy()
    arr[~keep] = np.nan
    return arr


def _matrices(termlists, memo: pd.DataFrame, kept: pd.DataFrame, env, what: str):
    """patsy's matrices for ``termlists`` on ``kept``, transforms memorised on ``memo``.

    The parser has checked the syntax; what can still fail is evaluation on these data
    (arithmetic on text, an unknown level, a transform that gives NaN). Every failure,
    patsy's or one raised past it by Python, numpy or pandas, becomes one MLMError naming
    the term (issue 11).
    """
    try:
        # log(0) in a dropped row, or of a bad value reported below by column, would
        # otherwise surface as numpy's warning.
        with np.errstate(all="ignore"):
            builders = patsy.design_matrix_builders(termlists, lambda: iter([memo]), env,
                                                    NA_action="drop")
            return patsy.build_design_matrices(builders, kept, NA_action="raise",
                                               return_type="dataframe")
    except patsy.PatsyError as exc:
        raise _evaluation_error(what, exc.message, getattr(exc, "origin", None)) from None
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            ArithmeticError, RecursionError, MemoryError) as exc:
        raise _evaluation_error(what, f"{type(exc).__name__}: {exc}", None) from None


def _evaluation_error(what: str, message: str, origin):
    """The MLMError for a term patsy could not evaluate: the term named and marked."""
    message = message.removeprefix("Error evaluating factor: ")
    found = re.fullmatch(r"(.*) from '(.*)'", what, flags=re.S)
    part, formula = (found.group(1), found.group(2)) if found else (what, None)
    term = origin.code[origin.start:origin.end] if origin is not None else None
    where = f"'{term}' in the {part}" if term else f"the {what}"
    pos = origin.start if term and origin.code == formula else None
    if "missing values" in message:
        return DataError(f"Could not build {where}: it gives missing (NaN) values on some rows "
                         f"(e.g. the log of a negative number). Transform the variable "
                         f"differently, or drop those rows first.")
    return FormulaError(f"Could not build {where}: {message}. Check that the columns it uses "
                        f"hold the kind of values it needs (numbers for arithmetic, existing "
                        f"levels for C()), or change the term.", formula=formula, position=pos,
                        length=max(1, origin.end - origin.start) if pos is not None else 1)


def _evaluate(formula_rhs: str, memo, kept, env, what: str):
    termlist = _termlists(formula_rhs)[1]
    (out,) = _matrices([termlist], memo, kept, env, f"{what} from '{formula_rhs}'")
    return out


def _check_rank(X: np.ndarray, names, gram=None) -> None:
    """Refuse collinear fixed-effects columns (patsy ``names``), by pivoted QR when the
    scaled Gram matrix (``gram``, :func:`mlm.frames.scaled_gram`) cannot vouch for them."""
    if X.shape[1] == 0 or gram_full_rank(X, gram):
        return
    _, R, piv = sla.qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    tol = d.max() * max(X.shape) * np.finfo(float).eps * 10 if d.size else 0
    rank = int((d > tol).sum())
    if rank < X.shape[1]:
        dropped = [lme4_name(names[i]) for i in sorted(piv[rank:])]
        raise DataError("The fixed-effects columns are collinear: "
                        f"{', '.join(repr(c) for c in dropped)} "
                        f"{'is a linear combination' if len(dropped) == 1 else 'are linear combinations'} "
                        "of the others (for example a variable constant in the data, or a dummy for "
                        "every level together with the intercept). Remove it from the formula.")


def build_design(formula: ParsedFormula | str, data: pd.DataFrame, *,
                 observation_level: bool = False) -> Design:
    """Build the model matrices of ``formula`` on ``data``.

    Parameters
    ----------
    formula : ParsedFormula or str
        The model; a string is parsed with :func:`mlm.parse_formula`.
    data : pandas.DataFrame or another data frame
        The data. Not modified; converted and checked by :func:`mlm.frames.as_pandas`.
        Transforms (``scale(x)``, ``cwc(x, g)``) are computed on all rows of the data,
        as R does, before incomplete rows are dropped.
    observation_level : bool, default False
        Allow a grouping factor with a level per row (an observation-level random
        effect: overdispersion in a binomial-count or Poisson GLMM, :func:`mlm.glmer`).

    Returns
    -------
    Design

    Raises
    ------
    MLMError
        For data that is not a data frame, is empty or repeats a column name, unknown
        columns, a non-numeric or entirely missing outcome, numbers stored as text, dates,
        an id used as a predictor, infinite values, collinear fixed effects, no residual
        degrees of freedom, or a grouping factor with one level or with as many levels as
        rows.

    Warns
    -----
    BinaryOutcomeWarning
        The outcome takes two values (a linear model of a binary outcome).
    ScaleWarning
        Predictor ranges differ by more than 1e4 (lme4's "consider rescaling").

    Examples
    --------
    >>> import mlm
    >>> d = mlm.build_design("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> d.X.shape, d.blocks[0].n_levels
    ((180, 2), 18)
    """
    data = _check_frame(data)
    if isinstance(formula, ParsedFormula):
        parsed = formula
    else:
        columns = tuple(str(c) for c in data.columns)
        index_names = tuple(str(n) for n in data.index.names if n is not None)
        if isinstance(formula, str):
            parsed = _parse(formula, columns, index_names)
        else:
            parsed = parse_formula(formula, columns=list(columns), index_names=list(index_names))
    variables, slopes = _formula_facts(parsed)
    missing_cols = [v for v in variables if v not in data.columns]
    if missing_cols:
        raise DataError(f"Column(s) {', '.join(map(repr, missing_cols))} not found in the data. "
                        f"Columns available: {', '.join(map(str, list(data.columns)[:15]))}"
                        f"{' ...' if data.shape[1] > 15 else ''}.")
    # The model's columns as a dict of Series and arrays: the checks and the matrices
    # read them directly, and one DataFrame is built at the end (issue 16: each frame,
    # isna() frame or row-subset costs more than the checks of a small data set).
    cols = model_column_values(data, variables)
    n = len(data.index)
    masks = {c: _missing_mask(v) for c, v in cols.items()}
    everything = frame = keep = None
    dropped = data.index[:0]
    if any(m is not None for m in masks.values()):
        no = np.zeros(n, dtype=bool)
        missing = pd.DataFrame({c: no if m is None else m for c, m in masks.items()},
                               index=data.index, columns=list(variables))
        keep, dropped = _drop_missing(missing, parsed)
        everything = pd.DataFrame(cols, index=data.index, columns=list(variables), copy=False)
        frame = everything if not len(dropped) else everything.iloc[np.flatnonzero(keep)]
        cols = {c: frame[c] for c in variables}
        n = len(frame)
    check_columns(cols, parsed, n)
    _check_values(cols, parsed)
    plan = column_plan(cols, parsed.fixed_formula, [t.lhs for t in slopes]) if DIRECT_COLUMNS else None
    if plan is not None:
        y, X, x_names, x_info, x_order, random_cols = _direct_matrices(plan, parsed, slopes, n)
    else:
        if everything is None:
            everything = pd.DataFrame(cols, index=data.index, columns=list(variables), copy=False)
            keep = np.ones(n, dtype=bool)
        y, X, x_names, x_info, x_order, random_cols = _patsy_matrices(everything, keep, parsed, slopes)
    gram = scaled_gram(X)  # X'X once, for the rank and the exact-fit checks
    _check_rank(X, x_names, gram)
    check_fixed_matrix(X, y, parsed, x_names, gram)
    fixed_names = _lme4_names(tuple(x_names))

    blocks = []
    for term in parsed.random:
        if term in random_cols:
            Z, z_names, z_info, z_order = random_cols[term]
        else:
            # (1 | g): a column of ones; patsy's parse would cost more than the whole fit
            # of a small model (a few ms per term).
            Z, z_names, z_info, z_order = np.ones((n, 1)), ("Intercept",), _intercept_info(), (0,)
        if Z.shape[1] == 0:
            raise FormulaError(f"The random-effects term {term} has no columns.")
        z_lme4 = _lme4_names(tuple(z_names))
        Z = _share_columns(Z, z_lme4, X, fixed_names)
        codes, levels = group_codes(cols, term.group)
        G = len(levels)
        name = term.group_name
        if G < 2:
            raise DataError(f"The grouping factor '{name}' has only one level in the data used: "
                            "a variance between groups needs at least two groups (and in practice "
                            "five or more). Check the grouping column, or drop the term.")
        if G >= n and not observation_level:
            raise DataError(f"The grouping factor '{name}' has as many levels ({G}) as there are rows: "
                            "every group holds one observation, so its variance cannot be told apart "
                            "from the residual variance. Check that you grouped by the right column "
                            "(a group id, not a row id).")
        if G * Z.shape[1] >= n and not (observation_level and G * Z.shape[1] <= n):
            raise DataError(f"The term {term} has {G * Z.shape[1]} random effects for {n} rows: "
                            "too many to estimate. Drop random slopes or use fewer groups.")
        blocks.append(RandomBlock(term=term, group_name=name,
                                  columns=z_lme4,
                                  Z=Z, codes=codes, levels=levels,
                                  design_info=z_info, order=z_order))
        _warn_constant_slopes(blocks[-1])

    if frame is None:
        # Every row kept (the usual case): the frame is the caller's columns, not a copy,
        # built when first read (_LazyFrame).
        frame = _FrameParts(cols, data.index)
    return Design(formula=parsed, y=y, X=X, fixed_names=fixed_names, blocks=tuple(blocks),
                  frame=frame, nobs_dropped=int(len(dropped)), dropped_index=dropped,
                  x_info=x_info, x_order=x_order)


def _share_columns(Z: np.ndarray, z_names: tuple, X: np.ndarray, x_names: tuple) -> np.ndarray:
    """``Z``, or the same columns of ``X`` when ``X`` holds them side by side.

    ``y ~ x + (x | g)`` has the intercept and ``x`` in both matrices: a view of ``X``'s
    columns (column-major, so a contiguous block) saves a copy of the rows (16 MB at a
    million rows; issue 16). The values are compared, not only the names.
    """
    if np.may_share_memory(Z, X):
        return Z  # already a view of X (_block_named)
    k = len(z_names)
    for j in range(len(x_names) - k + 1):
        if x_names[j:j + k] == z_names:
            block = X[:, j:j + k]
            if block.flags.f_contiguous and np.array_equal(block, Z):
                return block
    return Z


@functools.lru_cache(maxsize=256)
def _formula_facts(parsed: ParsedFormula):
    """The formula's columns (``parsed.variables`` scans the text) and the random terms
    that need columns beyond an intercept; remembered, as a formula is refitted often."""
    slopes = tuple(t for t in parsed.random if not (t.intercept and not t.covariates))
    return parsed.variables, slopes


@functools.lru_cache(maxsize=1024)
def _lme4_names(patsy_names: tuple) -> tuple:
    """:func:`lme4_name` of each name (a regex per column: remembered)."""
    return tuple(lme4_name(c) for c in patsy_names)


@functools.lru_cache(maxsize=64)
def _parse(formula: str, columns: tuple, index_names: tuple) -> ParsedFormula:
    """:func:`mlm.parse_formula`, remembered: refits on the same columns (bootstrap, power,
    update) parse the same text again, and the result is immutable."""
    return parse_formula(formula, columns=list(columns), index_names=list(index_names))


@functools.lru_cache(maxsize=1)
def _intercept_info():
    """patsy's design information of an intercept-only term (for predictions)."""
    return patsy.dmatrix("1", pd.DataFrame({"_": [0.0]}), return_type="dataframe").design_info


def _column_order(info, rhs: str):
    """R's order of the columns of ``info`` and their names (R's interaction names).

    patsy groups terms by their numeric factors (categorical-only terms first), so
    ``attain ~ verbal + sex`` would give ``sexF`` before ``verbal``; R's ``terms()``
    keeps formula order within each degree (main effects, then two-way interactions,
    ...), and users compare the two tables line by line.

    Returns, for each output column, its position in patsy's order (to apply to matrices
    patsy builds later from the same design information), and the output columns' names.
    """
    written = _termlists(rhs)[1]
    rank = {term: i for i, term in enumerate(written)}
    terms = sorted(info.terms, key=lambda t: (len(t.factors), rank.get(t, len(rank))))
    order = tuple(j for t in terms for j in range(info.term_slices[t].start, info.term_slices[t].stop))
    names = _r_interaction_names(info, written, [info.column_names[j] for j in order])
    return order, names


@functools.lru_cache(maxsize=256)
def _column_order_cached(info, rhs: str):
    """:func:`_column_order` for design information that is itself remembered (its
    identity is the key: patsy's DesignInfo compares by identity)."""
    order, names = _column_order(info, rhs)
    return order, tuple(names)


def _patsy_matrices(everything: pd.DataFrame, keep: np.ndarray, parsed: ParsedFormula, slopes):
    """Outcome, fixed and random matrices through patsy (transforms, C(), splines, ...)."""
    env = eval_environment()
    memo, kept = _patsy_frames(everything, keep, parsed)
    lhs, rhs = _termlists(parsed.fixed_formula)
    y_df, X_df = _matrices([lhs, rhs], memo, kept, env,
                           f"fixed effects from '{parsed.fixed_formula}'")
    if y_df.shape[1] != 1:
        raise DataError(f"The outcome '{parsed.response}' is not numeric. A linear mixed model needs "
                        "a numeric outcome; convert it with pandas.to_numeric.")
    y = y_df.to_numpy()[:, 0].astype(float)
    if not np.all(np.isfinite(y)):
        raise DataError(f"The outcome '{parsed.response}' has infinite or undefined values after "
                        "transformation (e.g. log of zero or of a negative number). "
                        "Transform it differently or drop those rows first.")
    if X_df.shape[1] and not np.all(np.isfinite(X_df.to_numpy())):
        raise DataError("The fixed-effects columns have infinite or undefined values after "
                        "transformation (e.g. log of zero). Transform the predictor differently.")
    x_info = X_df.design_info
    x_order, names = _column_order(x_info, parsed.fixed_formula)
    X = np.asfortranarray(X_df.to_numpy(dtype=float)[:, list(x_order)])
    random_cols = {}
    for term in slopes:
        Z_df = _evaluate(term.lhs, memo, kept, env, f"random-effects columns of {term}")
        z_info = Z_df.design_info
        z_order, z_names = _column_order(z_info, "~ " + term.lhs)
        Z = np.asfortranarray(Z_df.to_numpy(dtype=float)[:, list(z_order)])
        random_cols[term] = (Z, tuple(z_names), z_info, z_order)
    return y, X, list(names), x_info, x_order, random_cols


def _direct_matrices(plan, parsed: ParsedFormula, slopes, n: int):
    """The same matrices read straight from the columns (:mod:`mlm.design_columns`)."""
    (resp,) = [f.code for f in plan.lhs_info.factor_infos]
    y = plan.factors[resp].values
    x_info = plan.infos[parsed.fixed_formula]
    # The design information is remembered per formula and column types
    # (design_columns._design_infos), so its R order is too.
    x_order, names = _column_order_cached(x_info, parsed.fixed_formula)
    X = build_matrix(x_info, plan.factors, n, x_order)
    x_patsy = [x_info.column_names[j] for j in x_order]
    random_cols = {}
    for term in slopes:
        z_info = plan.infos[term.lhs]
        z_order, z_names = _column_order_cached(z_info, "~ " + term.lhs)
        Z = _block_named(X, x_patsy, [z_info.column_names[j] for j in z_order])
        if Z is None:
            Z = build_matrix(z_info, plan.factors, n, z_order)
        random_cols[term] = (Z, tuple(z_names), z_info, z_order)
    return y, X, names, x_info, x_order, random_cols


def _block_named(X: np.ndarray, x_names: list, z_names: list):
    """The columns of ``X`` that patsy names ``z_names``, side by side, as a view; or None.

    On the column path a column's patsy name fixes its values: the same factors' values
    (or contrast columns) multiplied in the same order by :func:`build_matrix`. So
    ``(x | g)`` beside ``y ~ x`` reads ``X``'s intercept and ``x`` columns instead of
    building them again and comparing (a transient copy of the rows: 16 MB at a million
    rows, issue 16). ``tests/test_design_columns.py`` checks the result against patsy's.
    """
    k = len(z_names)
    for j in range(len(x_names) - k + 1):
        if x_names[j:j + k] == z_names:
            return X[:, j:j + k]
    return None


def _r_interaction_names(info, written, columns):
    """Name interaction columns as R does: factors in the order the variables first appear.

    ``meanses*cses + sector*cses`` has the variables meanses, cses, sector, so R names the
    last interaction ``cses:sector`` where patsy writes ``sector:cses``.
    """
    first = {}
    for term in written:
        for factor in term.factors:
            first.setdefault(factor, len(first))
    renames = {}
    for term in info.terms:
        k = len(term.factors)
        if k < 2:
            continue
        perm = sorted(range(k), key=lambda i: first.get(term.factors[i], k + i))
        if perm == list(range(k)):
            continue
        for j in range(info.term_slices[term].start, info.term_slices[term].stop):
            name = info.column_names[j]
            pieces = name.split(":")
            if len(pieces) == k:
                renames[name] = ":".join(pieces[i] for i in perm)
    return [renames.get(c, c) for c in columns]


def _warn_constant_slopes(block: RandomBlock) -> None:
    """Warn when a random slope's column does not vary within any group.

    Such a slope is a level-2 variable for this factor: its "random slope" cannot be
    separated from the random intercept (Snijders & Bosker 2012, sec. 5.2).
    """
    codes = block.codes
    counts = np.bincount(codes, minlength=block.n_levels)
    for j, col in enumerate(block.columns):
        if col == "(Intercept)":
            continue
        z = block.Z[:, j]
        s1 = np.bincount(codes, weights=z, minlength=block.n_levels)
        s2 = np.bincount(codes, weights=z * z, minlength=block.n_levels)
        within = s2 - s1 * s1 / np.maximum(counts, 1)
        if np.all(within <= 1e-10 * max(1.0, float(np.max(np.abs(s2))))):
            warnings.warn(f"'{col}' does not vary within levels of '{block.group_name}' (it is a "
                          f"{block.group_name}-level variable), so a random slope for it across "
                          f"{block.group_name} cannot be estimated apart from the random intercept. "
                          f"Drop it from the random part: use '(1 | {block.group_name})'.",
                          DesignWarning, stacklevel=4)
