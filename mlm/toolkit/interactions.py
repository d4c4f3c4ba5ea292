"""Interactions in multilevel models: cross-level terms, simple slopes, Johnson-Neyman.

A cross-level interaction joins a level-1 predictor (one that varies within groups) with
a level-2 predictor (constant within groups): in Raudenbush & Bryk's terms the level-2
predictor explains why the level-1 slope differs between groups ("slopes as outcomes").
:func:`cross_level` finds them in a fit and, given the model without them, reports how
much of the slope variance they explain.

:func:`simple_slopes` and :func:`johnson_neyman` probe an interaction: the slope of the
focal predictor at chosen values of the moderator, and the moderator values where that
slope stops (or starts) being significant (Preacher, Curran & Bauer 2006, J. Educ.
Behav. Stat. 31(4), 437-448)::

    w(W)     = g10 + g11 W
    Var w(W) = V10 + 2 W C(10,11) + W^2 V11

with ``g10`` the focal predictor's coefficient, ``g11`` the interaction's and ``V``, ``C``
their (co)variances. Other predictors, including other moderators of the focal
predictor, are held at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from mlm._lazy import stats

from mlm.checks import level as check_level
from mlm.errors import MLMError
from mlm.formula import match_term, split_top_level
from mlm.results.linear import require_fit

__all__ = ["cross_level", "simple_slopes", "johnson_neyman", "JohnsonNeyman", "InteractionError"]


class InteractionError(MLMError, ValueError):
    """A term or variable asked for is not in the model (the message lists what is)."""


# --------------------------------------------------------------------------- helpers
def _check_fit(fit):
    # GLMM fits too: their slopes are on the link scale (log-odds), tested by Wald z
    require_fit(fit, "fit", InteractionError, glmm=True)


def _split_name(name: str) -> list:
    """Split an interaction column name at ':' outside brackets and quotes."""
    return [piece for _, piece in split_top_level(name, ":")]


def _critical(df, level):
    """Two-sided critical value: t with ``df`` degrees of freedom, normal when df is infinite."""
    q = 0.5 + level / 2
    return float(stats.norm.ppf(q)) if not np.isfinite(df) else float(stats.t.ppf(q, df))


def _pvalue(stat, df):
    stat = np.abs(np.asarray(stat, dtype=float))
    return 2 * (stats.norm.sf(stat) if not np.isfinite(df) else stats.t.sf(stat, df))


def _terms_text(fit):
    return ", ".join(repr(t) for t in fit.design.fixed_names)


def _model_names(fit, focal, moderator):
    """The model's own spelling of the names asked for, whatever their spacing
    (``"cwc(ses,school)"`` for ``cwc(ses, school)``; issue 11)."""
    names = list(fit.design.fixed_names)
    columns = [str(c) for c in fit.design.frame.columns]
    if isinstance(focal, str):
        focal = match_term(focal, names) or focal
    if isinstance(moderator, str):
        moderator = match_term(moderator, names) or match_term(moderator, columns) or moderator
    return focal, moderator


def _find_interaction(fit, focal, moderator):
    names = list(fit.design.fixed_names)
    for what, term in (("focal predictor", focal), ("moderator", moderator)):
        if not isinstance(term, str):
            raise InteractionError(f"The {what} must be a term name (str), not {type(term).__name__}.")
    if focal == moderator:
        raise InteractionError(f"focal and moderator are both {focal!r}; name two different terms.")
    if focal not in names:
        raise InteractionError(f"The focal predictor {focal!r} is not a fixed-effect term of the "
                               f"model. Terms available: {_terms_text(fit)}.")
    for n in names:
        parts = _split_name(n)
        if len(parts) == 2 and sorted(parts) == sorted([focal, moderator]):
            return n
    if moderator not in names and moderator not in fit.design.frame.columns:
        raise InteractionError(f"The moderator {moderator!r} is not a term or variable of the model. "
                               f"Terms available: {_terms_text(fit)}.")
    raise InteractionError(f"The model has no interaction of {focal!r} with {moderator!r} "
                           f"({focal}:{moderator} or {moderator}:{focal}). Add it to the formula, "
                           f"e.g. '{focal} * {moderator}'. Terms available: {_terms_text(fit)}.")


def _moderator_values(fit, moderator):
    d = fit.design
    if moderator in d.fixed_names:
        return d.X[:, list(d.fixed_names).index(moderator)]
    values = d.frame[moderator]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise InteractionError(f"The moderator {moderator!r} is not numeric; name its dummy column "
                               f"instead. Terms available: {_terms_text(fit)}.")
    return values.to_numpy(dtype=float)


def _slope_parts(fit, focal, moderator, level):
    level = check_level(level, error=InteractionError)
    inter = _find_interaction(fit, focal, moderator)
    g = fit.fixef
    V = fit.vcov
    df = float(np.min(fit.coefficients.loc[[focal, inter], "df"].to_numpy()))
    return inter, float(g[focal]), float(g[inter]), float(V.loc[focal, focal]), \
        float(V.loc[inter, inter]), float(V.loc[focal, inter]), df


# --------------------------------------------------------------------------- simple slopes
def simple_slopes(fit, focal: str, moderator: str, at=None, level: float = 0.95) -> pd.DataFrame:
    """Slope of ``focal`` at values of ``moderator`` (simple slopes).

    Parameters
    ----------
    fit : MixedResult
        A model with the fixed-effect terms ``focal`` and ``focal:moderator`` (written
        in either order).
    focal : str
        The predictor whose slope is wanted (a fixed-effect name, e.g. ``"cses"``).
    moderator : str
        The moderating term (e.g. ``"meanses"``).
    at : sequence of float, optional
        Moderator values. Default: the mean and the mean +- 1 SD of the moderator (SD with
        n - 1) over the units it describes: over the groups when it is constant within the
        groups of a grouping factor (a school-level moderator: one value per school), over
        the model rows otherwise; for a moderator with only the values 0 and 1, 0 and 1.
        ``attrs["at"]`` says which.
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by moderator value (index name = ``moderator``); columns ``slope,
        std_error, statistic, p_value, conf_low, conf_high``. Tests use the df of the
        fit's coefficient table (``fit.coefficients["df"]``, the smaller of the focal
        term's and the interaction's): t with that df, normal when infinite (Wald z).

    Raises
    ------
    InteractionError
        If ``focal``, ``moderator`` or their interaction is not in the model (the
        available terms are listed).

    Notes
    -----
    w(W) = g10 + g11 W, Var = V10 + 2 W C(10,11) + W^2 V11 (Preacher, Curran & Bauer
    2006). Every other predictor, including other moderators of ``focal``, is at zero:
    in ``y ~ meanses*cses + sector*cses`` the slopes of ``cses`` by ``meanses`` are for
    public schools (sector = 0).

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.interactions import simple_slopes
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb["cses"] = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    >>> fit = mlm.lmer("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb)
    >>> simple_slopes(fit, "cses", "sector")["slope"].round(3).tolist()
    [2.939, 1.296]
    """
    _check_fit(fit)
    focal, moderator = _model_names(fit, focal, moderator)
    inter, g10, g11, v10, v11, c, df = _slope_parts(fit, focal, moderator, level)
    basis = "the values given"
    if at is None:
        at, basis = _default_moderator_values(fit, moderator)
    at = np.atleast_1d(np.asarray(at, dtype=float))
    slope = g10 + g11 * at
    var = v10 + 2 * at * c + at ** 2 * v11
    se = np.sqrt(np.maximum(var, 0.0))
    stat = slope / se
    crit = _critical(df, level)
    from mlm.report.printed import PrintedTable

    out = PrintedTable({"slope": slope, "std_error": se, "statistic": stat,
                        "p_value": _pvalue(stat, df), "conf_low": slope - crit * se,
                        "conf_high": slope + crit * se}, index=pd.Index(at, name=moderator))
    others = _other_moderators(fit, focal, inter)
    held = f"; {', '.join(others)} held at 0" if others else ""
    out.attrs.update({"focal": focal, "moderator": moderator, "interaction": inter, "df": df,
                      "level": level, "at": basis, "held_at_zero": others,
                      "title": f"Simple slopes of {focal} by {moderator}",
                      "note": f"Slope of {focal} at {basis}{held} (every other predictor at zero); "
                              + ("Wald z-tests." if not np.isfinite(df) else f"t-tests with df = {df:.1f}.")})
    return out


def _other_moderators(fit, focal, inter):
    """The other terms that interact with ``focal`` (held at 0 in its simple slopes)."""
    out = []
    for name in fit.design.fixed_names:
        parts = _split_name(name)
        if name != inter and len(parts) > 1 and focal in parts:
            out.append(":".join(p for p in parts if p != focal))
    return out


def _default_moderator_values(fit, moderator):
    """0 and 1 for a 0/1 moderator; else its mean and mean +- 1 SD, over the units it describes.

    A moderator constant within the groups of a grouping factor (a school-level variable
    such as meanses) is summarised over those groups, one value per group, not over the
    rows: weighting schools by their size would describe students, not schools (issue 13).
    """
    w = _moderator_values(fit, moderator)
    if set(np.unique(w)) <= {0.0, 1.0}:
        return np.array([0.0, 1.0]), f"{moderator} = 0 and 1"
    d = fit.design
    factors = {}
    for b in d.blocks:
        factors.setdefault(b.group_name, (b.codes, b.n_levels))
    for g, (codes, G) in sorted(factors.items(), key=lambda kv: kv[1][1]):
        first = np.full(G, np.nan)
        order = np.argsort(codes, kind="stable")
        starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
        first[codes[order][starts]] = w[order][starts]
        if np.allclose(w, first[codes], rtol=1e-12, atol=1e-12 * max(1.0, np.max(np.abs(w)))):
            vals = first[~np.isnan(first)]
            m, s = float(np.mean(vals)), float(np.std(vals, ddof=1))
            return (np.array([m - s, m, m + s]),
                    f"the mean of {moderator} and +- 1 SD over the {len(vals)} groups of {g} "
                    f"({moderator} is constant within {g})")
    m, s = float(np.mean(w)), float(np.std(w, ddof=1))
    return np.array([m - s, m, m + s]), f"the mean of {moderator} and +- 1 SD over the {len(w)} rows"


# --------------------------------------------------------------------------- Johnson-Neyman
@dataclass(frozen=True)
class JohnsonNeyman:
    """Where the slope of ``focal`` changes significance along ``moderator``.

    Attributes
    ----------
    bounds : tuple of float
        Moderator values where the slope is exactly at the critical value (0, 1 or 2).
    significant_outside : bool or None
        True: the slope is significant for values outside the bounds (below the lower
        and above the upper); False: between them. None without bounds.
    significant_everywhere, significant_nowhere : bool
        For the no-root cases.
    observed_range : tuple of float
        Moderator range over the model rows (to tell whether the bounds are in the data).
    critical_value, df, level : float
    text : str
        The region(s) of significance in a sentence.
    """

    focal: str
    moderator: str
    bounds: tuple
    significant_outside: object
    significant_everywhere: bool
    significant_nowhere: bool
    observed_range: tuple
    critical_value: float
    df: float
    level: float
    text: str = field(repr=False)

    def __str__(self) -> str:
        return self.text


def _jn_solve(a, b, cc):
    """Where ``a W^2 + b W + cc`` (> 0 means significant) changes sign.

    Returns ``(bounds, significant_outside, everywhere, nowhere)``.
    """
    scale = max(abs(a), abs(b), abs(cc), 1e-300)
    if abs(a) <= 1e-12 * scale:
        if abs(b) <= 1e-12 * scale:
            return (), None, cc > 0, cc <= 0
        # linear: significant above the root when b > 0, below it when b < 0
        return (float(-cc / b),), bool(b > 0), False, False
    disc = b * b - 4 * a * cc
    if disc <= 0:
        # no sign change (a double root only touches zero)
        return (), None, bool(a > 0), bool(a < 0)
    sq = np.sqrt(disc)
    r1, r2 = sorted(((-b - sq) / (2 * a), (-b + sq) / (2 * a)))
    return (float(r1), float(r2)), bool(a > 0), False, False


def johnson_neyman(fit, focal: str, moderator: str, level: float = 0.95) -> JohnsonNeyman:
    """Johnson-Neyman interval: moderator values where the focal slope is significant.

    Solves w(W)^2 = crit^2 Var w(W) for W, a quadratic
    ``(g11^2 - c^2 V11) W^2 + 2 (g10 g11 - c^2 C) W + (g10^2 - c^2 V10) = 0``
    (Preacher, Curran & Bauer 2006), with ``crit`` the critical value at ``level``
    (normal while the fit's df are infinite, t otherwise; see :func:`simple_slopes`).

    Parameters
    ----------
    fit : MixedResult
        The fitted model, with the focal x moderator interaction.
    focal, moderator : str
        As in :func:`simple_slopes`.
    level : float, default 0.95
        Confidence level: the region where the slope is significant at 1 - ``level``
        (two-sided).

    Returns
    -------
    JohnsonNeyman
        ``bounds`` (sorted), which side is significant, the observed moderator range and
        a sentence (``str(result)``). Without real roots the slope is significant for
        every moderator value or for none.

    Raises
    ------
    InteractionError
        As :func:`simple_slopes`.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.interactions import johnson_neyman
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb["cses"] = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    >>> fit = mlm.lmer("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb)
    >>> jn = johnson_neyman(fit, "cses", "meanses")
    >>> [round(b, 3) for b in jn.bounds]   # t with Satterthwaite df (fit.ddf)
    [-6.393, -1.83]
    """
    _check_fit(fit)
    focal, moderator = _model_names(fit, focal, moderator)
    inter, g10, g11, v10, v11, c, df = _slope_parts(fit, focal, moderator, level)
    crit = _critical(df, level)
    q2 = crit ** 2
    a = g11 ** 2 - q2 * v11
    b = 2 * (g10 * g11 - q2 * c)
    cc = g10 ** 2 - q2 * v10
    w = _moderator_values(fit, moderator)
    rng = (float(np.min(w)), float(np.max(w)))
    bounds, outside, everywhere, nowhere = _jn_solve(a, b, cc)
    text = _jn_text(focal, moderator, bounds, outside, everywhere, nowhere, rng, level, df,
                    lambda x: a * x * x + b * x + cc > 0)
    return JohnsonNeyman(focal=focal, moderator=moderator, bounds=bounds,
                         significant_outside=outside, significant_everywhere=bool(everywhere),
                         significant_nowhere=bool(nowhere), observed_range=rng,
                         critical_value=crit, df=df, level=level, text=text)


def _jn_text(focal, moderator, bounds, outside, everywhere, nowhere, rng, level, df, sig):
    alpha = 1 - level
    test = "Wald z" if not np.isfinite(df) else f"t with df = {df:.1f}"
    lo, hi = rng
    data = f" The observed range of {moderator} is {lo:.4g} to {hi:.4g}"
    if everywhere:
        return (f"The slope of {focal} is significant (two-sided alpha = {alpha:.2g}, {test}) for "
                f"every value of {moderator}: there is no Johnson-Neyman boundary." + data + ".")
    if nowhere:
        return (f"The slope of {focal} is not significant (two-sided alpha = {alpha:.2g}, {test}) "
                f"for any value of {moderator}: there is no Johnson-Neyman boundary." + data + ".")
    head = f"The slope of {focal} is significant (two-sided alpha = {alpha:.2g}, {test})"
    if len(bounds) == 1:
        where = f" when {moderator} is {'above' if outside else 'below'} {bounds[0]:.4g}."
    elif outside:
        where = (f" when {moderator} is below {bounds[0]:.4g} or above {bounds[1]:.4g}, "
                 "and not between them.")
    else:
        where = f" only when {moderator} is between {bounds[0]:.4g} and {bounds[1]:.4g}."
    inside = [r for r in bounds if lo < r < hi]
    if inside:
        tail = (", so significance changes within the data (at "
                + " and ".join(f"{r:.4g}" for r in inside) + ").")
    elif sig(0.5 * (lo + hi)):
        tail = ": the slope is significant throughout the data."
    else:
        tail = ": the slope is not significant anywhere in the data."
    return head + where + data + tail


# --------------------------------------------------------------------------- cross-level
def _factor_columns(code, frame):
    from mlm.design import eval_environment
    m = patsy.dmatrix(f"0 + {code}", frame, eval_env=eval_environment(), NA_action="raise",
                      return_type="matrix")
    return np.asarray(m, dtype=float)


def _varies_within(values, codes, n_groups):
    counts = np.maximum(np.bincount(codes, minlength=n_groups), 1)
    for j in range(values.shape[1]):
        x = values[:, j]
        means = np.bincount(codes, weights=x, minlength=n_groups) / counts
        if np.max(np.abs(x - means[codes])) > 1e-10 * max(1.0, float(np.max(np.abs(x)))):
            return True
    return False


def _slope_variance(fit, factor, column):
    for b, C in zip(fit.design.blocks, fit.solution.covariances()):
        if b.group_name == factor and column in b.columns:
            j = b.columns.index(column)
            return float(C[j, j])
    return float("nan")


def cross_level(fit, baseline=None) -> pd.DataFrame:
    """Find the cross-level interactions of a fit.

    A fixed-effect interaction is cross-level for a grouping factor when at least one of
    its parts varies within the factor's groups (a level-1 predictor) and at least one
    is constant within every group (a level-2 predictor). Levels are read from the data
    the model was fitted to, not from the names.

    Parameters
    ----------
    fit : MixedResult
        The fitted model.
    baseline : MixedResult, optional
        The same model without the cross-level interaction(s), fitted to the same rows.
        Adds ``attrs["slope_variance"]``: one row per random slope (indexed by factor and
        slope) with ``terms`` (the interactions of that slope), ``variance_baseline``,
        ``variance`` and ``explained = 1 - tau11(fit) / tau11(baseline)``, the
        proportional reduction of the slope's variance by those terms together
        (Raudenbush & Bryk 2002, ch. 4). NaN where that slope is not random in both.
        It can be negative.

    Returns
    -------
    pandas.DataFrame
        A row per cross-level term and factor: ``term, level1, level2, factor, estimate,
        std_error, statistic, p_value``. Empty (same columns) when there are none.

    Raises
    ------
    InteractionError
        If ``baseline`` was fitted to different rows or still contains the terms.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.interactions import cross_level
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb["cses"] = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    >>> fit = mlm.lmer("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb)
    >>> cross_level(fit)[["term", "level1", "level2"]].values.tolist()
    [['meanses:cses', 'cses', 'meanses'], ['cses:sector', 'cses', 'sector']]
    """
    _check_fit(fit)
    d = fit.design
    info = d.x_info
    factors = {}
    for b in d.blocks:
        factors.setdefault(b.group_name, (b.codes, b.n_levels))
    level_cache = {}
    co = fit.coefficients
    from mlm.design import lme4_name
    rows = []
    for term in info.terms:
        if len(term.factors) < 2:
            continue
        codes_ = [f.name() for f in term.factors]
        for g, (gcodes, G) in factors.items():
            varies = []
            for code in codes_:
                key = (code, g)
                if key not in level_cache:
                    level_cache[key] = _varies_within(_factor_columns(code, d.frame), gcodes, G)
                varies.append(level_cache[key])
            if not (any(varies) and not all(varies)):
                continue
            sl = info.term_slices[term]
            for j in range(sl.start, sl.stop):
                # the column's name in the fit (R's naming and order), and its factors in
                # patsy's order, which is the order of `varies`
                name = d.fixed_names[d.x_order.index(j)]
                if name not in co.index:
                    continue
                parts = _split_name(lme4_name(info.column_names[j]))
                if len(parts) != len(codes_):
                    parts = codes_
                l1 = ":".join(p for p, v in zip(parts, varies) if v)
                l2 = ":".join(p for p, v in zip(parts, varies) if not v)
                rows.append({"term": name, "level1": l1, "level2": l2, "factor": g,
                             **{k: float(co.loc[name, k]) for k in
                                ("estimate", "std_error", "statistic", "p_value")}})
    cols = ["term", "level1", "level2", "factor", "estimate", "std_error", "statistic", "p_value"]
    out = pd.DataFrame(rows, columns=cols)
    order = {n: i for i, n in enumerate(d.fixed_names)}
    out = out.sort_values("term", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    if baseline is not None:
        _check_fit(baseline)
        if not hasattr(fit, "solution") or not hasattr(baseline, "solution"):
            raise InteractionError("baseline= (the share of slope variance explained) is for linear "
                                   "fits (mlm.lmer); on a GLMM's link scale the proportional "
                                   "reduction of a variance is not comparable between models.")
        if baseline.nobs != fit.nobs or not np.array_equal(baseline.design.y, d.y):
            raise InteractionError(f"baseline was fitted to different rows (nobs {baseline.nobs} "
                                   f"against {fit.nobs}, or different outcome values); fit both "
                                   "models to the same data.")
        still = [t for t in out["term"] if t in baseline.design.fixed_names]
        if still:
            raise InteractionError(f"baseline still contains the cross-level term(s) "
                                   f"{', '.join(map(repr, still))}; pass the model without them.")
        out.attrs["slope_variance"] = _slope_variance_table(fit, baseline, out)
    return out


def _slope_variance_table(fit, baseline, terms) -> pd.DataFrame:
    """One row per random slope: its variance with and without the cross-level terms.

    The reduction belongs to all the interactions of that slope together (R&B 2002,
    ch. 4), so it is reported once per slope, not repeated beside each interaction,
    where it read as if every interaction had explained all of it (issue 11).
    """
    rows = []
    for (g, l1), part in terms.groupby(["factor", "level1"], sort=False):
        t1 = _slope_variance(fit, g, l1)
        t0 = _slope_variance(baseline, g, l1)
        rows.append({"factor": g, "slope": l1, "terms": ", ".join(part["term"]),
                     "variance_baseline": t0, "variance": t1,
                     "explained": 1 - t1 / t0 if np.isfinite(t0) and t0 > 0 else float("nan")})
    cols = ["factor", "slope", "terms", "variance_baseline", "variance", "explained"]
    return pd.DataFrame(rows, columns=cols).set_index(["factor", "slope"])
