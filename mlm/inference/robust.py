"""Cluster-robust (sandwich) standard errors for the fixed effects, as clubSandwich computes them.

For clusters ``j`` (the top grouping factor by default) with rows ``X_j``, marginal
residuals ``e_j = y_j - X_j beta_hat`` and the fitted model's marginal covariance as the
working model, ``V_j = Z_j Lambda Lambda' Z_j' + I`` (in units of ``sigma^2``;
``W_j = V_j^{-1}``), clubSandwich's ``vcovCR(m, type = ...)`` for an lme4 fit is::

    M    = (sum_j X_j' W_j X_j)^{-1}
    vcov = M (sum_j X_j' W_j A_j e_j e_j' A_j' W_j X_j) M

with ``A_j = I`` (CR0), ``A_j = sqrt(J / (J - 1)) I`` (CR1) or, for CR2 (Bell & McCaffrey
2002; Pustejovsky & Tipton 2018, J. Bus. Econ. Stat. 36(4)), ``A_j = D_j' G_j^{-1/2} D_j``
with ``V_j = D_j' D_j`` (Cholesky) and ``G_j = D_j (V_j - X_j M X_j') D_j'``. Tests use
clubSandwich's Satterthwaite df (``coef_test(m, vcov = type, test = "Satterthwaite")``):
``df = E^2 / sum(P^2)`` with ``P`` the J x J matrix of Pustejovsky & Tipton's eq. (11),
the moments of the variance estimator when the working model is true.

Everything is computed cluster by cluster: the marginal covariance is block-diagonal by
cluster when every grouping factor is nested in it, so no n x n matrix is formed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as sla
from mlm._lazy import stats

from mlm.checks import choice, level as check_level
from mlm.errors import MLMError
from mlm.engine.pls import single_threaded_blas
from mlm.results.linear import require_fit

__all__ = ["robust", "RobustError"]

TYPES = ("CR2", "CR1", "CR0")


class RobustError(MLMError, ValueError):
    """A cluster-robust covariance that cannot be computed as asked (the message says why)."""


def _cluster(fit, cluster):
    """Codes of the clustering factor; checks that every grouping factor nests in it."""
    blocks = fit.design.blocks
    factors = {}
    for b in blocks:
        factors.setdefault(b.group_name, b)
    if cluster is None:
        # clubSandwich's get_outer_group: the grouping factor with the fewest levels
        cluster = min(factors, key=lambda g: factors[g].n_levels)
    elif cluster not in factors:
        raise RobustError(f"cluster={cluster!r} is not a grouping factor of this model; it has "
                          f"{', '.join(map(repr, factors))}. Name one of them, or leave "
                          "cluster=None for the top-level factor.")
    top = factors[cluster]
    for g, b in factors.items():
        pairs = np.unique(np.column_stack([b.codes, top.codes]), axis=0)
        if len(np.unique(pairs[:, 0])) != len(pairs):
            raise RobustError(
                f"the grouping factor {g!r} is not nested in the cluster {cluster!r} (its groups "
                f"span several {cluster!r} groups: a crossed design). The working model is then not "
                "block-diagonal by cluster and clubSandwich refuses such models too; cluster on a "
                "factor that contains all the others, or use the model-based standard errors.")
    if top.n_levels < 2:
        raise RobustError(f"cluster {cluster!r} has a single group; cluster-robust standard "
                          "errors need at least two.")
    return cluster, top.codes, top.n_levels


def _cluster_u(rows, zts, codes):
    """U_j with V_j = I + U_j U_j' (units of sigma^2): the cluster's columns of Z Lambda.

    Returned with orthogonal columns of full rank (thin SVD), so that a zero variance
    or a slope constant within the cluster leaves no dependent column behind.
    """
    n = len(rows)
    parts = []
    for zt, c in zip(zts, codes):
        zr = zt[rows]
        k = zr.shape[1]
        _, inv = np.unique(c[rows], return_inverse=True)
        U = np.zeros((n, (inv.max() + 1) * k))
        U[np.arange(n)[:, None], inv[:, None] * k + np.arange(k)] = zr
        parts.append(U)
    U = np.hstack(parts)
    u, s, _ = np.linalg.svd(U, full_matrices=False)
    keep = s > 1e-10 * max(1.0, s[0] if len(s) else 0.0)
    return u[:, keep] * s[keep]


def _w_dot(U, B):
    """W_j B = V_j^{-1} B by Woodbury: B - U (I + U'U)^{-1} U'B, never an n x n inverse."""
    if U.shape[1] == 0:
        return B
    K = np.eye(U.shape[1]) + U.T @ U
    return B - U @ np.linalg.solve(K, U.T @ B)


def _cr2_estmat(Xj, XW, U, M):
    """CR2's E_j = X_j' W_j A_j with A_j = D' G^{-1/2} D, D = chol(V_j) (upper).

    G = D (V - X M X') D' is the identity plus a matrix of rank q + p (q = columns of U):
    with R = D, R R' = I + B F' (B = R U, F = R^{-T} U), so R V R' - I = B (F + B)' = B C B'
    and G - I = S diag(C, -M) S' with S = [B, R X]. Its inverse square root is then
    I + Q Gamma (f - 1) Gamma' Q' from a small eigenproblem, and A = V + N (f - 1) N'.
    Costs one Cholesky of V_j; the eigen-decomposition clubSandwich runs on G is avoided.
    """
    n = Xj.shape[0]
    V = np.eye(n) + U @ U.T
    Lc = np.linalg.cholesky(V)                      # V = Lc Lc' ; R = Lc'
    RX = Lc.T @ Xj
    if U.shape[1]:
        B = Lc.T @ U
        F = sla.solve_triangular(Lc, U, lower=True)
        BtB = B.T @ B
        C = np.linalg.solve(BtB, B.T @ (F + B)).T   # (F + B)' B (B'B)^{-1}
        C = (C + C.T) / 2
        S = np.hstack([B, RX])
        Chat = sla.block_diag(C, -M)
    else:
        S, Chat = RX, -M
    Qs, Rs = np.linalg.qr(S)
    small = Rs @ Chat @ Rs.T
    lam, Gam = np.linalg.eigh((small + small.T) / 2)
    g = 1.0 + lam
    # clubSandwich's matrix_power: eigenvalues of G at or below 1e-12 are set to 0
    f = np.where(g > 1e-12, np.abs(g) ** -0.5, 0.0)
    N = Lc @ (Qs @ Gam)
    return Xj.T + ((XW @ N) * (f - 1.0)) @ N.T


def _robust_parts(fit, cluster, type_):
    d = fit.design
    X, y = d.X, d.y
    resid = y - X @ fit.solution.beta
    zts = [b.Z @ T for b, T in zip(d.blocks, fit.solution.templates)]
    codes = [b.codes for b in d.blocks]
    name, ccodes, J = _cluster(fit, cluster)
    order = np.argsort(ccodes, kind="stable")
    cuts = np.cumsum(np.bincount(ccodes, minlength=J))[:-1]
    clusters = np.split(order, cuts)
    p = X.shape[1]
    Us = [_cluster_u(rows, zts, codes) for rows in clusters]
    # the bread M = (X' W X)^{-1}
    XWX = np.zeros((p, p))
    for rows, U in zip(clusters, Us):
        XWX += X[rows].T @ _w_dot(U, X[rows])
    M = np.linalg.inv(XWX)
    LM = np.linalg.cholesky(M)
    scale = np.sqrt(J / (J - 1)) if type_ == "CR1" else 1.0
    # estimating matrices E_j, the meat, and the pieces of the Satterthwaite df
    meat = np.zeros((p, p))
    dvec = np.empty((J, p))
    H = np.empty((J, p, p))
    for j, (rows, U) in enumerate(zip(clusters, Us)):
        Xj = X[rows]
        XW = _w_dot(U, Xj).T                        # X_j' W_j
        E = _cr2_estmat(Xj, XW, U, M) if type_ == "CR2" else XW * scale
        comp = E @ resid[rows]
        meat += np.outer(comp, comp)
        ME = M @ E
        EU = ME @ U
        dvec[j] = np.einsum("ia,ia->i", ME, ME) + np.einsum("ia,ia->i", EU, EU)  # diag(ME V E'M)
        H[j] = ME @ Xj @ LM
    vcov = M @ meat @ M
    # Satterthwaite df per coefficient i: P_i = diag(d_i) - H_i' H_i (J x J), never formed:
    # tr P = sum d - sum |h|^2 ;  |P|_F^2 = sum d^2 - 2 sum d |h|^2 + |sum h h'|_F^2
    hh = np.einsum("jik,jik->ji", H, H)
    S = np.einsum("jik,jil->ikl", H, H)
    tr = dvec.sum(0) - hh.sum(0)
    frob = (dvec ** 2).sum(0) - 2 * (dvec * hh).sum(0) + np.einsum("ikl,ikl->i", S, S)
    df = tr ** 2 / frob
    return vcov, df, name, J


def robust(fit, type: str = "CR2", cluster: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """The fixed effects with cluster-robust (sandwich) standard errors, as clubSandwich.

    The working model is the fitted model's marginal covariance, so the estimates stay
    the model's; only their standard errors, df and tests change. This is HLM's "Final
    estimation of fixed effects (with robust standard errors)" with clubSandwich's
    small-sample corrections.

    Parameters
    ----------
    fit : MixedResult
        The fitted model: its fixed effects and marginal covariance.
    type : {"CR2", "CR1", "CR0"}
        ``"CR2"`` (default): Bell & McCaffrey's bias-reduced estimator, clubSandwich's
        default and recommendation. ``"CR1"``: CR0 times J / (J - 1). ``"CR0"``: the plain
        (Liang-Zeger) sandwich, the one HLM prints.
    cluster : str, optional
        A grouping factor of the model that contains all the others; by default the one
        with the fewest groups (the top level, as clubSandwich).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``term``, with ``estimate, std_error, df, statistic, p_value,
        conf_low, conf_high``: t-tests with clubSandwich's Satterthwaite df for the
        chosen type (``coef_test(m, vcov = type, test = "Satterthwaite")``). ``attrs``
        holds ``type``, ``cluster``, ``clusters`` (their number) and ``vcov`` (the
        robust covariance matrix, a DataFrame).

    Raises
    ------
    RobustError
        For an unknown type, a cluster that is not a grouping factor, a grouping factor
        not nested in the cluster (crossed designs), or a single cluster.

    Examples
    --------
    >>> import mlm
    >>> from mlm.inference import robust
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> robust(fit, "CR2")[["estimate", "std_error", "df"]].round(2)
                 estimate  std_error    df
    term
    (Intercept)    251.41       6.82  17.0
    Days            10.47       1.55  17.0
    """
    require_fit(fit, "robust()'s argument", RobustError)
    choice(type, TYPES, "type", RobustError, hint=" (clubSandwich's names)")
    level = check_level(level, RobustError)
    if cluster is not None and not isinstance(cluster, str):
        raise RobustError(f"cluster must be the name of a grouping factor (a string) or None, not "
                          f"{cluster.__class__.__name__}.")
    with single_threaded_blas():  # many small matrices: BLAS threads only cost (see pls.py)
        vcov, df, name, J = _robust_parts(fit, cluster, type)
    est = fit.solution.beta
    se = np.sqrt(np.diag(vcov))
    t = est / se
    crit = stats.t.ppf(0.5 + level / 2, df)
    idx = pd.Index(fit.design.fixed_names, name="term")
    out = pd.DataFrame({"estimate": est, "std_error": se, "df": df, "statistic": t,
                        "p_value": 2 * stats.t.sf(np.abs(t), df),
                        "conf_low": est - crit * se, "conf_high": est + crit * se}, index=idx)
    out.attrs.update({"type": type, "cluster": name, "clusters": J,
                      "vcov": pd.DataFrame(vcov, index=idx, columns=list(idx))})
    return out


def summary_lines(fit, type: str) -> list:
    """The summary's section of robust standard errors beside the model-based ones."""
    rob = robust(fit, type)
    co = fit.coefficients
    from mlm.results.linear import _format_p
    table = pd.DataFrame({"Estimate": rob["estimate"].map(lambda v: f"{v:.4f}"),
                          "Model SE": co["std_error"].map(lambda v: f"{v:.4f}"),
                          "Robust SE": rob["std_error"].map(lambda v: f"{v:.4f}"),
                          "df": rob["df"].map(lambda v: f"{v:.2f}"),
                          "t value": rob["statistic"].map(lambda v: f"{v:.2f}"),
                          "Pr(>|t|)": rob["p_value"].map(_format_p)}, index=list(rob.index))
    return [f"Fixed effects with cluster-robust standard errors ({type}, clustered on "
            f"{rob.attrs['cluster']}, {rob.attrs['clusters']} clusters; clubSandwich's "
            "Satterthwaite df):", table.to_string()]
