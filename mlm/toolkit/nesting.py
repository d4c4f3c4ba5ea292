"""Levels and nesting: how grouping factors relate, and at which level each predictor lives.

:func:`describe_nesting` looks at grouping columns before a model is written: how many
groups each has and how large they are, which factor is nested in which, which are
crossed, and whether ids look reused across higher-level units (class 1 in every
school), the classic error that makes ``(1 | school) + (1 | class)`` silently cross
what should be nested. :func:`levels` says, for a fitted model, whether each fixed-effect
column varies within groups (a level-1 variable) or is constant within the groups of a
factor (a variable of that level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlm.design import group_codes
from mlm.errors import DataError
from mlm.frames import as_pandas, model_columns

__all__ = ["describe_nesting", "levels", "NestingReport"]

#: Reused-id rule: share of rows whose label of the lower factor occurs under more than
#: one level of the higher factor, and share of the higher factor's levels that hold the
#: most widespread label (numbering that restarts in every unit: "class 1" everywhere).
REUSED_ROW_SHARE = 0.5
REUSED_TOP_LABEL_SHARE = 0.5


@dataclass(frozen=True)
class NestingReport:
    """What :func:`describe_nesting` found.

    Attributes
    ----------
    factors : pandas.DataFrame
        One row per factor (index ``factor``): ``n_groups``, ``min_size``,
        ``median_size``, ``mean_size``, ``max_size`` (rows per group), ``singletons``
        (groups with one row), ``n_missing`` (rows where the factor is missing; left out).
    relations : pandas.DataFrame
        One row per ordered pair: ``factor``, ``other``, ``relation`` (``"nested in"``,
        ``"contains"``, ``"same grouping"`` or ``"crossed with"``), ``reused_ids``
        (bool: ``factor``'s ids look reused across ``other``'s units) and ``note``.
    warnings : list of str
        Plain-language warnings (reused ids), also printed by ``str()``.
    """

    factors: pd.DataFrame
    relations: pd.DataFrame
    warnings: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = ["Grouping factors:", self.factors.to_string(), ""]
        if len(self.relations):
            lines.append("Relations:")
            for r in self.relations.itertuples():
                if r.relation == "contains":
                    continue  # the "nested in" row says it
                lines.append(f"  {r.factor} {r.relation} {r.other}"
                             + ("  [ids look reused]" if r.reused_ids else ""))
        if self.warnings:
            lines.append("")
            lines.append("Warnings:")
            lines.extend(f"- {w}" for w in self.warnings)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html
        warn = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        return (self.factors.to_html() + self.relations.to_html(index=False)
                + (f"<ul>{warn}</ul>" if warn else ""))


def _as_list(groups):
    if isinstance(groups, str):
        return [groups]
    try:
        out = list(groups)
    except TypeError:
        raise DataError(f"groups must be a column name or a list of column names, not "
                        f"{type(groups).__name__}.") from None
    if not out or not all(isinstance(g, str) for g in out):
        raise DataError("groups must be a non-empty list of column names (strings), e.g. "
                        "['school', 'class']; write an interaction as 'school:class'.")
    if len(set(out)) != len(out):
        raise DataError(f"groups lists a factor twice: {out}.")
    return out


def describe_nesting(data: pd.DataFrame, groups) -> NestingReport:
    """Group sizes of each grouping factor and how the factors relate.

    Parameters
    ----------
    data : pandas.DataFrame or another data frame
        The data (not modified); converted as :func:`mlm.frames.as_pandas` does.
    groups : str or list of str
        Grouping columns; ``"a:b"`` is the combination of ``a`` and ``b``. Numeric ids
        are labels, as in lme4.

    Returns
    -------
    NestingReport
        ``.factors`` (sizes per factor), ``.relations`` (every ordered pair) and
        ``.warnings``; ``print()`` shows all three.

    Raises
    ------
    MLMError
        When ``data`` is not a DataFrame, a column is missing, or a factor is missing
        in every row.

    Notes
    -----
    ``A`` is *nested in* ``B`` when every level of ``A`` occurs within one level of ``B``
    (rows where either is missing are left out). Otherwise they are *crossed*
    (fully or partly). ``A``'s ids are flagged as *reused* across ``B`` when ``A`` is not
    nested in ``B``, ``B`` is not nested in ``A``, at least half the rows carry an ``A``
    label that occurs in several ``B`` units, and the most widespread ``A`` label occurs
    in at least half of the ``B`` units (numbering that restarts in every unit). When
    both directions qualify, only the factor with fewer levels is flagged. A genuinely
    crossed design where every unit meets every other (plates x samples in an
    experiment) also qualifies: the warning says how to tell.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.nesting import describe_nesting
    >>> rep = describe_nesting(mlm.load_dataset("exam"), ["school", "student"])
    >>> rep.factors["n_groups"].to_dict()
    {'school': 65, 'student': 650}
    >>> bool(rep.relations.set_index(["factor", "other"]).loc[("student", "school"), "reused_ids"])
    True
    """
    data = as_pandas(data)
    names = _as_list(groups)
    cols = {g: g.split(":") for g in names}
    missing = sorted({c for cs in cols.values() for c in cs if c not in data.columns})
    if missing:
        raise DataError(f"Column(s) {', '.join(map(repr, missing))} not found in the data. "
                        f"Columns available: {', '.join(map(str, list(data.columns)[:15]))}"
                        f"{' ...' if data.shape[1] > 15 else ''}.")
    codes = {}
    rows = []
    for g in names:
        frame = model_columns(data, cols[g])
        ok = ~frame.isna().any(axis=1).to_numpy()
        if not ok.any():
            raise DataError(f"The grouping factor '{g}' is missing in every row.")
        c = np.full(len(data), -1, dtype=np.intp)
        cc, lv = group_codes(frame.loc[ok], cols[g])
        c[ok] = cc
        codes[g] = (c, len(lv))
        sizes = np.bincount(cc, minlength=len(lv))
        rows.append({"factor": g, "n_groups": len(lv), "min_size": int(sizes.min()),
                     "median_size": float(np.median(sizes)), "mean_size": float(sizes.mean()),
                     "max_size": int(sizes.max()), "singletons": int((sizes == 1).sum()),
                     "n_missing": int((~ok).sum())})
    factors = pd.DataFrame(rows).set_index("factor")

    def pair_stats(a, b):
        ca, na = codes[a]
        cb, nb = codes[b]
        ok = (ca >= 0) & (cb >= 0)
        ca, cb = ca[ok], cb[ok]
        pairs = np.unique(np.stack([ca, cb]), axis=1)
        n_b_per_a = np.bincount(pairs[0], minlength=na)   # B units each A label occurs in
        present_a = n_b_per_a > 0
        nested = bool(np.all(n_b_per_a[present_a] <= 1))
        row_share = float(np.mean(n_b_per_a[ca] > 1)) if ca.size else 0.0
        top_share = float(n_b_per_a.max() / max(len(np.unique(cb)), 1))
        return nested, row_share, top_share

    stats_ = {(a, b): pair_stats(a, b) for a in names for b in names if a != b}
    candidate = {}
    for (a, b), (nested, row_share, top_share) in stats_.items():
        b_in_a = stats_[(b, a)][0]
        candidate[(a, b)] = (not nested and not b_in_a and row_share >= REUSED_ROW_SHARE
                             and top_share >= REUSED_TOP_LABEL_SHARE)
    rel_rows, warns = [], []
    for (a, b), (nested, row_share, top_share) in stats_.items():
        b_in_a = stats_[(b, a)][0]
        if nested and b_in_a:
            relation = "same grouping"
        elif nested:
            relation = "nested in"
        elif b_in_a:
            relation = "contains"
        else:
            relation = "crossed with"
        reused = candidate[(a, b)]
        if reused and candidate[(b, a)] and codes[a][1] > codes[b][1]:
            reused = False  # both directions qualify: flag the factor with fewer labels
        note = ""
        if reused:
            note = (f"'{a}' ids look reused across '{b}' units: {row_share:.0%} of rows carry a "
                    f"'{a}' id found in several '{b}' units, and the most widespread id occurs "
                    f"in {top_share:.0%} of the '{b}' units (numbering restarts in every '{b}'). If '{a}' is "
                    f"meant to be nested in '{b}', write (1 | {b}/{a}) or make the ids unique "
                    f"(e.g. a column {b}_{a} = {b} + '_' + {a}); (1 | {b}) + (1 | {a}) would treat "
                    f"every '{a}' id as one unit shared across '{b}' units. If the design really "
                    f"is crossed (the same '{a}' unit in several '{b}' units), ignore this.")
            warns.append(note)
        rel_rows.append({"factor": a, "other": b, "relation": relation, "reused_ids": reused,
                         "note": note})
    relations = pd.DataFrame(rel_rows, columns=["factor", "other", "relation", "reused_ids", "note"])
    return NestingReport(factors=factors, relations=relations, warnings=warns)


def _between_share(wss: float, tss: float) -> float:
    """1 - within/total, with rounding noise snapped to exact 0 and 1.

    A group-mean centred predictor has no between-group variance; computed as a
    difference its share came out as 1e-16 or -2e-16 (issue 11).
    """
    if not tss > 0:
        return float("nan")
    share = 1.0 - wss / tss
    if abs(share) < 1e-10:
        return 0.0
    if abs(1.0 - share) < 1e-10:
        return 1.0
    return float(share)


def levels(fit) -> pd.DataFrame:
    """The level at which each fixed-effect column varies.

    Parameters
    ----------
    fit : MixedResult
        A fitted model; its rows (``fit.design.frame``) and grouping factors are used.

    Returns
    -------
    pandas.DataFrame
        One row per fixed-effect column except the intercept (index ``term``, lme4's
        names), with

        ``level``
            ``"1"`` when the column varies within the groups of every grouping factor
            (a level-1, within-group variable); otherwise the name of the factor it is
            constant within, the one with the fewest groups if several (``school`` for a
            school characteristic, ``lea`` rather than ``school:lea`` for an LEA
            characteristic). In a crossed design a column constant within one factor
            can still vary within the other; it is named by the factor it is constant
            within.
        ``constant_within``
            Comma-separated factors within whose groups the column is constant.
        ``between_<factor>``
            Share of the column's variance that lies between the groups of the factor
            (1 for a column constant within them, 0 for one with equal group means).

    Raises
    ------
    MLMError
        When ``fit`` is not a fitted model.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.nesting import levels
    >>> fit = mlm.lmer("mathach ~ ses + meanses + sector + (1 | school)", mlm.load_dataset("hsb"))
    >>> levels(fit)["level"].to_dict()
    {'ses': '1', 'meanses': 'school', 'sector': 'school'}
    """
    from mlm.results.linear import require_fit
    from mlm.toolkit.variance import _factor_names
    require_fit(fit, "levels()'s argument", glmm=True)  # reads only the design: GLMMs too
    d = fit.design
    factors = _factor_names(fit)
    codes = {}
    for b in d.blocks:
        codes.setdefault(b.group_name, (b.codes, b.n_levels))
    rows = []
    for j, name in enumerate(d.fixed_names):
        if name == "(Intercept)":
            continue
        x = d.X[:, j]
        tss = float(np.sum((x - x.mean()) ** 2))
        row = {"term": name}
        const = []
        for g in factors:
            c, G = codes[g]
            n = np.bincount(c, minlength=G)
            s = np.bincount(c, weights=x, minlength=G)
            means = s / np.maximum(n, 1)
            wss = float(np.sum((x - means[c]) ** 2))
            if wss <= 1e-10 * max(tss, 1e-300) or tss == 0:
                const.append(g)
            row[f"between_{g}"] = _between_share(wss, tss)
        const_sorted = sorted(const, key=lambda g: codes[g][1])
        row["level"] = const_sorted[0] if const_sorted else "1"
        row["constant_within"] = ", ".join(const_sorted)
        rows.append(row)
    cols = ["level", "constant_within"] + [f"between_{g}" for g in factors]
    if not rows:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="term"))
    return pd.DataFrame(rows).set_index("term")[cols]
