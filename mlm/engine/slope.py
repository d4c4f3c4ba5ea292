"""The deviance, its gradient and the estimates for one grouping factor with a 2 x 2 template.

A random intercept and slope ``(x | g)`` (or ``(1 | g) + (0 + x | g)``, the same factor
with a diagonal template) is the second most common model after ``(1 | g)``
(:mod:`mlm.engine.scalar`). Every level's block ``A_l = T'M_l T + I`` of
``Lambda'Z'Z Lambda + I`` is 2 x 2, so its inverse is its adjugate over its determinant,
and eliminating the random effects leaves the fixed-effects system with the response
appended, ``K = K0 - sum_l X_l' C_l X_l`` (``C_l = T A_l^{-1} T'``, ``X_l`` the level's rows
of ``[Z'X | Z'y]``): its Cholesky factor holds ``L_X``, ``c_beta`` and ``sqrt(r2)`` (Bates et
al. 2015, JSS 67(1), sec. 3; lme4's ``RX`` and ``cbeta`` with the response appended, as
:mod:`mlm.engine.augmented` does beside a second factor). The gradient differentiates
through ``K`` (:func:`deviance_and_gradient`), the conditional modes are ``b_l = C_l
(Z'y - Z'X beta)_l`` and their variances ``sigma^2 C_l``. Per-level entries are stacked
(3 or 4, G) arrays, so an evaluation is a few dozen numpy calls whatever the number of
levels, where the general per-level kernels (:mod:`mlm.engine.kernels`) paid call overhead
on every entry (sleepstudy, HSB: issue 16).

:func:`grad_pieces` gives the gradient as its two terms ``(d f1, d r2)``, which
Satterthwaite's degrees of freedom difference (:mod:`mlm.engine.varpar`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from mlm.engine.pls import _rx_inverse, _tri

_dpotrf = sla.get_lapack_funcs("potrf", (np.empty(1),))
_dpotri = sla.get_lapack_funcs("potri", (np.empty(1),))

__all__ = ["applies", "deviance_and_gradient", "solve", "grad_pieces"]


def applies(problem) -> bool:
    """Whether ``problem`` is one grouping factor with a two-column (lower triangular) template."""
    return (not problem.dense and problem.rem is None and problem.k1 == 2
            and len(problem.primary) in (1, 2))


def _template(problem, theta):
    """``(t0, t1, t2)``: the primary block ``[[t0, 0], [t1, t2]]``, and the per-term templates."""
    Ts = problem.templates(theta)
    if len(problem.primary) == 1:
        T = Ts[problem.primary[0]]
    else:
        T = np.diag([Ts[i][0, 0] for i in problem.primary])
    return float(T[0, 0]), float(T[1, 0]), float(T[1, 1]), Ts


class _Augmented:
    """The fixed-effects system with the response appended, ``K = K0 - sum_l X_l' C_l X_l``
    (``X_l`` the level's 2 x (p + 1) rows of ``[Z'X | Z'y]``, ``C_l = T A_l^{-1} T'``), and
    its Cholesky factor: ``L_X``, ``c_beta`` and ``sqrt(r2)`` at once (the augmented
    system of :mod:`mlm.engine.augmented` without a second factor).

    Per-level 2 x 2 symmetric matrices are stacked as (3, G) arrays of their entries
    (00, 01, 11), general ones as (4, G) (00, 01, 10, 11); every entry that is linear in
    another stack is one small matrix product with coefficients from the template, so an
    evaluation is a few dozen numpy calls whatever the number of levels (issue 16)."""

    __slots__ = ("t", "Inv", "Bst", "Cst", "L", "r2", "logdet", "LX")

    def __init__(self, problem, s, t0, t1, t2):
        X0, X1, K0, Mst = s[1], s[2], s[3], s[4]
        self.t = (t0, t1, t2)
        # A = T'M T + I: (00) t0^2 m00 + 2 t0 t1 m01 + t1^2 m11 + 1, (01) t2 (t0 m01 + t1 m11),
        # (11) t2^2 m11 + 1
        A = np.array([[t0 * t0, 2.0 * t0 * t1, t1 * t1], [0.0, t0 * t2, t1 * t2],
                      [0.0, 0.0, t2 * t2]]) @ Mst + _E_DIAG
        det = A[0] * A[2] - A[1] * A[1]
        Inv = (A[::-1] * _ADJ_SIGN) / det                          # A^{-1}: (a11, -a01, a00) / det
        self.Inv = Inv
        # B = A^{-1} T' (general) and C = T B (symmetric)
        self.Bst = np.array([[t0, 0.0, 0.0], [t1, t2, 0.0], [0.0, t0, 0.0], [0.0, t1, t2]]) @ Inv
        Cst = np.array([[t0 * t0, 0.0, 0.0], [t0 * t1, t0 * t2, 0.0],
                        [t1 * t1, 2.0 * t1 * t2, t2 * t2]]) @ Inv
        self.Cst = Cst
        CT = Cst.T
        S0 = X0 * CT[:, 0:1] + X1 * CT[:, 1:2]                      # C_l X_l, row 0
        S1 = X0 * CT[:, 1:2] + X1 * CT[:, 2:3]                      # row 1
        K = K0 - (X0.T @ S0 + X1.T @ S1)
        L, info = _dpotrf(K, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("the fixed-effects system is not positive definite")
        p = problem.p
        self.L = L
        self.r2 = float(L[p, p] * L[p, p])
        self.logdet = float(np.log(det).sum())
        self.LX = L[:p, :p]


_E_DIAG = np.array([[1.0], [0.0], [1.0]])
_ADJ_SIGN = np.array([[1.0], [-1.0], [1.0]])


def _products(rows_a, rows_b, pairs):
    """A constant (len(pairs), rows_a * rows_b) matrix summing products ``a_i b_j``:
    ``pairs`` lists, per output row, the (i, j, sign) terms."""
    out = np.zeros((len(pairs), rows_a * rows_b))
    for r, terms in enumerate(pairs):
        for i, j, sign in terms:
            out[r, i * rows_b + j] += sign
    return out


# E = I - M C from the products m_i c_j (entries 0 = 00, 1 = 01, 2 = 11), as (00, 01, 10, 11)
_E_COEF = _products(3, 3, [[(0, 0, -1), (1, 1, -1)], [(0, 1, -1), (1, 2, -1)],
                           [(1, 0, -1), (2, 1, -1)], [(1, 1, -1), (2, 2, -1)]])
_E_ONE = np.array([[1.0], [0.0], [0.0], [1.0]])
# B W (B general: 0 = 00, 1 = 01, 2 = 10, 3 = 11; W symmetric) as (00, 01, 10, 11)
_BW_COEF = _products(4, 3, [[(0, 0, 1), (1, 1, 1)], [(0, 1, 1), (1, 2, 1)],
                            [(2, 0, 1), (3, 1, 1)], [(2, 1, 1), (3, 2, 1)]])


def _aug_setup(problem):
    """``(key, X0, X1, K0, M, [X0, X1])`` for the current outcome (``with_response`` makes a new Xty)."""
    s = problem.__dict__.get("_slope_setup")
    if s is None or s[0] is not problem.Xty:
        p = problem.p
        X0 = np.column_stack([problem.ZXc[0].T, problem.Zyc[0]])     # (G, p + 1)
        X1 = np.column_stack([problem.ZXc[1].T, problem.Zyc[1]])
        K0 = np.empty((p + 1, p + 1))
        K0[:p, :p] = problem.XtX
        K0[:p, p] = K0[p, :p] = problem.Xty
        K0[p, p] = problem.yty
        Mc = problem.Mc
        Mst = np.stack([Mc[0, 0], Mc[0, 1], Mc[1, 1]])
        s = (problem.Xty, X0, X1, K0, Mst, np.stack([X0, X1]))
        problem.__dict__["_slope_setup"] = s
    return s


def _aug_factor(problem, theta):
    s = _aug_setup(problem)
    t0, t1, t2, Ts = _template(problem, theta)
    return s, _Augmented(problem, s, t0, t1, t2), Ts


def _dK_terms(s, f, w):
    """``2 N[b, a]`` with ``N = sum_l B_l W_l E_l'``, ``E_l = I - M_l C_l``: the slope of
    ``tr(G dK)`` is ``-2 N[b, a]`` in ``T[a, b]`` when ``W_l = X_l G X_l'`` (``w`` its
    stacked entries). From ``dC = E' dT B + B' dT' E`` (differentiating
    ``C = T (T'M T + I)^{-1} T'``)."""
    Mst, Cst, Bst = s[4], f.Cst, f.Bst
    G = Mst.shape[1]
    E = _E_COEF @ (Mst[:, None, :] * Cst[None, :, :]).reshape(9, G) + _E_ONE
    BW = _BW_COEF @ (Bst[:, None, :] * w[None, :, :]).reshape(12, G)
    N = BW @ E.T                          # N[i, j] = sum_l BW_i E_j
    out = np.zeros((2, 2))
    out[0, 0] = N[0, 0] + N[1, 1]         # T[0, 0]: (B W E')[0, 0]
    out[1, 0] = N[0, 2] + N[1, 3]         # T[1, 0]: (B W E')[0, 1]
    out[1, 1] = N[2, 2] + N[3, 3]         # T[1, 1]: (B W E')[1, 1]
    return 2.0 * out


def _log_a_terms(s, f):
    """``d log|A| / d T[a, b] = 2 sum_l (A_l^{-1} T'M_l)[b, a] = 2 sum_l (B_l M_l)[b, a]``."""
    P = f.Bst @ s[4].T                    # P[i, j] = sum_l B_i m_j
    out = np.zeros((2, 2))
    out[0, 0] = P[0, 0] + P[1, 1]
    out[1, 0] = P[0, 1] + P[1, 2]
    out[1, 1] = P[2, 1] + P[3, 2]
    return 2.0 * out


def _w_quad(s, G):
    """``X_l G X_l'`` per level, stacked (00, 01, 11)."""
    Xst = s[5]
    W = np.einsum("agi,bgi->abg", Xst @ G, Xst)
    return W[_W_ROWS, _W_COLS]


_W_ROWS, _W_COLS = np.array([0, 0, 1]), np.array([0, 1, 1])


def _w_outer(s, v, scale):
    """``X_l (scale v v') X_l'`` per level, stacked (00, 01, 11)."""
    z0, z1 = s[1] @ v, s[2] @ v
    sz0 = scale * z0
    return np.stack([sz0 * z0, sz0 * z1, scale * (z1 * z1)])


def _inverse_and_v(f):
    inv, info = _dpotri(f.L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular factor")
    Kinv = inv + inv.T
    Kinv.flat[::Kinv.shape[0] + 1] *= 0.5
    return Kinv, Kinv[:, -1].copy()


def _collect(problem, G2):
    from mlm.engine.gradient import _collect_primary

    return _collect_primary(problem, G2)


def deviance_and_gradient(problem, theta):
    """``(deviance, gradient)`` at ``theta``; ``(inf, None)`` where the fixed-effects block
    is not positive definite.

    With ``K`` the augmented fixed-effects system (:class:`_Augmented`), ``v = K^{-1} e_y``
    (``v_y = 1 / r2``): ``d log|K| = tr(K^{-1} dK)`` and ``d log r2 = r2 v'dK v``, so the
    deviance ``log|A| + [REML] log|R_X'R_X| + m log r2`` (``log|R_X'R_X| = log|K| - log
    r2``) has the slope ``d log|A| + tr(G dK)`` with ``G = [REML] K^{-1} + (m - [REML]) r2
    v v'``.
    """
    try:
        s, f, _ = _aug_factor(problem, theta)
    except np.linalg.LinAlgError:
        return np.inf, None
    dev = float(problem._deviance_from(f.r2, f.logdet, f.LX))
    if not np.isfinite(dev):
        return dev, None
    try:
        Kinv, v = _inverse_and_v(f)
    except np.linalg.LinAlgError:
        return dev, None
    m = problem.n - problem.p if problem.reml else problem.n
    w = _w_outer(s, v, (m - 1.0 if problem.reml else m) * f.r2)
    if problem.reml:
        w += _w_quad(s, Kinv)
    return dev, _collect(problem, _log_a_terms(s, f) - _dK_terms(s, f, w))


def grad_pieces(problem, theta):
    """:func:`mlm.engine.varpar._grad_pieces` for this layout: ``(R_X'R_X)^{-1}``, r2,
    ``d f1 / d theta`` and ``d r2 / d theta`` from one factorisation (``G_f1 = [REML]
    K^{-1} - r2 v v'``, ``G_r2 = r2^2 v v'``)."""
    s, f, _ = _aug_factor(problem, theta)
    Kinv, v = _inverse_and_v(f)
    g_f1 = _log_a_terms(s, f)
    if problem.reml:
        g_f1 = g_f1 - _dK_terms(s, f, _w_outer(s, v, -f.r2) + _w_quad(s, Kinv))
    g_r2 = -_dK_terms(s, f, _w_outer(s, v, f.r2 * f.r2))
    return _rx_inverse(f.LX), f.r2, _collect(problem, g_f1), _collect(problem, g_r2)


def solve(problem, theta, cond_var=False):
    """:meth:`mlm.engine.pls.PLSProblem.solve` for this layout: the same estimates from the
    augmented factor (``beta`` from ``L_X' beta = c_beta``; ``b_l = C_l (Z'y - Z'X beta)_l``,
    since ``u_l = A_l^{-1} T'(Z'y - Z'X beta)_l``; postVar ``sigma^2 C_l``)."""
    from mlm.engine.pls import PLSSolution

    theta = np.asarray(theta, dtype=float)
    s, f, Ts = _aug_factor(problem, theta)
    p = problem.p
    dev = float(problem._deviance_from(f.r2, f.logdet, f.LX))
    LX = np.ascontiguousarray(f.LX)
    beta = _tri(LX, np.ascontiguousarray(f.L[p, :p]), lower=True, trans=True)
    sigma2 = f.r2 / (problem.n - p if problem.reml else problem.n)
    w = problem.Zyc - beta @ problem.ZXc                          # (2, G)
    c00, c01, c11 = f.Cst
    b1 = np.column_stack([c00 * w[0] + c01 * w[1], c01 * w[0] + c11 * w[1]])   # (G, 2)
    cv1 = None
    if cond_var:
        cv1 = np.empty((problem.G1, 2, 2))
        cv1[:, 0, 0] = c00
        cv1[:, 0, 1] = cv1[:, 1, 0] = c01
        cv1[:, 1, 1] = c11
        cv1 *= sigma2
    b = [None] * len(Ts)
    cv = [None] * len(Ts) if cond_var else None
    col = 0
    for i in problem.primary:
        k = problem.ks[i]
        b[i] = b1[:, col:col + k]
        if cond_var:
            cv[i] = cv1[:, col:col + k, col:col + k]
        col += k
    return PLSSolution(theta=theta, beta=beta + problem.beta_shift, sigma2=float(sigma2),
                       deviance=dev, vcov_beta=sigma2 * _rx_inverse(LX), b=b, cond_var=cv,
                       templates=Ts)
