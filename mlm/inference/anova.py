"""F-tests of model terms: lmerTest's type III and type I ANOVA tables.

Each term of the fixed part (a factor with several levels tested jointly) gets one
hypothesis matrix ``L``, built exactly as lmerTest 3.1 builds it, and is tested with
:func:`mlm.inference.ddf.contrast_test` (lmerTest's ``contestMD``):

* type I (sequential): rows of the Doolittle decomposition of ``X'X``
  (lmerTest's ``get_contrasts_type1``);
* type III: lmerTest's ``extract_contrasts_type3`` for treatment-coded factors: the
  contrasts that express each term's over-parametrised (all-level) columns in the
  model's columns, made orthogonal to the contrasts of every term that contains it
  (containment as lmerTest defines it: all of its variables and the same numeric ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from mlm.errors import MLMError
from mlm.inference.ddf import check_ddf, contrast_test

__all__ = ["anova", "term_contrasts"]


def _zapsmall(x, digits=7):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    x = np.asarray(x, dtype=float)
    mx = np.max(np.abs(x)) if x.size else 0.0
    if not mx > 0:
        return x.copy()
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _terms(design):
    """The fixed part's terms in R's order: (label, X columns, variables, numeric variables)."""
    info = design.x_info
    order = list(design.x_order)
    pos = {pc: j for j, pc in enumerate(order)}
    # R labels an interaction with its variables in the order they first appear in the
    # formula (``standLRT * vr`` gives ``standLRT:vr``), as design._r_interaction_names.
    written = [f for t in patsy.ModelDesc.from_formula(design.formula.fixed_formula).rhs_termlist
               for f in t.factors]
    first = {}
    for f in written + [f for t in info.terms for f in t.factors]:
        first.setdefault(f, len(first))
    out = []
    for term in info.terms:
        sl = info.term_slices[term]
        cols = sorted(pos[pc] for pc in range(sl.start, sl.stop))
        if not term.factors:
            continue
        factors = sorted(term.factors, key=lambda f: first[f])
        names = [f.name() for f in factors]
        numeric = {f.name() for f in factors if info.factor_infos[f].type == "numerical"}
        out.append((":".join(names), cols, set(names), numeric, factors))
    out.sort(key=lambda t: (len(t[2]), t[1][0]))
    return out


def _containment(terms):
    """lmerTest's ``containment``: terms holding all of a term's variables and more, with the
    same numeric variables."""
    return {lab: [o[0] for o in terms if v < o[2] and num == o[3]]
            for lab, _, v, num, _ in terms}


def _full_columns(design, factors):
    """The term's columns with every level of each factor (``model.matrix(~ 0 + term)``)."""
    info = design.x_info
    frame = design.frame
    cols = [np.ones(len(frame))]
    for f in factors:
        fi = info.factor_infos[f]
        values = f.eval(fi.state, frame)
        if fi.type == "numerical":
            block = np.asarray(values, dtype=float).reshape(len(frame), -1)
        else:
            vals = np.asarray(pd.Series(values).astype(object))
            block = np.column_stack([(vals == c).astype(float) for c in fi.categories])
        cols = [c * block[:, j] for c in cols for j in range(block.shape[1])]
    return np.column_stack(cols)


def _type1(design):
    """Rows of t(L) from the Doolittle decomposition of X'X, per term (lmerTest)."""
    X = design.X
    p = X.shape[1]
    L = _doolittle_lower(X.T @ X).T if p > 1 else np.ones((1, 1))
    return {lab: L[cols] for lab, cols, *_ in _terms(design)}


def _doolittle_lower(x, eps=1e-6):
    """lmerTest's ``doolittle(x)$L``: unit lower-triangular L of x = L U, small entries zeroed."""
    n = x.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        for j in range(i + 1, n):
            val = x[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < eps else val / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


def _type3(design):
    """lmerTest's ``extract_contrasts_type3`` (treatment-coded factors)."""
    X = design.X
    terms = _terms(design)
    if X.shape[1] <= 1 or len(terms) <= 1:
        return _type1(design)
    has_intercept = "(Intercept)" in design.fixed_names
    rd = [np.ones((X.shape[0], 1))] if has_intercept else []
    rd_term = [None] if has_intercept else []
    for lab, _, _, _, factors in terms:
        block = _full_columns(design, factors)
        rd.append(block)
        rd_term.extend([lab] * block.shape[1])
    rdX = np.column_stack(rd)
    # Each model column must be one of the all-level columns (treatment coding).
    row_of = []
    col_term = {j: None for j in range(X.shape[1])}
    for lab, cols, *_ in terms:
        for j in cols:
            col_term[j] = lab
    for j in range(X.shape[1]):
        cand = [i for i, t in enumerate(rd_term) if t == col_term[j]]
        hit = [i for i in cand if np.array_equal(rdX[:, i], X[:, j])]
        if not hit:
            raise MLMError(
                f"Type III tests need treatment-coded factors (R's default), but the column "
                f"{design.fixed_names[j]!r} is coded otherwise. Use the default coding (C(x) or a "
                "categorical column), or type=1.")
        row_of.append(hit[0])
    L = _zapsmall(np.linalg.lstsq(X, rdX, rcond=None)[0].T)      # (all-level columns) x p
    contained = _containment(terms)
    cols_of = {lab: cols for lab, cols, *_ in terms}
    for lab, cols, *_ in sorted(terms, key=lambda t: -len(t[2])):
        if contained[lab]:
            other = [c for o in contained[lab] for c in cols_of[o]]
            Xc, Y = L[:, other], L[:, cols]
            coef = np.linalg.lstsq(Xc, Y, rcond=None)[0]
            L[:, cols] = _zapsmall(Y - Xc @ coef)
    L = L[row_of]
    out = {}
    for lab, cols, *_ in terms:
        Lt = L[:, cols].T
        out[lab] = Lt[np.sum(np.abs(Lt), axis=1) > 1e-8]
    return out


def term_contrasts(fit, type=3) -> dict:
    """The hypothesis matrix of each term (lmerTest's ``attr(anova(m), "hypotheses")``).

    Returns a dict from R's term label to a ``(rows, p)`` array over ``fit.fixef``.
    """
    kind = _check_type(type)
    return _type3(fit.design) if kind == 3 else _type1(fit.design)


def _check_type(type):
    key = str(type).strip().upper()
    table = {"1": 1, "I": 1, "3": 3, "III": 3}
    if key not in table:
        raise MLMError(f"Unknown ANOVA type {type!r}: use type=3 (lmerTest's default, marginal) or "
                       "type=1 (sequential).")
    return table[key]


def anova(fit, type=3, ddf=None) -> pd.DataFrame:
    """F-tests of the fixed-effect terms, as lmerTest's ``anova(model, type, ddf)``.

    Parameters
    ----------
    fit : MixedResult
        REML or ML fit (Kenward-Roger needs REML).
    type : {3, 1}, default 3
        Type III (each term adjusted for all others, lmerTest's default) or type I
        (sequential, in formula order).
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
        By default the fit's own (``fit.ddf``).

    Returns
    -------
    pandas.DataFrame
        One row per term, indexed by R's term label (``vr``, ``standLRT:vr``), with columns
        ``sum_sq, mean_sq, num_df, den_df, F, p_value``. As lmerTest, ``mean_sq`` is the
        (unscaled) F times the residual variance. ``attrs`` hold ``type`` and ``ddf``.

    Examples
    --------
    >>> import mlm
    >>> exam = mlm.load_dataset("exam")
    >>> fit = mlm.lmer("normexam ~ standLRT * vr + (standLRT | school)", exam)
    >>> mlm.anova(fit)[["num_df", "den_df"]].round(1)
                 num_df  den_df
    term
    standLRT        1.0    58.1
    vr              2.0    60.9
    standLRT:vr     2.0    57.2
    """
    from mlm.results.linear import MixedResult, require_fit

    if isinstance(type, MixedResult):
        raise MLMError("mlm.anova tests the terms of one model; to compare fitted models "
                       "(lme4's anova(m0, m1)) use mlm.compare(m0, m1).")
    require_fit(fit)
    kind = _check_type(type)
    method = check_ddf(ddf, fit)
    Ls = term_contrasts(fit, kind)
    rows = {}
    for lab, L in Ls.items():
        if L.shape[0] == 0:
            rows[lab] = [np.nan] * 6
            continue
        r = contrast_test(fit, L, ddf=method, joint=True)
        rows[lab] = [r.sum_sq, r.mean_sq, r.num_df, r.den_df, r.F, r.p_value]
    from mlm.report.printed import PrintedTable

    out = PrintedTable(pd.DataFrame.from_dict(
        rows, orient="index", columns=["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]))
    out.index.name = "term"
    roman = "III" if kind == 3 else "I"
    out.attrs.update({"type": roman, "ddf": method,
                      "title": f"Type {roman} Analysis of Variance Table ({_METHOD_WORDS.get(method, method)})"})
    return out


#: How the title names each df method (lmerTest's words)
_METHOD_WORDS = {"satterthwaite": "Satterthwaite's method", "kenward-roger": "Kenward-Roger's method",
                 "residual": "residual df", "normal": "normal approximation: chi-square / df"}
