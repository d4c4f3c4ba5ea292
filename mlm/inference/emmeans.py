"""Estimated marginal means and their pairwise comparisons, as R's emmeans computes them.

The reference grid is emmeans' default: every level of each factor of the fixed part,
each numeric predictor at its mean over the rows used. The marginal mean of a level is
the equally weighted average of the predictions over the grid's other factors (those in
``by`` are kept apart). Each mean and each difference is a contrast ``L beta`` tested by
:func:`mlm.inference.ddf.contrast_test` with the fit's df method (Satterthwaite by default,
emmeans' ``lmer.df = "satterthwaite"``); pairwise p-values are adjusted by Tukey's
studentized range (emmeans' default for pairs), Holm, or not at all.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import patsy
from mlm._lazy import stats

from mlm.formula import match_term
from mlm.errors import MLMError
from mlm.inference.ddf import check_ddf, contrast_test

__all__ = ["marginal_means", "pairwise"]

_IDENT = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


def _grid_variables(fit):
    """Each variable of the fixed part: its levels (factor) or its mean (numeric)."""
    d = fit.design
    info = d.x_info
    cols = [c for c in d.frame.columns if c != d.formula.response]
    levels, numeric = {}, {}
    for f, fi in info.factor_infos.items():
        names = set(_IDENT.findall(f.name())) & set(map(str, cols))
        if fi.type == "categorical":
            if len(names) != 1:
                raise MLMError(f"Marginal means need each factor to be one column; {f.name()!r} uses "
                               f"{sorted(names)}.")
            levels[names.pop()] = list(fi.categories)
        else:
            for v in names:
                numeric[v] = None
    for v in numeric:
        if v not in levels:
            numeric[v] = float(pd.to_numeric(d.frame[v]).mean())
    return levels, {v: m for v, m in numeric.items() if v not in levels}


def _grid_rows(fit, levels, means):
    names = list(levels)
    combos = list(itertools.product(*[levels[v] for v in names])) or [()]
    grid = pd.DataFrame(combos, columns=names)
    for v, m in means.items():
        grid[v] = m
    d = fit.design
    (X,) = patsy.build_design_matrices([d.x_info], grid, NA_action="raise")
    return grid, np.asarray(X)[:, list(d.x_order)]


def _check_specs(fit, specs, by, levels):
    for what, v in (("specs", specs), ("by", by)):
        if v is None and what == "by":
            continue
        if not isinstance(v, str) or v not in levels:
            avail = ", ".join(map(repr, levels)) or "none"
            raise MLMError(f"{what}={v!r} is not a factor of the fixed part; factors available: {avail}.")
    if by == specs:
        raise MLMError("by must name another factor than specs.")


def _means_L(fit, specs, by):
    levels, means = _grid_variables(fit)
    # the model's spelling, whatever the spacing (issue 11)
    specs, by = ((match_term(v, list(levels)) or v) if isinstance(v, str) else v for v in (specs, by))
    _check_specs(fit, specs, by, levels)
    grid, X = _grid_rows(fit, levels, means)
    keys = [specs] + ([by] if by else [])
    rows, labels = [], []
    for key, idx in grid.groupby(keys, sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        rows.append(X[idx].mean(axis=0))
        labels.append(key)
    order = {v: {lv: i for i, lv in enumerate(levels[v])} for v in keys}
    sort = sorted(range(len(labels)), key=lambda i: tuple(order[k][labels[i][j]]
                                                          for j, k in reversed(list(enumerate(keys)))))
    return np.array(rows)[sort], [labels[i] for i in sort], keys


def marginal_means(fit, specs: str, by: str | None = None, ddf=None, level: float = 0.95) -> pd.DataFrame:
    """Estimated marginal means of a factor, as ``emmeans(model, specs, by)``.

    Parameters
    ----------
    fit : MixedResult
        The fitted model.
    specs : str
        A factor of the fixed part (a column name: ``"vr"``, or ``"sector"`` for ``C(sector)``).
    by : str, optional
        Another factor: means of ``specs`` within each of its levels.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
        By default the fit's own (Satterthwaite, emmeans' ``lmer.df = "satterthwaite"``).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by the level (and the ``by`` level), columns ``emmean, std_error, df,
        conf_low, conf_high``.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("normexam ~ standLRT + vr + (1 | school)", mlm.load_dataset("exam"))
    >>> mlm.marginal_means(fit, "vr")["df"].round(0).tolist()
    [63.0, 56.0, 59.0]
    """
    from mlm.results.linear import require_fit

    require_fit(fit)
    method = check_ddf(ddf, fit)
    L, labels, keys = _means_L(fit, specs, by)
    out = []
    for row in L:
        r = contrast_test(fit, row, ddf=method)
        se = float(np.sqrt(r.vcov[0, 0]))
        crit = _crit(r.den_df, level)
        out.append([float(r.estimate[0]), se, r.den_df, r.estimate[0] - crit * se, r.estimate[0] + crit * se])
    index = pd.MultiIndex.from_tuples(labels, names=keys) if by else \
        pd.Index([lab[0] for lab in labels], name=specs)
    res = pd.DataFrame(out, index=index, columns=["emmean", "std_error", "df", "conf_low", "conf_high"])
    res.attrs.update({"ddf": method, "level": level})
    return res


def _crit(df, level):
    q = 0.5 + level / 2
    return float(stats.t.ppf(q, df)) if np.isfinite(df) else float(stats.norm.ppf(q))


def _label(v):
    return str(v)  # emmeans 1.8 writes levels as they are: "bottom 25% - mid 50%"


def pairwise(fit, specs: str, by: str | None = None, adjust: str = "tukey", ddf=None) -> pd.DataFrame:
    """Pairwise differences of marginal means, as ``pairs(emmeans(model, specs, by), adjust)``.

    Parameters
    ----------
    fit, specs, by
        As :func:`marginal_means`.
    adjust : {"tukey", "holm", "none"}, default "tukey"
        Tukey's studentized range (emmeans' default for pairs), Holm's step-down, or none.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
        As :func:`marginal_means`.

    Returns
    -------
    pandas.DataFrame
        One row per pair (``"a - b"``, first level minus later level, as emmeans), columns
        ``estimate, std_error, df, statistic, p_value`` (and ``by`` when given).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("normexam ~ standLRT + vr + (1 | school)", mlm.load_dataset("exam"))
    >>> mlm.pairwise(fit, "vr", adjust="holm").index.tolist()
    ['bottom 25% - mid 50%', 'bottom 25% - top 25%', 'mid 50% - top 25%']
    """
    from mlm.results.linear import require_fit

    require_fit(fit)
    if not isinstance(adjust, str) or adjust not in ("tukey", "holm", "none"):
        raise MLMError(f"Unknown adjust {adjust!r}: use 'tukey', 'holm' or 'none'.")
    method = check_ddf(ddf, fit)
    L, labels, keys = _means_L(fit, specs, by)
    groups = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab[1] if by else None, []).append(i)
    frames = []
    for b, idx in groups.items():
        rows, names = [], []
        for i, j in itertools.combinations(idx, 2):
            r = contrast_test(fit, L[i] - L[j], ddf=method)
            se = float(np.sqrt(r.vcov[0, 0]))
            rows.append([float(r.estimate[0]), se, r.den_df, r.statistic, r.p_value])
            names.append(f"{_label(labels[i][0])} - {_label(labels[j][0])}")
        f = pd.DataFrame(rows, index=pd.Index(names, name="contrast"),
                         columns=["estimate", "std_error", "df", "statistic", "p_value"])
        f["p_value"] = _adjust(f, adjust, len(idx))
        if by:
            f.insert(0, by, b)
        frames.append(f)
    out = pd.concat(frames)
    out.attrs.update({"ddf": method, "adjust": adjust})
    return out


def _adjust(f, adjust, nmeans):
    p = f["p_value"].to_numpy()
    if adjust == "none" or len(p) <= 1:
        return p
    if adjust == "holm":
        order = np.argsort(p)
        m = len(p)
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out = np.empty(m)
        out[order] = np.minimum(adj, 1.0)
        return out
    q = np.sqrt(2.0) * np.abs(f["statistic"].to_numpy())
    df = f["df"].to_numpy()
    return np.array([float(stats.studentized_range.sf(qi, nmeans, di)) if np.isfinite(di)
                     else float(stats.studentized_range.sf(qi, nmeans, 1e6)) for qi, di in zip(q, df)])
