"""The exact gradient of lme4's profiled deviance with respect to theta.

With ``V = I + Z Lambda Lambda' Z'`` (the marginal covariance over ``sigma^2``), the
profiled criteria of Bates et al. (2015, JSS 67(1), sec. 3.4-3.5) are, up to constants,

* ML:   ``log|V| + n log r2``
* REML: ``log|V| + log|X'V^{-1}X| + (n - p) log r2``

with ``r2 = y'Py`` the penalised residual sum of squares (``P = V^{-1}`` less its
projection on X for REML; ``Py = r``, the PLS residual). Differentiating with
``dV = Z (D Lambda' + Lambda D') Z'``, where ``D = dLambda/dtheta_i`` holds the unit
matrix ``E_ab`` of the template entry ``(a, b)`` at every level of its term, gives

    d dev / d theta_i = 2 tr(Lambda'Z'P~Z D) - 2 c s'D u,      c = m / r2

(``m = n - p`` for REML, ``n`` for ML; ``P~ = V^{-1}`` for ML, ``P`` for REML), with ``u``
the spherical conditional modes and ``s = Z'r``: the second term is ``dr2`` by the
envelope theorem, since ``u`` and ``beta`` minimise the penalised sum of squares.
Without ever forming ``Lambda^{-1}`` (singular on the boundary), ``Lambda'Z'V^{-1} =
A^{-1} Lambda'Z'`` with ``A = Lambda'Z'Z Lambda + I`` gives

    Lambda'Z'P~Z = Om Lambda'Z'Z - [REML] Y Q X'Z,   Om = A^{-1} + [REML] Y Q Y'

where ``Y = A^{-1} Lambda'Z'X = L^{-T} R_ZX`` and ``Q = (R_X'R_X)^{-1}`` (``Om`` is the
``u``-block of the inverse of the whole PLS system). Because ``D`` is block-diagonal by
level, only the diagonal blocks of that product enter:

    d dev / d T_t[a, b] = 2 sum_levels (Phi_l[b, a] - c s_l[a] u_l[b]).

The per-level path evaluates this on the flat arrays of :mod:`mlm.engine.kernels`; the
dense path on the whole (small) system. The cost is about one more factorisation,
against ``n_theta`` for forward differences.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from mlm.engine import kernels as kern
from mlm.engine.pls import _rx_inverse, _tri

__all__ = ["gradient_from_factor"]


def _weight(problem, r2):
    m = problem.n - problem.p if problem.reml else problem.n
    return m / r2


def primary_gradient(problem, T1, L1c, RZX1c, cu1c, LX, cbeta, r2, pieces=False):
    """Gradient for a model whose random effects all belong to one grouping factor.

    Arrays are component-major with levels last (:mod:`mlm.engine.kernels`): ``L1c``
    (k, k, G), ``RZX1c`` (k, p, G), ``cu1c`` (k, G). ``pieces``: see
    :func:`gradient_from_factor`.
    """
    beta = _tri(LX, cbeta, lower=True, trans=True)
    u = kern.bwd(L1c, cu1c - beta @ RZX1c)                       # (k, G)
    k = u.shape[0]
    b = T1 @ u                                                    # Lambda u, per level
    Mb = np.einsum("adg,dg->ag", problem.Mc, b)
    s = problem.Zyc - beta @ problem.ZXc - Mb                     # Z'r per level
    c = _weight(problem, r2)
    Linv = kern.inv_lower(L1c)
    TM = kern.left_t(T1, problem.Mc)                              # T' M_l
    # sum_l (A_l^{-1} T'M_l), with A_l^{-1} = L_l^{-T} L_l^{-1}
    LinvTM = np.einsum("mcg,cbg->mbg", Linv, TM)
    phi = np.einsum("mag,mbg->ab", Linv, LinvTM)
    if problem.reml:
        Q = _rx_inverse(LX)
        Y = kern.bwd(L1c, RZX1c)                                  # (k, p, G)
        YQ = np.matmul(Q, Y)                                      # Q symmetric
        TMY = np.einsum("cbg,cpg->bpg", TM, Y)                    # (Y_l' T'M_l)' per level
        phi += YQ.reshape(k, -1) @ TMY.reshape(k, -1).T
        phi -= YQ.reshape(k, -1) @ problem.ZXc.reshape(k, -1).T
    if pieces:
        return _collect_primary(problem, 2.0 * phi.T), _collect_primary(problem, -2.0 * (s @ u.T))
    Gsum = 2.0 * (phi.T - c * (s @ u.T))
    return _collect_primary(problem, Gsum)


def _collect_primary(problem, Gsum):
    out = np.empty(problem.n_theta)
    off = 0
    for i in problem.primary:
        for j, (a, b) in enumerate(problem._idx[i]):
            out[problem._slices[i].start + j] = Gsum[off + a, off + b]
        off += problem.ks[i]
    return out


def dense_gradient(problem, lam, L, RZX, cu, LX, cbeta, r2, pieces=False):
    """Gradient on the whole system factored densely (small q).

    ``Om = A^{-1}`` comes from LAPACK's ``potri`` on the factor; of ``Phi = Om Lambda'Z'Z``
    only the entries at Lambda's nonzeros are formed, each a row-column product: O(q^2)
    beyond the inverse instead of a q^3 product. With one-column terms only (Lambda
    diagonal, its nonzeros the diagonal in order) those entries are the column sums of
    ``Om * Z'Z`` weighted by Lambda, without gathering rows (issue 16: a fit of
    Penicillin or Pastes is a dozen of these).
    """
    beta = _tri(LX, cbeta, lower=True, trans=True)
    u = _tri(L, cu - RZX @ beta, lower=True, trans=True)
    diag = lam.ndim == 1
    b = lam * u if diag else lam @ u
    s = problem.Zty - problem.ZtX @ beta - problem.ZtZ @ b
    c = _weight(problem, r2)
    Om = _sym_inverse(L)
    if problem.reml:
        Q = _rx_inverse(LX)
        Y = _tri(L, RZX, lower=True, trans=True)
        YQ = Y @ Q
        Om += YQ @ Y.T
    if diag:  # rows = cols = every position in order
        phi = lam @ (Om * problem.ZtZ)
        if problem.reml:
            phi -= np.einsum("ip,ip->i", YQ, problem.ZtX)
        su = s * u
    else:
        rows, cols = problem._lam_rows, problem._lam_cols
        lzz = lam.T @ problem.ZtZ
        phi = np.einsum("ij,ji->i", Om[cols], lzz[:, rows])
        if problem.reml:
            phi -= np.einsum("ip,ip->i", YQ[cols], problem.ZtX[rows])
        su = s[rows] * u[cols]
    src, k = problem._lam_src, problem.n_theta
    if pieces:
        return (np.bincount(src, weights=2.0 * phi, minlength=k),
                np.bincount(src, weights=-2.0 * su, minlength=k))
    return np.bincount(src, weights=2.0 * (phi - c * su), minlength=k)


def _sym_inverse(L):
    """``(L L')^{-1}`` from the Cholesky factor (LAPACK potri), both triangles filled.
    ``L`` has zeros above its diagonal (:func:`mlm.engine.pls._chol`), which potri
    leaves in place, so the full inverse is the lower triangle plus its transpose less
    the doubled diagonal (two ufunc calls instead of two ``np.tril``)."""
    inv, info = sla.lapack.dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular factor")
    Om = inv + inv.T
    Om.flat[::Om.shape[0] + 1] *= 0.5
    return Om


def gradient_from_factor(problem, parts, pieces=False):
    """The gradient at the theta ``parts`` (``PLSProblem._factor``'s output) was made at,
    or None when this layout has no analytic gradient (the caller then differences).

    ``pieces=True`` returns its two terms instead, ``(d f1, d r2)``: the derivatives of
    ``f1 = log|A|`` (plus ``log|R_X'R_X|`` under REML), ``2 tr(...)`` above, and of the
    penalised residual sum of squares ``r2``, ``-2 s'D u`` (the envelope theorem); the
    gradient is ``d f1 + (m / r2) d r2``. Satterthwaite's df need them apart
    (:mod:`mlm.engine.varpar`).
    """
    Ts, T1, L1, RZX1, cu1, LX, cbeta, r2, logdet, extra = parts
    if extra == "dense":
        return dense_gradient(problem, Ts, L1, RZX1, cu1, LX, cbeta, r2, pieces)
    if extra is None:
        return primary_gradient(problem, T1, kern.from_batch(L1), kern.from_batch(RZX1),
                                np.ascontiguousarray(cu1.T), LX, cbeta, r2, pieces)
    if problem.rem.gradient_ready:
        from mlm.engine.gradient_rem import remainder_gradient

        return remainder_gradient(problem, parts, pieces)
    return None
