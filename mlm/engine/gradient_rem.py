"""The exact gradient when the random effects outside the primary factor are nested above it.

Same formula as :mod:`mlm.engine.gradient` (read it first):
``d dev / d T_t[a, b] = 2 sum_levels (Phi_jj[b, a] - c s_j[a] u_j[b])`` with
``Phi = Om Lambda'Z'Z - [REML] Y Q X'Z``, ``Om = A^{-1} + [REML] Y Q Y'``. With the
Cholesky factor in two blocks, ``L = [[L1, 0], [W', L2]]`` (``L1`` block-diagonal by
primary level, ``S = L2 L2'`` the Schur complement of the other factors),

    A^{-1}_22 = S^{-1},   A^{-1}_12 = -L1^{-T} W S^{-1},
    A^{-1}_11 = L1^{-T} (I + W S^{-1} W') L1^{-1}   (only its diagonal blocks are needed).

Only the diagonal blocks of ``Phi`` enter, and ``Z'Z`` couples a primary level ``l`` with
a remainder column ``j`` only where ``N = Z1'Z2`` is nonzero, so ``A^{-1}_12`` is needed
only on that pattern (a sparse inverse subset, as in Takahashi's recursions): for level
``l`` it takes ``S^{-1}`` restricted to the columns that level touches. The pattern is
held ragged: entry ``e`` is a pair (level ``lev[e]``, column ``col[e]``); sums over a level
or over a column are sparse aggregations. No ``Lambda^{-1}`` is formed, so the gradient
is exact on the boundary too.

This module covers nested remainders of several factors (any template size); crossed
ones and a single enclosing factor are :mod:`mlm.engine.gradient_crossed`'s, to which
:func:`remainder_gradient` hands them.
"""

from __future__ import annotations

import numpy as np

from mlm.engine import kernels as kern
from mlm.engine.crossed import inverse_lower, symmetric
from mlm.engine.pls import _rx_inverse, _tri

__all__ = ["RaggedCoupling", "remainder_gradient"]


class RaggedCoupling:
    """``N = Z1'Z2`` of a nested remainder on its pattern, with the aggregations the gradient needs."""

    def __init__(self, rem):
        G1, k1, q2 = rem.G1, rem.k1, rem.q2
        self.K = rem.K2
        self.lev = np.repeat(np.arange(G1), self.K)
        self.col = rem.colidx.ravel()
        self.Nv = np.stack([rem.Zc[:, i, :].ravel() for i in range(k1)])
        self.G1, self.q2 = G1, q2

    # sums by np.bincount: cheaper than a sparse product's dispatch for the small patterns
    def by_level(self, x):
        """Sum of ``x`` (E,) or (E, m) over the entries of each primary level."""
        return _sum_by(self.lev, x, self.G1)

    def by_col(self, x):
        """Sum of ``x`` (E,) over the entries of each remainder column."""
        return _sum_by(self.col, x, self.q2)

    def ragged(self, A3):
        """(G1, k1, K) array on the pattern -> (k1, E)."""
        return np.stack([A3[:, i, :].ravel() for i in range(A3.shape[1])])


def _sum_by(index, x, size):
    if x.ndim == 1:
        return np.bincount(index, weights=x, minlength=size)
    return np.stack([np.bincount(index, weights=x[:, j], minlength=size) for j in range(x.shape[1])],
                    axis=1)


def _l2_solve(L2, B, trans):
    """Solve ``L2 X = B`` (or ``L2' X = B``) for B of shape (q2, m)."""
    return _tri(L2, B, lower=True, trans=trans)


def _s_inverse(L2):
    """S^{-1}, dense (q2, q2), both triangles."""
    return symmetric(inverse_lower(L2))


def _ws(rem, rc, W, Wv, Sinv):
    """``W S^{-1}`` on the pattern, (k1, E)."""
    idx = rem.colidx
    return rc.ragged(np.einsum("lik,lkm->lim", W, Sinv[idx[:, :, None], idx[:, None, :]]))


def _coupling(rem, rc, T1, L1c, W, T2):
    """``N Lambda2`` and ``W`` on the pattern, each (k1, E)."""
    k1, G1 = rem.k1, rem.G1
    eye = np.broadcast_to(np.eye(k1), (G1, k1, k1))
    return rc.ragged(rem.W(eye, T2)), rc.ragged(W)


def _inner(rc, WS, Wv):
    """``I + W_l S^{-1} W_l'`` for every primary level, (k1, k1, G1)."""
    k1 = Wv.shape[0]
    out = np.empty((k1, k1, rc.G1))
    for i in range(k1):
        for j in range(k1):
            out[i, j] = rc.by_level(WS[i] * Wv[j])
        out[i, i] += 1.0
    return out


def inner_blocks(problem, T1, L1, W, L2, T2):
    """For lme4's postVar with a dense remainder factor: ``I + W_l S^{-1} W_l'`` per primary
    level as a (G1, k1, k1) batch, and ``S^{-1}``; the sparse-inverse route above instead of
    ``L2^{-1} W'`` (a dense (q2, G1 k1) solve: 3.8e9 flops on InstEval)."""
    rem = problem.rem
    rc = rem.ragged_coupling()
    L1c = kern.from_batch(L1)
    _, Wv = _coupling(rem, rc, T1, L1c, W, T2)
    Sinv = _s_inverse(L2)
    return kern.to_batch(_inner(rc, _ws(rem, rc, W, Wv, Sinv), Wv)), Sinv


def remainder_gradient(problem, parts, pieces=False):
    """The gradient at the theta of ``parts`` (``PLSProblem._factor`` with a remainder);
    with ``pieces``, its two terms ``(d f1, d r2)`` (:func:`mlm.engine.gradient.gradient_from_factor`)."""
    rem = problem.rem
    if rem.coupled:  # crossed, or one enclosing factor
        from mlm.engine.gradient_crossed import crossed_gradient

        return crossed_gradient(problem, parts, pieces)
    rc = rem.ragged_coupling()
    Ts, T1, L1, RZX1, cu1, LX, cbeta, r2, logdet, (W, L2, RZX2, cu2, T2) = parts
    k1, p = problem.k1, problem.p
    L1c, RZX1c, cu1c = kern.from_batch(L1), kern.from_batch(RZX1), np.ascontiguousarray(cu1.T)
    beta = _tri(LX, cbeta, lower=True, trans=True)
    lev, col, Nv = rc.lev, rc.col, rc.Nv
    lam2 = rem.diagonal(T2)

    NL, Wv = _coupling(rem, rc, T1, L1c, W, T2)

    # conditional modes (spherical) and s = Z'r
    u2 = _l2_solve(L2, (cu2 - RZX2 @ beta)[:, None], trans=True)[:, 0]
    Wu2 = np.stack([rc.by_level(Wv[i] * u2[col]) for i in range(k1)])
    u1 = kern.bwd(L1c, cu1c - beta @ RZX1c - Wu2)
    b1 = T1 @ u1
    b2 = rem.lam(T2, u2[:, None])[:, 0]
    Nb2 = np.stack([rc.by_level(Nv[i] * b2[col]) for i in range(k1)])
    s1 = problem.Zyc - beta @ problem.ZXc - np.einsum("adg,dg->ag", problem.Mc, b1) - Nb2
    Ntb1 = rc.by_col(sum(Nv[i] * b1[i][lev] for i in range(k1)))
    s2 = rem.Z2ty - rem.Z2tX @ beta - Ntb1 - rem.Z2tZ2 @ b2
    m = problem.n - problem.p if problem.reml else problem.n
    c = m / r2

    # the pieces of Om
    Sinv = _s_inverse(L2)
    WS = _ws(rem, rc, W, Wv, Sinv)
    Linv = kern.inv_lower(L1c)
    WSW = _inner(rc, WS, Wv)
    Om11 = np.einsum("mag,mng,nbg->abg", Linv, WSW, Linv)
    Om12 = -np.stack([sum(Linv[j, i][lev] * WS[j] for j in range(k1)) for i in range(k1)])
    if problem.reml:
        Q = _rx_inverse(LX)
        Y2 = _l2_solve(L2, RZX2, trans=True)                              # (q2, p)
        WY2 = np.stack([(rc.by_level(Wv[i][:, None] * Y2[col])).T for i in range(k1)])  # (k1, p, G1)
        Y1 = kern.bwd(L1c, RZX1c - WY2)                                   # (k1, p, G1)
        YQ1 = np.matmul(Q, Y1)
        YQ2 = Y2 @ Q
        Om11 += kern.gram(YQ1, Y1)
        Y2c = Y2[col]                                                     # (E, p)
        Om12 += np.stack([np.einsum("pe,ep->e", YQ1[i][:, lev], Y2c) for i in range(k1)])

    # primary terms
    TM = kern.left_t(T1, problem.Mc)
    phi1 = np.einsum("acg,cbg->ab", Om11, TM) + Om12 @ NL.T
    if problem.reml:
        phi1 -= YQ1.reshape(k1, -1) @ problem.ZXc.reshape(k1, -1).T
    from mlm.engine.gradient import _collect_primary

    out = _collect_primary(problem, 2.0 * phi1.T)
    out_r2 = _collect_primary(problem, -2.0 * (s1 @ u1.T))

    # remainder terms: Phi_jj = A (through the primary) + B (within) - C (fixed effects)
    TN = kern.left_t(T1, Nv)
    blocks_a = _cross_blocks(rem, rc, Om12, TN)
    blocks_b = _within_blocks(rem, T2, Sinv, Y2 if problem.reml else None,
                              YQ2 if problem.reml else None, lam2)
    for t, i in enumerate(problem.rest):
        k, G = rem.ks[t], rem.Gs[t]
        seg = slice(rem.offsets[t], rem.offsets[t + 1])
        phi = blocks_a[t] + blocks_b[t]
        if problem.reml:
            phi = phi - YQ2[seg].reshape(G, k, p) @ np.swapaxes(rem.Z2tX[seg].reshape(G, k, p), 1, 2)
        su = np.einsum("ga,gb->ab", s2[seg].reshape(G, k), u2[seg].reshape(G, k))
        G_f1, G_r2 = 2.0 * phi.sum(axis=0).T, -2.0 * su
        for j, (a, b) in enumerate(problem._idx[i]):
            out[problem._slices[i].start + j] = G_f1[a, b]
            out_r2[problem._slices[i].start + j] = G_r2[a, b]
    return (out, out_r2) if pieces else out + c * out_r2


def _cross_blocks(rem, rc, Om12, TN):
    """Per remainder term, (G_t, k_t, k_t): sum over primary levels of Om21_jl T1'N_lj."""
    out = []
    G1, K = rem.G1, rc.K
    O3 = np.stack([o.reshape(G1, K) for o in Om12], axis=1)     # (G1, k1, K)
    N3 = np.stack([o.reshape(G1, K) for o in TN], axis=1)
    for t in range(len(rem.ks)):
        k, G = rem.ks[t], rem.Gs[t]
        seg = rem.kseg[t]
        per = np.einsum("lia,lib->lab", O3[:, :, seg], N3[:, :, seg])  # (G1, k, k)
        parent = (rem.colidx[:, seg.start] - rem.offsets[t]) // k
        blk = np.empty((G, k, k))
        for a in range(k):
            for b in range(k):
                blk[:, a, b] = np.bincount(parent, weights=per[:, a, b], minlength=G)
        out.append(blk)
    return out


def _within_blocks(rem, T2, Sinv, Y2, YQ2, lam2):
    """Per remainder term, the diagonal blocks of Om22 Lambda2'Z2'Z2."""
    if lam2 is not None:  # Lambda2 diagonal: diagonal of the product, elementwise
        H = lam2[:, None] * rem.Z2tZ2
        d = np.einsum("ij,ji->i", Sinv, H)
        if Y2 is not None:
            d = d + np.einsum("ip,pi->i", YQ2, Y2.T @ H)
        return [d[rem.offsets[t]:rem.offsets[t + 1]].reshape(-1, 1, 1) for t in range(len(rem.ks))]
    H = rem.lam_t(T2, rem.Z2tZ2)
    F = Sinv @ H
    if Y2 is not None:
        F = F + YQ2 @ (Y2.T @ H)
    out = []
    for t in range(len(rem.ks)):
        k, G = rem.ks[t], rem.Gs[t]
        idx = rem.offsets[t] + np.arange(G)[:, None] * k + np.arange(k)[None, :]
        out.append(F[idx[:, :, None], idx[:, None, :]])
    return out
