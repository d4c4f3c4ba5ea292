"""The deviance and its gradient through one augmented matrix, for one-column terms.

When every random term has one column (``(1 | a) + (1 | b)``, ``(1 | a/b)``: Penicillin,
Pastes, ScotsSec) and the factors other than the primary one hold few levels, the
primary factor is eliminated in closed form and everything else fits in one small dense
matrix. With ``t`` the primary term's theta, ``m_l``, ``zx_l``, ``zy_l`` its per-level sums,
``a_l = t^2 m_l + 1`` and ``D_l = t^2 / a_l``, the Schur complement of the primary block
(:mod:`mlm.engine.crossed`: ``D_l = C_l'C_l``) is that of the Gram matrix

    K = K0 - B' diag(D) B,   K0 = [Z2 X y]'[Z2 X y],   B = [N | ZX1 | Zy1]  (rows: levels),

``N = Z1'Z2``; scaled by ``Lambda~ = diag(lambda2, 1, ..., 1)`` and with ``I`` added to its
remainder block it is the augmented matrix

    M = Lambda~ K Lambda~ + J = [[S, R_ZX2' .., ..], [.., R_X'R_X + .., ..], [.., .., ..]]

whose Cholesky factor holds ``L2`` (``S = L2 L2'``), ``R_ZX2``, ``c_u2``, ``L_X``, ``c_beta``
and ``sqrt(r2)`` (the last diagonal entry) at once (Bates et al. 2015, JSS 67(1),
sec. 3.3's blocked factor, the response appended as in lme4's ``RX`` and ``cbeta``).
So ``log|A| = sum log a_l + log|S|`` and the deviance come from one ``B' diag(D) B``
product and one LAPACK ``potrf`` of size ``q2 + p + 1``.

The gradient differentiates through ``M``: with ``v = M^{-1} e_y`` (``v_y = 1 / r2``),
``d log|M| = tr(M^{-1} dM)`` and ``d log r2 = r2 v'dM v``, so every term of the deviance
is ``tr(G dM)`` for a symmetric ``G`` (REML: ``log|S| + log|R_X'R_X| = log|M| - log r2``;
ML: ``log|S|``, ``G = S^{-1}``). ``dM / d lambda_j = E_jj K Lambda~ + Lambda~ K E_jj`` and
``dM / dt = -Lambda~ B' diag(2 t / a^2) B Lambda~``, plus ``sum 2 t m_l / a_l`` from
``log|A11|``. One ``potri`` of the same small matrix and one more ``B' diag(.) B``
product; no ``Lambda^{-1}``, so exact on the boundary as well. It replaces a dozen
factorisations and solves of the blocked path per evaluation (ScotsSec: 148 primary
schools, 19 secondary; issue 16). Estimates (:meth:`PLSProblem.solve`) still come from
the blocked path, which also gives the conditional modes and their variances.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from mlm.engine.pls import _rx_inverse

__all__ = ["applies", "deviance_and_gradient", "grad_pieces", "penalised_rss"]

#: Largest augmented matrix (``q2 + p + 1``) and largest ``G1 (q2 + p + 1)^2`` (the
#: multiply-adds of ``B' diag(D) B``) for which this path is used: above them the blocked
#: path's sparse products cost less.
MAX_M = 128
MAX_WORK = 4_000_000

_dpotrf = sla.get_lapack_funcs("potrf", (np.empty(1),))
_dpotri = sla.get_lapack_funcs("potri", (np.empty(1),))


def applies(problem) -> bool:
    """Whether ``problem`` has one-column terms only, a factor beside the primary one and
    a small augmented matrix (see :data:`MAX_M`, :data:`MAX_WORK`)."""
    if not problem.q2 or any(k != 1 for k in problem.ks) or len(problem.primary) != 1:
        return False
    if not problem.has_gradient:
        return False
    m = problem.q2 + problem.p + 1
    return m <= MAX_M and problem.G1 * m * m <= MAX_WORK


class _Setup:
    """The fixed arrays of the augmented system (``K0``, ``B``), for one outcome."""

    def __init__(self, problem):
        q2, p = problem.q2, problem.p
        if problem.dense:
            rcols = np.concatenate([np.arange(problem.offsets[i], problem.offsets[i + 1])
                                    for i in problem.rest])
            i1 = problem.primary[0]
            pcols = np.arange(problem.offsets[i1], problem.offsets[i1 + 1])
            Z2tZ2 = problem.ZtZ[np.ix_(rcols, rcols)]
            N = problem.ZtZ[np.ix_(pcols, rcols)]
            Z2tX, Z2ty = problem.ZtX[rcols], problem.Zty[rcols]
        else:
            rem = problem.rem
            Z2s = rem._Z2s
            Z1s = problem._sparse_z(problem._Z1, problem._codes1, problem.G1)
            N = (Z1s.T @ Z2s).toarray()
            Z2tZ2 = (Z2s.T @ Z2s).toarray()
            Z2tX, Z2ty = rem.Z2tX, rem.Z2ty
        m = q2 + p + 1
        K0 = np.empty((m, m))
        K0[:q2, :q2] = Z2tZ2
        K0[:q2, q2:q2 + p] = Z2tX
        K0[q2:q2 + p, :q2] = Z2tX.T
        K0[:q2, -1] = K0[-1, :q2] = Z2ty
        K0[q2:q2 + p, q2:q2 + p] = problem.XtX
        K0[q2:q2 + p, -1] = K0[-1, q2:q2 + p] = problem.Xty
        K0[-1, -1] = problem.yty
        self.K0 = K0
        self.B = np.column_stack([N, problem.ZXc[0].T, problem.Zyc[0]])   # (G1, m)
        self.m1 = problem.Mc[0, 0]
        self.q2, self.p, self.m = q2, p, m
        self.it = problem._slices[problem.primary[0]].start
        self.src = np.concatenate([np.full(problem.n_levels[i], problem._slices[i].start)
                                   for i in problem.rest])
        self.diag_q2 = np.arange(q2) * (m + 1)
        self.key = problem.Xty   # with_response gives a new array: set up again


def _setup(problem):
    s = problem.__dict__.get("_aug_setup")
    if s is None or s.key is not problem.Xty:
        s = _Setup(problem)
        problem.__dict__["_aug_setup"] = s
    return s


class _Factor:
    __slots__ = ("t", "a", "lt", "K", "L", "r2", "logdet", "LX")

    def __init__(self, problem, s, theta):
        t = float(theta[s.it])
        self.t = t
        a = t * t * s.m1 + 1.0
        self.a = a
        D = (t * t) / a
        K = s.K0 - s.B.T @ (s.B * D[:, None])
        lt = np.ones(s.m)
        lt[:s.q2] = theta[s.src]
        self.lt, self.K = lt, K
        M = K * np.outer(lt, lt)
        M.flat[s.diag_q2] += 1.0
        L, info = _dpotrf(M, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("the augmented matrix is not positive definite")
        self.L = L
        d = np.diagonal(L)
        self.r2 = float(d[-1] * d[-1])
        self.logdet = float(np.log(a).sum()) + 2.0 * float(np.log(d[:s.q2]).sum())
        self.LX = L[s.q2:s.q2 + s.p, s.q2:s.q2 + s.p]


def _sym(inv):
    out = inv + inv.T
    out.flat[::out.shape[0] + 1] *= 0.5
    return out


def _from_g(s, f, Gs):
    """``tr(G dM / d theta)`` for every ``G`` in ``Gs``: (len(Gs), n_theta) less the
    primary's ``log|A11|`` term."""
    t, a = f.t, f.a
    dD = (2.0 * t) / (a * a)
    BdB = s.B.T @ (s.B * dD[:, None])
    KL = f.K[:s.q2] * f.lt
    LL = np.outer(f.lt, f.lt)
    out = []
    for G in Gs:
        g_lam = 2.0 * np.einsum("jk,jk->j", KL, G[:s.q2])
        g_t = -float(np.vdot(G * LL, BdB))
        out.append((g_lam, g_t))
    return out


def _collect(problem, s, g_lam, g_t):
    g = np.bincount(s.src, weights=g_lam, minlength=problem.n_theta)
    g[s.it] += g_t
    return g


def _gradient_matrices(problem, s, f):
    """``(G_f1, G_r2)``: ``d f1 = tr(G_f1 dM)`` (``f1 = log|S|`` [+ ``log|R_X'R_X|``]) and
    ``d r2 = tr(G_r2 dM)``."""
    inv, info = _dpotri(f.L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular augmented factor")
    Minv = _sym(inv)
    v = Minv[:, -1]
    vv = np.outer(v, v)
    if problem.reml:
        G_f1 = Minv - f.r2 * vv
    else:
        q2 = s.q2
        Sinv, info = _dpotri(f.L[:q2, :q2], lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("singular augmented factor")
        G_f1 = np.zeros_like(Minv)
        G_f1[:q2, :q2] = _sym(Sinv)
    return G_f1, (f.r2 * f.r2) * vv


def _log_a_slope(s, f):
    return 2.0 * f.t * float(np.sum(s.m1 / f.a))


def deviance_and_gradient(problem, theta):
    """``(deviance, gradient)`` at ``theta``; ``(inf, None)`` where the system is not
    positive definite."""
    s = _setup(problem)
    try:
        f = _Factor(problem, s, theta)
    except np.linalg.LinAlgError:
        return np.inf, None
    dev = float(problem._deviance_from(f.r2, f.logdet, f.LX))
    if not np.isfinite(dev):
        return dev, None
    try:
        G_f1, G_r2 = _gradient_matrices(problem, s, f)
    except np.linalg.LinAlgError:
        return dev, None
    c = (problem.n - problem.p if problem.reml else problem.n) / f.r2
    ((g_lam, g_t),) = _from_g(s, f, [G_f1 + c * G_r2])
    return dev, _collect(problem, s, g_lam, g_t + _log_a_slope(s, f))


def penalised_rss(problem, theta):
    """``r2`` at ``theta`` (the start values' joint residual variance, :mod:`mlm.engine.start`)."""
    return _Factor(problem, _setup(problem), np.asarray(theta, dtype=float)).r2


def grad_pieces(problem, theta):
    """:func:`mlm.engine.varpar._grad_pieces` for this layout: ``(R_X'R_X)^{-1}``, r2,
    ``d f1 / d theta`` and ``d r2 / d theta`` from one factorisation."""
    s = _setup(problem)
    f = _Factor(problem, s, theta)
    G_f1, G_r2 = _gradient_matrices(problem, s, f)
    (l1, t1), (l2, t2) = _from_g(s, f, [G_f1, G_r2])
    return (_rx_inverse(f.LX), f.r2, _collect(problem, s, l1, t1 + _log_a_slope(s, f)),
            _collect(problem, s, l2, t2))
