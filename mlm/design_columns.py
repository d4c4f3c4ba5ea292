"""Model matrices straight from the columns, when every factor of the formula is a column.

patsy evaluates each factor of a formula as Python code over the data and checks every
element for missing values on the way; for ``mathach ~ ses + minority + ... + (ses |
school)`` that costs more than the whole fit (issue 16). When every factor is a bare
column name (a number, or a factor: text, logical, categorical), nothing needs
evaluating: the design stage has already dropped the incomplete rows with pandas'
vectorised checks, so the columns can be read once and multiplied together.

The *coding* (which terms, which contrasts, which columns and in which order) is still
patsy's: :func:`column_plan` asks patsy for the :class:`patsy.DesignInfo` of the formula
on a one-row prototype of the data (numbers, and categoricals carrying the levels of
the rows kept), which is all patsy needs to decide it, and :func:`build_matrix` fills
the columns the way ``patsy.build_design_matrices`` does (its ``_build_subterm``:
products over the factors of each subterm, R's order, left-most factor fastest), so
the matrices, column names and design information are the ones the patsy path gives;
``tests/test_design_columns.py`` checks this on a table of formulas. Anything else (a
transform such as ``scale(x)`` or ``log(x)``, ``C()``, ``I()``, splines) goes through
patsy as before.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlm.frames import sorted_levels

__all__ = ["ColumnPlan", "column_plan", "build_matrix"]


@dataclass(frozen=True)
class Factor:
    """One column as patsy would see it: numbers, or integer codes of its levels."""

    kind: str              # "numerical" or "categorical"
    values: np.ndarray     # float (n,) or intp codes (n,)
    levels: tuple = ()     # categorical levels, in patsy's order
    ordered: bool = False


@dataclass(frozen=True)
class ColumnPlan:
    """Everything needed to build one formula's matrices from the columns.

    ``infos`` maps each right-hand side (the fixed part's, each random term's) to the
    design information patsy gives it; ``factors`` maps a column name to its values.
    """

    factors: dict
    lhs_info: object
    infos: dict


@functools.lru_cache(maxsize=256)
def _termlists(rhs: str):
    """patsy's reading of a formula (pure function of the text; cached for refits)."""
    import patsy

    desc = patsy.ModelDesc.from_formula(rhs)
    return desc.lhs_termlist, desc.rhs_termlist


def _bare_names(termlist, columns) -> set | None:
    """The column names the terms use, or None when a factor is not a bare column name."""
    names = set()
    for term in termlist:
        for factor in term.factors:
            code = getattr(factor, "code", None)
            if code is None or not code.isidentifier() or code not in columns:
                return None
            names.add(code)
    return names


def _factor(values) -> Factor:
    """The column (Series or array) as patsy's design stage reads it (see
    ``design._patsy_frames``)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        present = np.asarray(values.array.codes if isinstance(values, pd.Series) else values.codes)
        used = np.zeros(len(dtype.categories), dtype=bool)
        used[present[present >= 0]] = True
        # Levels not used by the rows kept are dropped, as R's drop.unused.levels does.
        remap = np.cumsum(used) - 1
        levels = tuple(dtype.categories)
        if used.all():  # the usual case: the codes are patsy's already
            return Factor("categorical", present.astype(np.intp), levels, bool(dtype.ordered))
        return Factor("categorical", remap[present].astype(np.intp),
                      tuple(c for c, u in zip(levels, used) if u), bool(dtype.ordered))
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        first, distinct = pd.factorize(np.asarray(values, dtype=object))
        levels = sorted_levels(distinct)
        where = pd.Index(levels, dtype=object).get_indexer(pd.Index(distinct, dtype=object))
        return Factor("categorical", where[first].astype(np.intp), tuple(levels))
    return Factor("numerical", _floats(values))


def _floats(values) -> np.ndarray:
    """The values as float64; a float64 column is read in place, not copied."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float)
    return np.asarray(values, dtype=float)


def _prototype(factors: dict) -> pd.DataFrame:
    """One row with each column's type and levels: what patsy needs to code the formula."""
    row = {}
    for name, f in factors.items():
        if f.kind == "numerical":
            row[name] = np.zeros(1)
        else:
            row[name] = pd.Categorical.from_codes([0], categories=list(f.levels), ordered=f.ordered)
    return pd.DataFrame(row, columns=list(factors))


def _signature(factors: dict) -> tuple:
    # Levels with their types: True == 1 in Python, but patsy names them g[T.True], g[T.1].
    return tuple((name, f.kind, tuple((type(v), v) for v in f.levels), f.ordered)
                 for name, f in factors.items())


@functools.lru_cache(maxsize=128)
def _design_infos(formulas: tuple, signature: tuple):
    """patsy's design information of each formula, for columns of the given types.

    Keyed by the formulas and the columns' types and levels only, so refits of the same
    model (bootstrap, power, profiles) reuse it.
    """
    import patsy

    from mlm.design import eval_environment

    factors = {name: Factor(kind, np.zeros(1), tuple(v for _, v in levels), ordered)
               for name, kind, levels, ordered in signature}
    proto = _prototype(factors)
    termlists = []
    for i, rhs in enumerate(formulas):
        lhs, rhs_terms = _termlists(rhs)
        if i == 0:
            termlists.append(lhs)
        termlists.append(rhs_terms)
    builders = patsy.design_matrix_builders(termlists, lambda: iter([proto]), eval_environment(),
                                            NA_action="drop")
    return tuple(builders)


def column_plan(frame: pd.DataFrame, fixed_formula: str, random_lhs) -> ColumnPlan | None:
    """The plan for building ``fixed_formula`` and each random ``lhs`` from columns.

    Returns None (use patsy) unless the outcome is a numeric column and every factor
    of every term is a bare column name.

    Parameters
    ----------
    frame : pandas.DataFrame or dict
        The model columns of the rows kept (no missing values); a dict maps each
        name to its values (Series or array).
    fixed_formula : str
        ``"y ~ rhs"``.
    random_lhs : sequence of str
        The left-hand side of each random term that needs columns (``"1 + ses"``).

    Examples
    --------
    >>> import pandas as pd
    >>> from mlm.design_columns import column_plan
    >>> d = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [0.5, 1.5, 2.0], "g": ["a", "b", "a"]})
    >>> plan = column_plan(d, "y ~ x + g", [])
    >>> plan.infos["y ~ x + g"].column_names
    ['Intercept', 'g[T.b]', 'x']
    >>> column_plan(d, "y ~ np.log(x)", []) is None
    True
    """
    columns = set(map(str, frame.keys()))
    lhs, rhs = _termlists(fixed_formula)
    response = _bare_names(lhs, columns)
    if not response or len(lhs) != 1 or len(lhs[0].factors) != 1:
        return None
    (resp,) = response
    if (not pd.api.types.is_numeric_dtype(frame[resp].dtype)
            or pd.api.types.is_bool_dtype(frame[resp].dtype)):
        return None
    used = _bare_names(rhs, columns)
    if used is None:
        return None
    formulas = [fixed_formula]
    for text in random_lhs:
        names = _bare_names(_termlists(text)[1], columns)
        if names is None:
            return None
        used |= names
        formulas.append(text)
    factors = {resp: Factor("numerical", _floats(frame[resp]))}
    for name in sorted(used):
        factors[name] = _factor(frame[name])
    infos = _design_infos(tuple(formulas), _signature(factors))
    return ColumnPlan(factors=factors, lhs_info=infos[0],
                      infos=dict(zip(formulas, infos[1:])))


def build_matrix(info, factors: dict, n: int, order=None) -> np.ndarray:
    """The design matrix of ``info`` from the columns' values, columns in ``order``.

    Each subterm's columns are products over its factors: a numeric column's values,
    or a categorical's contrast matrix indexed by the row's level, in patsy's order of
    column combinations (R's: the left-most factor varies fastest). ``order`` lists, for
    each output column, its position in patsy's order (default: patsy's order). The
    matrix is column-major, as the patsy path's.
    """
    width = len(info.column_names)
    dest = np.argsort(np.asarray(order if order is not None else range(width), dtype=np.intp))
    out = np.empty((n, width), order="F")
    start = 0
    for subterms in info.term_codings.values():
        for sub in subterms:
            widths = [sub.contrast_matrices[f].matrix.shape[1] if f in sub.contrast_matrices
                      else info.factor_infos[f].num_columns for f in sub.factors]
            combos = (c[::-1] for c in itertools.product(*[range(w) for w in reversed(widths)]))
            for i, combo in enumerate(combos):
                col = out[:, dest[start + i]]
                col[...] = 1.0
                for f, j in zip(sub.factors, combo):
                    values = factors[f.code].values
                    if f in sub.contrast_matrices:
                        col *= sub.contrast_matrices[f].matrix[values, j]
                    else:
                        col *= values
            start += sub.num_columns
    return out
