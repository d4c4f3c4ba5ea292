"""Denominator degrees of freedom for tests of fixed effects: Satterthwaite and Kenward-Roger.

Four methods, named by ``ddf``:

* ``"satterthwaite"`` (default): lmerTest's method (Kuznetsova, Brockhoff & Christensen
  2017, JSS 82(13)). For a contrast ``c``, ``df = 2 (c'Vc)^2 / (g'Ag)`` with ``V`` the
  covariance of the fixed effects as a function of the variance parameters
  ``varpar = (theta, sigma)``, ``g`` the gradient of ``c'Vc`` and ``A`` the asymptotic
  covariance of ``varpar`` (twice the inverse Hessian of the deviance). Several rows
  ``L`` are tested jointly as lmerTest's ``contestMD`` does: the F statistic from the
  eigen-decomposition of ``L V L'`` and its df from the df of the independent
  one-row contrasts.
* ``"kenward-roger"``: pbkrtest's method (Kenward & Roger 1997; Halekoh & Højsgaard 2014,
  JSS 59(9)): the covariance of the fixed effects is inflated for the uncertainty in the
  variance parameters (``vcovAdj``), the F statistic scaled and its df matched to an F
  distribution's moments. REML fits only, as in lmerTest.
* ``"residual"``: ``n - p`` for every test (SAS's and Stata's residual df).
* ``"normal"``: Wald z-tests (``df = inf``).

Computation. ``V(theta, sigma) = sigma^2 (R_X'R_X)^{-1}`` comes from the penalised
least-squares factorisation of :mod:`mlm.engine.pls`; its derivatives and the Hessian of
the deviance are taken by central differences of the exact gradient from ``2 k + 1``
factorisations (each costs what one deviance evaluation costs in the fit, independently
of the number of rows), with the ``sigma`` parts analytic (:mod:`mlm.engine.varpar`).
Kenward-Roger's matrices (pbkrtest's ``P``, ``Q`` and the traces) are computed through
the random effects, ``Z' Sigma^{-1} Z`` and ``Z' Sigma^{-1} X`` (Woodbury), block by
block when every random term is nested in one top-level factor: never an ``n x n``
matrix (:mod:`mlm.inference.kenward_roger`). The results are cached on the fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from mlm._lazy import stats

from mlm.errors import MLMError
from mlm.engine.pls import single_threaded_blas
from mlm.engine.varpar import varpar_derivatives
from mlm.inference.kenward_roger import _kr_A, _kr_df, _require_kr, vcov_adjusted

__all__ = ["DDF_METHODS", "ContrastTest", "check_ddf", "contrast_test", "coef_table",
           "satterthwaite_df", "vcov_adjusted", "method_line"]

#: The methods and how the summary names them (lmerTest's words for its two).
DDF_METHODS = {
    "satterthwaite": "Satterthwaite's method",
    "kenward-roger": "Kenward-Roger's method",
    "residual": "residual df (n - p)",
    "normal": "normal approximation (Wald z, df = inf)",
}
_ALIASES = {"kr": "kenward-roger", "kenward_roger": "kenward-roger", "kenwardroger": "kenward-roger",
            "satterthwaite's": "satterthwaite", "satt": "satterthwaite", "z": "normal",
            "wald": "normal", "inf": "normal"}

def check_ddf(ddf, fit=None) -> str:
    """The canonical name of a ``ddf`` choice; ``None`` means the fit's own (or Satterthwaite)."""
    if ddf is None:
        return getattr(fit, "ddf", "satterthwaite") if fit is not None else "satterthwaite"
    if not isinstance(ddf, str):
        raise MLMError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, not {ddf!r}.")
    key = ddf.strip().lower().replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in DDF_METHODS:
        raise MLMError(f"Unknown ddf {ddf!r}: use one of {', '.join(map(repr, DDF_METHODS))}.")
    return key


def method_line(ddf: str) -> str:
    """The one line the summary prints under the fixed effects."""
    if ddf == "normal":
        return ("Wald z-tests (normal approximation, df = inf); they are liberal with few groups. "
                "Use ddf='satterthwaite' (the default) for lmerTest's t-tests.")
    if ddf == "residual":
        return "t-tests use residual degrees of freedom (n - p), as SAS and Stata's residual df."
    return f"t-tests use {DDF_METHODS[ddf]}"


# --- Satterthwaite ------------------------------------------------------------------------

@dataclass(frozen=True)
class _SattParts:
    """lmerTest's ``vcov_varpar`` (A) and ``Jac_list`` (dV/dvarpar, shape (k, p, p))."""

    A: np.ndarray
    jac: np.ndarray
    eigen_warning: str | None


def _cache(fit) -> dict:
    store = fit.__dict__.setdefault("_inference_cache", {})
    return store


def satterthwaite_parts(fit) -> _SattParts:
    """A and the Jacobian of ``vcov(beta)`` in ``(theta, sigma)``, computed once per fit.

    The deviance in lmerTest's parametrisation is
    ``f1(theta) + m log(2 pi sigma^2) + r2(theta) / sigma^2``, so its Hessian needs the
    theta-derivatives of ``f1`` and ``r2`` only (the sigma parts are analytic);
    ``vcov(beta) = sigma^2 (R_X'R_X)^{-1}``. Both come from
    :func:`mlm.engine.varpar.varpar_derivatives`: central differences of the exact
    gradient (``2 k + 1`` factorisations for ``k`` theta parameters) where the layout has
    one, else numDeriv's ``genD`` as lmerTest (``4 k (k + 1)``).
    """
    store = _cache(fit)
    if "satterthwaite" in store:
        return store["satterthwaite"]
    sigma = fit.sigma
    with single_threaded_blas():
        der = varpar_derivatives(fit.problem, np.asarray(fit.theta, dtype=float), sigma)
    k = der.d_unsc.shape[0]
    jac = np.empty((k + 1,) + der.unsc.shape)
    jac[:k] = sigma * sigma * der.d_unsc
    jac[k] = 2.0 * sigma * der.unsc
    A, warn = _pinv_hessian(der.hessian)
    if warn and "negative" in warn:  # zero eigenvalues (a variance at 0) are expected: silent
        warnings.warn(warn, UserWarning, stacklevel=3)
    out = _SattParts(A=A, jac=jac, eigen_warning=warn)
    store["satterthwaite"] = out
    return out


def _pinv_hessian(H, tol=1e-8):
    """2 H^+ over the eigenvalues above ``tol``, as lmerTest's ``as_lmerModLT`` does."""
    H = 0.5 * (H + H.T)
    vals, vecs = np.linalg.eigh(H)
    pos = vals > tol
    # "negative" beyond the Hessian's own error (differences good to ~1e-9 of its largest
    # entry, mlm.engine.varpar): an unidentified direction (exam's (sex || school)) gives
    # an eigenvalue of +-1e-6 against 3e4, a zero, not a fit short of its optimum
    neg = vals < -max(tol, 1e-8 * float(np.max(np.abs(vals))))
    warn = None
    if np.any(neg):
        warn = (f"The Hessian of the deviance has {int(np.sum(neg))} negative eigenvalue(s): "
                "the fit may not be at an optimum, and Satterthwaite's df are unreliable.")
    elif np.any(~pos):
        warn = (f"The Hessian of the deviance has {int(np.sum(~pos))} eigenvalue(s) close to zero "
                "(a variance at or near zero): Satterthwaite's df ignore that direction, as lmerTest.")
    inv = (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
    return 2.0 * inv, warn


def satterthwaite_df(fit, c) -> float:
    """Satterthwaite's df of the one-row contrast ``c`` (lmerTest's ``contest1D``)."""
    parts = satterthwaite_parts(fit)
    c = np.asarray(c, dtype=float)
    var = float(c @ fit.solution.vcov_beta @ c)
    grad = np.einsum("i,kij,j->k", c, parts.jac, c)
    denom = float(grad @ parts.A @ grad)
    if denom <= 0:
        return np.inf
    return 2.0 * var * var / denom


def _satterthwaite_unit_df(fit) -> np.ndarray:
    """:func:`satterthwaite_df` of every unit contrast (one per coefficient) at once."""
    parts = satterthwaite_parts(fit)
    var = np.diag(fit.solution.vcov_beta)
    grad = np.diagonal(parts.jac, axis1=1, axis2=2)            # (k + 1, p): d V_ii / d varpar
    denom = np.einsum("ki,kl,li->i", grad, parts.A, grad)
    with np.errstate(divide="ignore"):
        return np.where(denom > 0, 2.0 * var * var / np.where(denom > 0, denom, 1.0), np.inf)


def _fstat_ddf(nu, tol=1e-8):
    """lmerTest's ``get_Fstat_ddf``: the df of an F built from independent t statistics."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2.0 * E / (E - nu.size)


# --- the one test everything builds on ------------------------------------------------------

@dataclass(frozen=True)
class ContrastTest:
    """The test of ``L beta = rhs``.

    Attributes
    ----------
    estimate : ndarray
        ``L beta`` (one value per row of ``L``).
    vcov : ndarray
        Covariance of ``L beta`` (Kenward-Roger: from the adjusted covariance).
    statistic : float
        t (``kind == "t"``) or F (``kind == "F"``: lmerTest's F; Kenward-Roger's scaled F).
    num_df, den_df : float
        Numerator (rank of the contrast) and denominator degrees of freedom.
    p_value : float
    ddf : str
        The method.
    mean_sq : float
        lmerTest's ``Mean Sq``: the unscaled F times sigma^2 (``sum_sq = mean_sq * num_df``).
    kind : str
        ``"t"`` or ``"F"``.
    """

    estimate: np.ndarray
    vcov: np.ndarray
    statistic: float
    num_df: float
    den_df: float
    p_value: float
    ddf: str
    mean_sq: float
    kind: str = "F"

    @property
    def sum_sq(self) -> float:
        """lmerTest's ``Sum Sq``."""
        return self.mean_sq * self.num_df

    @property
    def F(self) -> float:
        """The F statistic (t squared for a t-test)."""
        return self.statistic ** 2 if self.kind == "t" else self.statistic


def _as_contrast(fit, L, rhs):
    beta = fit.solution.beta
    try:
        L = np.array(L, dtype=float)
    except (TypeError, ValueError):
        raise MLMError("The contrast matrix L must be numeric (rows of weights on the fixed "
                       "effects).") from None
    one_row = L.ndim == 1
    L = np.atleast_2d(L)
    if L.ndim != 2 or L.shape[1] != beta.size:
        names = ", ".join(fit.design.fixed_names)
        raise MLMError(f"The contrast has {L.shape[-1]} column(s) but the model has {beta.size} fixed "
                       f"effects ({names}): give one weight per fixed effect, in that order.")
    if L.shape[0] == 0 or not np.all(np.isfinite(L)):
        raise MLMError("The contrast matrix L must have at least one row and only finite weights.")
    rhs = np.broadcast_to(np.asarray(0.0 if rhs is None else rhs, dtype=float), (L.shape[0],)).copy()
    return L, rhs, one_row


def contrast_test(fit, L, ddf=None, rhs=0.0, joint=None) -> ContrastTest:
    """Test ``L beta = rhs`` with the chosen degrees of freedom (lmerTest's ``contest``).

    Parameters
    ----------
    fit : MixedResult
    L : array_like, shape (p,) or (q, p)
        Weights on the fixed effects (in ``fit.fixef``'s order); several rows are tested
        jointly.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
        By default the fit's own (``fit.ddf``).
    rhs : float or array_like, default 0
        The hypothesised value(s) of ``L beta``.
    joint : bool, optional
        Force the F-test of lmerTest's ``contestMD`` (what :func:`mlm.anova` uses) even for
        one row; by default one row gives a t-test (``contest1D``). The two differ only
        under Kenward-Roger, whose F is scaled (pbkrtest's ``KRmodcomp``).

    Returns
    -------
    ContrastTest
        One row: a t-test (``statistic`` is t). Several rows: an F-test of their rank
        (lmerTest's ``contestMD``; Kenward-Roger as pbkrtest's ``KRmodcomp``).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> res = contrast_test(fit, [0, 1])
    >>> round(res.den_df, 1), round(res.statistic, 2)
    (17.0, 6.77)
    """
    from mlm.results.linear import require_fit

    require_fit(fit)
    method = check_ddf(ddf, fit)
    L, rhs, one_row = _as_contrast(fit, L, rhs)
    if method == "kenward-roger":
        _require_kr(fit)
    if L.shape[0] == 1 and not joint:
        return _test_1d(fit, L[0], rhs[0], method)
    return _test_md(fit, L, rhs, method)


def _df_1d(fit, c, method):
    if method == "satterthwaite":
        return satterthwaite_df(fit, c)
    if method == "kenward-roger":
        A1, A2 = _kr_A(fit, c)
        return _kr_df(1, A1, A2)[0]
    if method == "residual":
        return float(fit.nobs - fit.solution.beta.size)
    return np.inf


def _pt(t, df):
    return float(2 * (stats.norm.sf(abs(t)) if not np.isfinite(df) else stats.t.sf(abs(t), df)))


def _test_1d(fit, c, rhs, method):
    beta = fit.solution.beta
    V = vcov_adjusted(fit) if method == "kenward-roger" else fit.solution.vcov_beta
    est = float(c @ beta)
    var = float(c @ V @ c)
    df = _df_1d(fit, c, method)
    t = (est - rhs) / np.sqrt(var)
    ms = t * t * fit.solution.sigma2
    return ContrastTest(estimate=np.array([est]), vcov=np.array([[var]]), statistic=float(t),
                        num_df=1.0, den_df=float(df), p_value=_pt(t, df), ddf=method, mean_sq=ms, kind="t")


def _f_result(fit, L, est, V, F, q, df, method, scale=1.0):
    p = float(stats.f.sf(F * scale, q, df)) if np.isfinite(df) else float(stats.chi2.sf(F * scale * q, q))
    return ContrastTest(estimate=est, vcov=V, statistic=float(F * scale), num_df=float(q), den_df=float(df),
                        p_value=p, ddf=method, mean_sq=float(F * fit.solution.sigma2))


def _test_md(fit, L, rhs, method):
    beta = fit.solution.beta
    if np.any(rhs != 0):
        beta = beta - np.linalg.pinv(L) @ rhs
    if method == "kenward-roger":
        return _test_md_kr(fit, L, beta)
    V = fit.solution.vcov_beta
    VL = L @ V @ L.T
    d, P = np.linalg.eigh(VL)
    d, P = d[::-1], P[:, ::-1]
    tol = max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    q = int(np.sum(d > tol))
    if q == 0:
        raise MLMError("The contrast has rank 0 (its rows give L beta no variance): check the weights.")
    PtL = (P.T @ L)[:q]
    est = L @ fit.solution.beta
    if q == 1:
        r = _test_1d(fit, PtL[0], float(PtL[0] @ (fit.solution.beta - beta)), method)
        F = r.statistic ** 2
        return ContrastTest(estimate=est, vcov=VL, statistic=float(F), num_df=1.0, den_df=r.den_df,
                            p_value=float(r.p_value), ddf=method, mean_sq=float(F * fit.solution.sigma2))
    t2 = (PtL @ beta) ** 2 / d[:q]
    F = float(np.sum(t2) / q)
    if method == "satterthwaite":
        df = _fstat_ddf([satterthwaite_df(fit, PtL[m]) for m in range(q)])
    else:
        df = _df_1d(fit, PtL[0], method)
    return _f_result(fit, L, est, VL, F, q, df, method)


def _test_md_kr(fit, L, beta):
    """pbkrtest's ``KRmodcomp`` with a restriction matrix, as lmerTest's ``contestMD`` calls it."""
    q = int(np.linalg.matrix_rank(L))
    Vadj = vcov_adjusted(fit)
    # A1, A2 solve with L Phi L': on a rank-deficient L (rows that repeat a hypothesis) that
    # is singular, so use q independent rows spanning the same space (SVD); KR's statistic
    # and df depend on L only through that space (Theta = L'(L Phi L')^{-1} L is invariant)
    Lq = L if q == L.shape[0] else np.linalg.svd(L, full_matrices=False)[2][:q]
    A1, A2 = _kr_A(fit, Lq)
    df2, x = _kr_df(q, A1, A2)
    scale = 1.0 if abs(df2 - 2) < 1e-2 else df2 * x / (df2 - 2)
    Lb = L @ beta
    VL = L @ Vadj @ L.T
    wald = float(Lb @ np.linalg.lstsq(VL, Lb, rcond=None)[0])
    return _f_result(fit, L, L @ fit.solution.beta, VL, wald / q, q, df2, "kenward-roger", scale)


def coef_table(fit, ddf=None, level=0.95):
    """The fixed-effects table with the chosen df: estimate, std_error, df, statistic, p_value,
    conf_low, conf_high (t intervals with that df; Kenward-Roger's adjusted SEs)."""
    import pandas as pd

    method = check_ddf(ddf, fit)
    if method == "kenward-roger":
        _require_kr(fit)
    est = fit.solution.beta
    V = vcov_adjusted(fit) if method == "kenward-roger" else fit.solution.vcov_beta
    se = np.sqrt(np.diag(V))
    p = est.size
    try:
        if method == "satterthwaite":
            df = _satterthwaite_unit_df(fit)
        else:
            df = np.array([_df_1d(fit, np.eye(p)[i], method) for i in range(p)])
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        if method != "satterthwaite":
            raise
        # The deviance could not be evaluated near the optimum (a degenerate fit): say so
        # and fall back to z-tests rather than leave the user without a table.
        warnings.warn(f"Satterthwaite's df could not be computed for this fit ({exc}); the table "
                      "shows Wald z-tests (df = inf) instead.", UserWarning, stacklevel=3)
        df = np.full(p, np.inf)
        method = "normal"
    from scipy import special

    t = est / se
    # scipy.stats.t's own kernels, called once on the whole column (the distribution
    # objects' per-call overhead was half the table's time); df = inf gives the normal's
    pval = 2.0 * special.stdtr(df, -np.abs(t))
    crit = special.stdtrit(df, 0.5 + level / 2)
    cols = np.column_stack([est, se, df, t, pval, est - crit * se, est + crit * se])
    names = ["estimate", "std_error", "df", "statistic", "p_value", "conf_low", "conf_high"]
    out = pd.DataFrame(cols, index=fit.fixef.index, columns=names)
    out.attrs["ddf"] = method
    return out
