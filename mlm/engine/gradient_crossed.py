"""The exact gradient when the random effects outside the primary factor are crossed with it.

Same formula as :mod:`mlm.engine.gradient` (read it first):
``d dev / d T_t[a, b] = 2 sum_levels (Phi_jj[b, a] - c s_j[a] u_j[b])`` with
``Phi = Om Lambda'Z'Z - [REML] Y Q X'Z``, ``Om = A^{-1} + [REML] Y Q Y'``. With the
factor in two blocks, ``L = [[L1, 0], [W', L2]]``, ``W = blockdiag(C_l) N Lambda2``,
``C_l = L1_l^{-1} T1'``, ``N = Z1'Z2``, ``S = L2 L2'`` (:mod:`mlm.engine.crossed`), the
inverse is ``A^{-1}_22 = S^{-1}``, ``A^{-1}_12 = -L1^{-T} W S^{-1}``,
``A^{-1}_11 = L1^{-T} (I + W S^{-1} W') L1^{-1}``, and the diagonal blocks of ``Phi``
reduce to (``H_l = A11_l^{-1} T1'``, ``K_l = T1 H_l``, ``Om2 = Lambda2 S^{-1} Lambda2'``,
``Z_l = N_l Om2 N_l'``; ``K_l = C_l'C_l``, so ``Z2'Z2 - N'KN`` comes from the factor)

* primary level ``l``: ``A11_l^{-1} T1'M_l + H_l Z_l (H_l' T1'M_l - I)``
  [+ REML ``Y1_l Q V1_l'``, ``V1_l = M_l T1 Y1_l + N_l Lambda2 Y2 - (Z'X)_l``];
* remainder: the diagonal blocks of ``S^{-1} Lambda2' (Z2'Z2 - N' K N)``
  [+ REML those of ``Y2 Q V2'``, ``V2 = N' T1 Y1 + Z2'Z2 Lambda2 Y2 - Z2'X``].

``S^{-1}`` enters only through ``Z_l`` and the remainder's diagonal blocks, both on the
pattern of ``S`` (entries outside it meet zeros of ``N'N`` and ``Z2'Z2``), so sparse
designs use the pattern's values only: one LAPACK ``potri``, two fixed sparse products
and a few passes over the pattern per evaluation (issue 16). No ``Lambda^{-1}`` is
formed, so the gradient is exact on the boundary too.
"""

from __future__ import annotations

import numpy as np

from mlm.engine import kernels as kern
from mlm.engine.crossed import symmetric
from mlm.engine.pls import _rx_inverse, _tri

__all__ = ["crossed_gradient", "crossed_inner_blocks"]


def _per_level(A, v):
    """``A_l v_l`` for every level: A (k, k, G), v (k, G) or (k, m, G)."""
    if A.shape[0] == 1:
        return A[0, 0] * v
    if v.ndim == 2:
        return np.einsum("acg,cg->ag", A, v)
    return np.einsum("acg,cmg->amg", A, v)


def _t_per_level(A, B):
    """``A_l' B_l`` for every level: A (k, k, G), B (k, m, G)."""
    if A.shape[0] == 1:
        return A[0, 0] * B
    return np.einsum("cag,cbg->abg", A, B)


def _sum_outer(A, B):
    """``sum_l A_l B_l'`` for A (k, m, G), B (k', m, G): (k, k')."""
    if A.shape[0] == 1 and B.shape[0] == 1:
        return np.array([[np.vdot(A, B)]])
    return np.einsum("apg,bpg->ab", A, B)


def _component_major(M, G1, k1):
    """(G1 * k1,) or (G1 * k1, m) level-major rows -> (k1, G1) or (k1, m, G1)."""
    if M.ndim == 1:
        return M.reshape(G1, k1).T
    return M.reshape(G1, k1, -1).transpose(1, 2, 0)


def _level_major(A):
    """(k1, G1) or (k1, m, G1) -> level-major rows (G1 * k1,) or (G1 * k1, m)."""
    if A.ndim == 2:
        return A.T.ravel()
    return A.transpose(2, 0, 1).reshape(-1, A.shape[1])


def crossed_inner_blocks(problem, W, L2, T2):
    """``I + W_l S^{-1} W_l'`` per primary level as a (G1, k1, k1) batch, and ``S^{-1}`` (full
    dense for a crossed remainder, by blocks for an enclosing one), for lme4's postVar."""
    rem = problem.rem
    cc = rem.coupling
    Sinv = cc.inverse(L2)
    Om, _ = cc.omega(rem, Sinv, rem.diagonal(T2), T2)
    Z = cc.level_quad(Om)
    inner = np.einsum("acg,cdg,bdg->abg", W.C, Z, W.C)
    for a in range(problem.k1):
        inner[a, a] += 1.0
    return kern.to_batch(inner), (Sinv if Sinv.ndim == 3 else symmetric(Sinv))


def crossed_gradient(problem, parts, pieces=False):
    """The gradient at the theta of ``parts`` (``PLSProblem._factor`` with a crossed or
    enclosing remainder); with ``pieces``, its two terms ``(d f1, d r2)``
    (:func:`mlm.engine.gradient.gradient_from_factor`)."""
    rem = problem.rem
    cc = rem.coupling
    Ts, T1, L1, RZX1, cu1, LX, cbeta, r2, logdet, (W, L2, RZX2, cu2, T2) = parts
    k1, G1 = problem.k1, problem.G1
    L1c, RZX1c, cu1c, C = W.L1c, W.RZX1c, W.cu1c, W.C
    lam = rem.diagonal(T2)
    beta = _tri(LX, cbeta, lower=True, trans=True)

    # spherical conditional modes u, b = Lambda u, and s = Z'r
    u2 = cc.solve(L2, cu2 - RZX2 @ beta, trans=True)
    b2 = rem.lam(T2, u2[:, None])[:, 0]
    Nb2 = _component_major(cc.n_dot(b2), G1, k1)
    u1 = kern.bwd(L1c, cu1c - beta @ RZX1c - _per_level(C, Nb2))
    b1 = T1 @ u1
    s1 = problem.Zyc - beta @ problem.ZXc - _per_level(problem.Mc, b1) - Nb2
    s2 = rem.Z2ty - rem.Z2tX @ beta - cc.nt_dot(_level_major(b1)) - cc.z2_dot(b2)

    # per-level pieces of A11^{-1}
    Linv = kern.inv_lower(L1c)
    TM = kern.left_t(T1, problem.Mc)                  # T1' M_l
    H = _t_per_level(Linv, C)                          # A11_l^{-1} T1'
    Ainv_TM = _t_per_level(Linv, kern.fwd(L1c, TM))

    if problem.reml:
        Y2 = cc.solve(L2, RZX2, trans=True)                               # (q2, p)
        LY2 = rem.lam(T2, Y2)
    Om, Sinv = cc.omega(rem, cc.inverse(L2), lam, T2)
    Z = cc.level_quad(Om)
    HZ = _per_level(H, Z)
    # sum_l A11^{-1} T1'M_l + H_l Z_l (H_l' T1'M_l - I)
    phi1 = (Ainv_TM.sum(axis=2) - HZ.sum(axis=2)
            + _sum_outer(HZ, np.swapaxes(_t_per_level(H, TM), 0, 1)))
    # Z2'Z2 - N'KN is the factor's Z2'Z2 - N'DN: K_l = T1 A11_l^{-1} T1' = C_l'C_l = D_l
    blocks = cc.remainder_blocks(rem, Sinv, W.X, lam, T2)

    if problem.reml:
        Q = _rx_inverse(LX)
        NY2 = _component_major(cc.n_dot(LY2), G1, k1)                    # (k1, p, G1)
        Y1 = kern.bwd(L1c, RZX1c - _per_level(C, NY2))
        TY1 = kern.left_t(T1.T, Y1)
        YQ1 = np.matmul(Q, Y1)
        phi1 += _sum_outer(YQ1, _per_level(problem.Mc, TY1) + NY2 - problem.ZXc)
        V2 = cc.nt_dot(_level_major(TY1)) + cc.z2_dot(LY2) - rem.Z2tX
        YQ2 = Y2 @ Q
        for t in range(len(rem.ks)):
            idx = rem.block_index(t)
            blocks[t] = blocks[t] + np.einsum("gap,gbp->gab", YQ2[idx], V2[idx])

    # d f1 / d theta (log-determinants) and d r2 / d theta; the deviance's slope is
    # df1 + (m / r2) dr2
    from mlm.engine.gradient import _collect_primary

    m = problem.n - problem.p if problem.reml else problem.n
    out = _collect_primary(problem, 2.0 * phi1.T)
    out_r2 = _collect_primary(problem, -2.0 * (s1 @ u1.T))
    for t, i in enumerate(problem.rest):
        idx = rem.block_index(t)
        G_f1 = 2.0 * blocks[t].sum(axis=0).T
        G_r2 = -2.0 * np.einsum("ga,gb->ab", s2[idx], u2[idx])
        for j, (a, b) in enumerate(problem._idx[i]):
            out[problem._slices[i].start + j] = G_f1[a, b]
            out_r2[problem._slices[i].start + j] = G_r2[a, b]
    return (out, out_r2) if pieces else out + (m / r2) * out_r2
