"""Grand-mean and group-mean centering, as functions and inside formulas.

Centering decides what the intercept and the slopes mean (Enders & Tofighi 2007;
Snijders & Bosker 2012, sec. 4.6). Group-mean centering (``cwc``, "centering within
cluster") splits a level-1 predictor into its within-group part and the group mean
(``gm``), whose coefficients are the within-group and between-group slopes; their
difference is the contextual effect.

``cwc(x, g)`` and ``gm(x, g)`` are patsy stateful transforms: the group means are
memorised from the data the model was fitted to (every row where x is present, including
rows dropped for a missing value in another model variable, as R computes
``ave(x, g)`` on the whole column), so predictions on new rows of known groups use the
fitting data's means; rows of groups not seen in fitting use the mean of their own
group in the new data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from mlm.errors import DataError
from mlm.frames import as_pandas, model_columns

__all__ = ["center", "FORMULA_HELPERS"]


def _keys(g) -> pd.Series:
    """Group labels as strings, integral numbers written as integers.

    A numeric id column read with a missing value becomes float ('1224.0'); new data
    may hold the same id as an integer ('1224'): both must name the same group.
    """
    values = pd.Series(np.asarray(g))
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (values == np.round(values))
        out = values.astype(str)
        out[whole] = values[whole].astype(np.int64).astype(str)
        return out
    return values.astype(str)


class _GroupMean:
    """Memorise per-group means of x (missing values ignored)."""

    def __init__(self):
        self._sums = {}
        self._counts = {}
        self.means = None

    def memorize_chunk(self, x, g):
        x = np.asarray(x, dtype=float)
        keys = _keys(g).to_numpy()
        ok = ~np.isnan(x)
        s = pd.Series(x[ok]).groupby(keys[ok]).agg(["sum", "count"])
        for k, row in s.iterrows():
            self._sums[k] = self._sums.get(k, 0.0) + row["sum"]
            self._counts[k] = self._counts.get(k, 0) + row["count"]

    def memorize_finish(self):
        self.means = {k: self._sums[k] / self._counts[k] for k in self._sums if self._counts[k]}

    def _means_for(self, x, g):
        x = np.asarray(x, dtype=float)
        keys = _keys(g)
        # a copy: pandas 3 (copy-on-write) hands out a read-only view here
        m = np.array(keys.map(self.means), dtype=float)
        unseen = np.isnan(m)
        if unseen.any():
            own = pd.Series(x).groupby(keys.to_numpy()).transform("mean").to_numpy()
            m[unseen] = own[unseen]
        return x, m


class _CWC(_GroupMean):
    def transform(self, x, g):
        x, m = self._means_for(x, g)
        return x - m


class _GM(_GroupMean):
    def transform(self, x, g):
        _, m = self._means_for(x, g)
        return m


cwc = patsy.stateful_transform(_CWC)
cwc.__doc__ = """Center x within the groups g (x minus its group mean); use inside a formula.

    Example: ``mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)``.
    """
gm = patsy.stateful_transform(_GM)
gm.__doc__ = """The mean of x in each group g (the between-group part of x); use inside a formula."""

#: Helpers a formula may call, made available to patsy by :mod:`mlm.design`.
FORMULA_HELPERS = {"cwc": cwc, "gm": gm}


def _names(value, what: str) -> list:
    """A column name or a list of them, as given to :func:`center`."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple, pd.Index)) and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return list(value)
    raise DataError(f"center's {what} must be a column name or a list of column names, not "
                    f"{type(value).__name__}; e.g. mlm.center(data, 'ses', by='school').")


def center(data: pd.DataFrame, columns, by=None) -> pd.DataFrame:
    """Grand-mean or group-mean center columns, returning a new DataFrame.

    Parameters
    ----------
    data : pandas.DataFrame or another data frame
        Not modified; converted as :func:`mlm.frames.as_pandas` does.
    columns : str or list of str
        Numeric columns to center.
    by : str or list of str, optional
        Without it, each column gets ``<col>_centered`` (minus the grand mean).
        With a grouping column, each column gets ``<col>_within`` (minus its group
        mean) and ``<col>_between`` (the group mean). With a list, outermost first
        (``["school", "class"]``), each column gets ``<col>_within`` (minus the mean of
        the innermost group), and for each level ``<col>_between_<level>``: the
        outermost level's mean, and for inner levels the group mean minus the mean of
        the level above, so that the parts add up to the original value.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with the new columns. Missing values are left out of the
        means; a row with a missing value gets a missing centered or within part, and
        its group's mean as between part.

    Examples
    --------
    >>> import mlm
    >>> hsb = mlm.center(mlm.load_dataset("hsb"), "ses", by="school")
    >>> round(float(hsb.groupby("school")["ses_within"].mean().abs().max()), 12)
    0.0
    """
    data = as_pandas(data)
    cols, levels = _names(columns, "columns"), ([] if by is None else _names(by, "by"))
    for c in cols + levels:
        if c not in data.columns:
            raise DataError(f"Column '{c}' not found in the data. Columns available: "
                            f"{', '.join(map(str, list(data.columns)[:15]))}.")
    # numpy twins as lmer sees them (an object column of numbers is numeric; issue 11)
    values = model_columns(data, cols)
    for c in cols:
        if not pd.api.types.is_numeric_dtype(values[c]) or pd.api.types.is_bool_dtype(values[c]):
            raise DataError(f"Column '{c}' is not numeric (dtype {data[c].dtype}); only numeric "
                            "columns can be centered. For a categorical variable, center its dummy columns.")
    out = data.copy()
    for c in cols:
        x = pd.Series(values[c].to_numpy(dtype=float, na_value=np.nan), index=data.index)
        if not levels:
            out[f"{c}_centered"] = x - x.mean()
            continue
        # keys as arrays (no realignment on repeated labels); unsorted (mixed-type ids)
        keys = model_columns(data, levels)
        means = [x.groupby([keys[g].to_numpy() for g in levels[:i + 1]], dropna=False,
                           sort=False).transform("mean")
                 for i in range(len(levels))]
        out[f"{c}_within"] = x - means[-1]
        if len(levels) == 1:
            out[f"{c}_between"] = means[0]
        else:
            out[f"{c}_between_{levels[0]}"] = means[0]
            for i in range(1, len(levels)):
                out[f"{c}_between_{levels[i]}"] = means[i] - means[i - 1]
    return out
