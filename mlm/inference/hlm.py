"""HLM's tests of the variance components and the reliability of each random coefficient.

What HLM prints under "Final estimation of variance components" for a two-level model
(Raudenbush & Bryk 2002, *Hierarchical Linear Models*, 2nd ed., ch. 3, eq. 3.103, and
the random-coefficient generalisation used by the HLM program): for the random
coefficient ``q`` of the level-1 model, with ``beta_hat_qj`` its OLS estimate from group
``j``'s own regression and ``W_qj`` the group's level-2 predictors of that coefficient::

    chi2_q = sum_j (beta_hat_qj - gamma_q' W_qj)^2 / V_qqj,   V_j = sigma^2 (X_j' X_j)^{-1}
    df_q   = J_used - F_q        (F_q level-2 predictors of coefficient q, intercept included)

``gamma`` and ``sigma^2`` are the fitted model's estimates (REML by default, as HLM).
Under the null hypothesis ``tau_qq = 0`` the statistic is chi-square with ``df_q`` df.
Only groups whose own level-1 regression can be computed (at least as many rows as
level-1 coefficients, and columns not collinear within the group) enter; the others
are left out and counted, as HLM does ("The chi-square statistics reported above are
based on only N of J units that had sufficient data for computation").

The reliability of the OLS estimate of coefficient ``q`` in group ``j`` is
``lambda_qj = tau_qq / (tau_qq + V_qqj)`` (R&B 2002, eq. 3.58 generalised); HLM prints
its mean over the groups used. For a random intercept alone this is
``tau00 / (tau00 + sigma^2 / n_j)``, the reliability of the group mean. (Checked
against HLM's output: 1660.23 and 0.901 for R&B's null model of the HSB data, and 0.730
and 0.815 for the intercept and slope of ``Reaction ~ Days + (Days | Subject)``.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.errors import MLMError
from mlm.results.linear import require_fit

__all__ = ["variance_tests", "VarianceTestError"]


class VarianceTestError(MLMError, ValueError):
    """A model HLM's variance tests do not cover (the message says which do)."""


#: Relative tolerance for "this fixed-effect column is w_j times that level-1 column".
_MATCH_TOL = 1e-8


def _one_factor(fit):
    """The single grouping factor, or a clear refusal naming what is not covered."""
    blocks = fit.design.blocks
    factors = list(dict.fromkeys(b.group_name for b in blocks))
    if len(factors) == 1:
        return factors[0]
    codes = {b.group_name: b.codes for b in blocks}
    nested = all(_nested(codes[a], codes[b]) or _nested(codes[b], codes[a])
                 for i, a in enumerate(factors) for b in factors[i + 1:])
    kind = "nested (a three-level model)" if nested else "crossed"
    raise VarianceTestError(
        f"variance_tests covers two-level models with one grouping factor; this model has "
        f"{len(factors)} {kind} grouping factors ({', '.join(factors)}). HLM's chi-square "
        "tests for three-level and cross-classified models (HLM3, HCM2) are not implemented. "
        "Test a variance component with a likelihood-ratio test instead: refit without the "
        "term and compare the two fits with mlm.compare(reduced, full).")


def _nested(inner, outer):
    """True when every level of ``inner`` lies within one level of ``outer``."""
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs)


def _group_sums(a, b, codes, J):
    return np.bincount(codes, weights=a * b, minlength=J)


def _match(x, z, codes, J):
    """Per-group w_j with x = w_j z in every group, or None when x is not of that form."""
    zz = _group_sums(z, z, codes, J)
    xz = _group_sums(x, z, codes, J)
    w = np.divide(xz, zz, out=np.zeros(J), where=zz > 0)
    scale = max(1.0, float(np.max(np.abs(x))))
    if np.max(np.abs(x - w[codes] * z)) > _MATCH_TOL * scale:
        return None
    return w


def _level1_model(fit, codes, J):
    """The level-1 columns and, for each fixed effect, the coefficient it predicts.

    Level-1 columns are the random-effect columns, then any fixed-effect column that
    varies within groups and is not a group-level multiple of an earlier one (a level-1
    predictor with a fixed slope: it stays in each group's OLS regression, as in HLM's
    level-1 model). Each fixed effect ``c`` is ``w_cj`` times one level-1 column ``q``:
    it is a level-2 predictor of coefficient ``q`` with values ``w_cj`` (``w = 1`` for
    the coefficient's own intercept ``gamma_q0``).
    """
    d = fit.design
    names, cols = [], []
    for b in d.blocks:
        for a, name in enumerate(b.columns):
            if name in names:
                raise VarianceTestError(
                    f"the random coefficient {name!r} appears in two terms on the same "
                    "factor; variance_tests needs each random coefficient once.")
            names.append(name)
            cols.append(b.Z[:, a])
    n_random = len(names)
    assign = []  # (fixed index, level-1 index, w per group)
    # main effects before interactions, so that x:w finds the level-1 column x first
    by_order = sorted(range(len(d.fixed_names)), key=lambda c: d.fixed_names[c].count(":"))
    for c in by_order:
        fname = d.fixed_names[c]
        x = d.X[:, c]
        hit = None
        for q, z in enumerate(cols):
            w = _match(x, z, codes, J)
            if w is not None:
                hit = (q, w)
                break
        if hit is None:
            ones = np.ones(len(x))
            if _match(x, ones, codes, J) is not None:  # group-level, no intercept yet
                names.append("(Intercept)")
                cols.append(ones)
            else:                                      # a level-1 predictor, fixed slope
                names.append(fname)
                cols.append(x)
            q = len(cols) - 1
            hit = (q, _match(x, cols[q], codes, J))
        assign.append((c, hit[0], hit[1]))
    assign.sort(key=lambda a: a[0])
    return names, np.column_stack(cols), n_random, assign


def _group_ols(Xl, y, codes, J):
    """Per-group X_j'X_j and OLS estimates from sums; which groups allow a regression."""
    Q = Xl.shape[1]
    A = np.empty((J, Q, Q))
    for a in range(Q):
        for b in range(a, Q):
            A[:, a, b] = A[:, b, a] = _group_sums(Xl[:, a], Xl[:, b], codes, J)
    r = np.column_stack([_group_sums(Xl[:, a], y, codes, J) for a in range(Q)])
    n = np.bincount(codes, minlength=J)
    diag = np.diagonal(A, axis1=1, axis2=2)
    ok = (n >= Q) & np.all(diag > 0, axis=1)
    # full rank: the smallest eigenvalue of the correlation-scaled X_j'X_j is not ~0
    s = np.sqrt(np.where(diag > 0, diag, 1.0))
    C = A / (s[:, :, None] * s[:, None, :])
    ok &= np.linalg.eigvalsh(C)[:, 0] > 1e-10
    Ainv = np.full_like(A, np.nan)
    beta = np.full((J, Q), np.nan)
    if ok.any():
        Ainv[ok] = np.linalg.inv(A[ok])
        beta[ok] = np.einsum("gab,gb->ga", Ainv[ok], r[ok])
    return beta, Ainv, ok


def variance_tests(fit) -> pd.DataFrame:
    """HLM's chi-square test of each variance component, with its reliability.

    For each random coefficient of a two-level model: its variance, the chi-square
    statistic of Raudenbush & Bryk (2002, eq. 3.103, generalised to random slopes as
    in the HLM program) built from each group's own OLS regression, its df and p-value,
    and the mean reliability of the groups' OLS estimates. These are the numbers HLM
    prints under "Final estimation of variance components".

    Level-2 predictors of each coefficient are read from the fixed part: a group-level
    column predicts the intercept; a cross-level interaction ``x:w`` (``x`` varying
    within groups, ``w`` constant) predicts the slope of ``x``. Level-1 predictors with
    fixed slopes stay in every group's regression (HLM's level-1 model).

    Parameters
    ----------
    fit : MixedResult
        A fitted model with one grouping factor.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``coefficient`` (lme4's column names, e.g. ``(Intercept)``,
        ``cses``), with columns ``sd, variance, df, chi_square, p_value,
        reliability``. ``attrs`` holds ``groups`` (J), ``groups_used`` (groups whose
        own regression could be computed), ``predictors`` (the level-2 predictors of
        each coefficient) and ``note``.

    Raises
    ------
    VarianceTestError
        For models with more than one grouping factor (three-level or crossed: HLM3's
        and HCM2's tests are not implemented), or when no group has enough rows for its
        own regression.

    Warns
    -----
    UserWarning
        When some groups are left out, with HLM's sentence saying how many were used.

    Notes
    -----
    A group enters when its level-1 regression can be computed: at least as many rows as
    level-1 coefficients and no column collinear within the group. ``sigma^2`` is the
    model's estimate, not the groups' own, as in HLM. With slopes, HLM's published
    values can differ in the last digits from these: HLM stops its iterations "due to
    small change in likelihood function", before the REML optimum that lme4 and mlm
    reach, and the statistic depends on the estimates of gamma and sigma^2.

    Examples
    --------
    >>> import mlm
    >>> from mlm.inference import variance_tests
    >>> fit = mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    >>> tab = variance_tests(fit)
    >>> tab[["variance", "df", "chi_square"]].round(2)   # R&B (2002) table 4.2
                 variance   df  chi_square
    coefficient
    (Intercept)      8.61  159     1660.23
    """
    require_fit(fit, "variance_tests()'s argument", VarianceTestError)
    factor = _one_factor(fit)
    d = fit.design
    codes, J = d.blocks[0].codes, d.blocks[0].n_levels
    names, Xl, n_random, assign = _level1_model(fit, codes, J)
    beta, Ainv, ok = _group_ols(Xl, d.y, codes, J)
    used = int(ok.sum())
    if used == 0:
        raise VarianceTestError(
            f"no group of {factor!r} has enough rows for its own regression on the level-1 "
            f"columns ({', '.join(names)}): each group needs at least {Xl.shape[1]} rows and "
            "columns that are not collinear within it (a variable and its group-mean-centred "
            "version together are). Drop level-1 predictors or test with mlm.compare.")
    gamma = fit.solution.beta
    sigma2 = fit.solution.sigma2
    taus = np.concatenate([np.diag(C) for C in fit.solution.covariances()])
    V = sigma2 * np.diagonal(Ainv[ok], axis1=1, axis2=2)
    rows, predictors = [], {}
    for q in range(n_random):
        pred = np.zeros(used)
        preds = []
        for c, qq, w in assign:
            if qq == q:
                pred += gamma[c] * w[ok]
                preds.append(d.fixed_names[c])
        predictors[names[q]] = preds
        chi2 = float(np.sum((beta[ok, q] - pred) ** 2 / V[:, q]))
        df = used - len(preds)
        tau = float(taus[q])
        rows.append({"coefficient": names[q], "sd": np.sqrt(tau), "variance": tau, "df": df,
                     "chi_square": chi2, "p_value": float(stats.chi2.sf(chi2, df)),
                     "reliability": float(np.mean(tau / (tau + V[:, q])))})
    out = pd.DataFrame(rows).set_index("coefficient")
    note = (f"Chi-square tests of Raudenbush & Bryk (2002, eq. 3.103) on the groups of "
            f"{factor!r}; reliability = mean of tau_qq / (tau_qq + V_qqj).")
    if used < J:
        left = (f"The chi-square statistics and reliabilities are based on only {used} of {J} "
                f"units of {factor!r} that had sufficient data for computation (as HLM).")
        note += " " + left
        warnings.warn(left, UserWarning, stacklevel=2)
    out.attrs.update({"groups": J, "groups_used": used, "factor": factor,
                      "predictors": predictors, "note": note})
    return out
