"""A crossed remainder: the coupling ``N = Z1'Z2`` and the fixed-pattern products of an evaluation.

When the factors outside the primary one are crossed with it (InstEval's lecturers and
students, ScotsSec's secondary and primary schools), the Schur complement of the primary
block is (``W = blockdiag(C_l) N Lambda2``, ``C_l = L1_l^{-1} T1'``)

    S = Lambda2' (Z2'Z2 - N' D N) Lambda2 + I,    D_l = C_l' C_l  (k1 x k1 per primary level).

``N' D N = sum_l N_l' D_l N_l`` has a sparsity pattern fixed by the design: entry
``(j, j')`` is structurally nonzero when some primary level touches both remainder
columns. Its values are therefore a fixed linear map of the per-level ``D_l``: one
sparse matrix ``P`` (a row per lower-triangle position of the pattern, a column per
``(c, d, l)``; stored as its transpose ``PT``) built once, so that an evaluation costs
one sparse product instead of scipy's sparse matmul, which recomputes the structure
every call (``csr_matmat_maxnnz``) (issue 16). The same map transposed gives the
per-level quadratic forms ``N_l Om N_l'`` for a symmetric ``Om`` known on the pattern,
which is all the gradient needs of ``S^{-1}`` (:mod:`mlm.engine.gradient_crossed`).

InstEval: 1,128 lecturers, 2,972 students; ``N'N`` is 20% dense (256,274 entries),
1.3 million pairs of entries share a student. The evaluation's cost is then the dense
factor of ``S`` (LAPACK ``potrf``, 13 ms) and, with the gradient, its inverse (``potri``,
28 ms); everything else is a few milliseconds.

Small designs (``dense``) hold ``N`` as a dense array and use matrix products instead:
a few BLAS calls cost less than the bookkeeping of the pattern.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from mlm.engine import kernels as kern

_dtrtrs = lapack.get_lapack_funcs("trtrs", (np.empty(1),))

__all__ = ["CrossedCoupling", "lower_pairs", "cholesky_lower", "inverse_lower"]


def lower_pairs(first, lo, hi):
    """Every pair of entries ``(e1, e2)``, ``e1 >= e2``, within the same group, for the
    entries ``lo:hi`` as ``e1``; ``first[e]`` is the first entry of ``e``'s group.

    Entry ``e`` pairs with the ``e - first[e] + 1`` entries from its group's start to
    itself: ``np.repeat`` calls, no loop over groups. Returns ``n`` (pairs of each
    ``e1``, so that ``np.repeat(x[lo:hi], n)`` is ``x[e1]``) and ``e2``.
    """
    f = first[lo:hi]
    n = np.arange(lo, hi) - f + 1
    offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return n, np.repeat(f, n) + offset


def cholesky_lower(S):
    """Lower Cholesky factor of a symmetric matrix whose lower triangle is filled.

    LAPACK ``potrf`` in place when ``S`` is Fortran-ordered (a symmetric C-ordered array is
    passed as its transpose, which is the same matrix); the upper triangle is zeroed.
    """
    A = S if S.flags.f_contiguous else S.T if S.flags.c_contiguous else np.asfortranarray(S)
    L, info = lapack.dpotrf(A, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError("the Schur complement is not positive definite")
    return L


def inverse_lower(L):
    """``(L L')^{-1}`` from a lower Cholesky factor; only its lower triangle is valid
    (LAPACK ``potri``, on a copy: the factor stays usable)."""
    inv, info = lapack.dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the Schur complement is singular")
    return inv


def symmetric(low):
    """The full symmetric matrix from its lower triangle (small matrices)."""
    return np.tril(low) + np.tril(low, -1).T


class CrossedCoupling:
    """``N = Z1'Z2`` of a crossed remainder and the products an evaluation needs.

    Parameters
    ----------
    N : scipy.sparse matrix, shape (G1 * k1, q2)
        Rows level-major (``l * k1 + a``) by primary level ``l`` and column ``a``.
    Z2tZ2 : scipy.sparse matrix, shape (q2, q2)
    G1, k1 : int
    dense : bool
        Hold ``N`` densely and use matrix products (small designs).
    """

    def __init__(self, N, Z2tZ2, G1, k1, dense):
        self.G1, self.k1 = G1, k1
        self.q2 = q2 = N.shape[1]
        self.dense = bool(dense)
        if self.dense:
            self.N = N.toarray()
            self.N3 = self.N.reshape(G1, k1, q2)
            self.Z2tZ2 = Z2tZ2.toarray()
            self.base = self.Z2tZ2       # what N' D N is subtracted from
            return
        self.N = sp.csr_matrix(N)
        self.NT = self.N.T.tocsr()
        self.Z2tZ2 = sp.csr_matrix(Z2tZ2)
        self._build_pattern(Z2tZ2)
        self.base = self.z2

    # --- the fixed pattern ------------------------------------------------------------------
    #: pairs handled per pass while the pattern is built: bounds its temporaries (InstEval
    #: has 1.3 million pairs of entries within primary levels)
    CHUNK = 1 << 19

    def _build_pattern(self, Z2tZ2):
        G1, k1, q2 = self.G1, self.k1, self.q2
        if k1 == 1:  # entries (level, column) are N's own, in order
            N = self.N.copy()
            N.sum_duplicates()
            lev = np.repeat(np.arange(G1), np.diff(N.indptr))
            col = N.indices.astype(np.int64)
            Nv = N.data[None, :]
        else:
            coo = self.N.tocoo()
            row = coo.row.astype(np.int64)
            uniq, inv = np.unique((row // k1) * q2 + coo.col, return_inverse=True)
            lev = uniq // q2
            col = uniq % q2                      # sorted within each level
            comp = row % k1
            Nv = np.stack([np.bincount(inv[comp == a], weights=coo.data[comp == a],
                                       minlength=uniq.size) for a in range(k1)])  # (k1, E)
            del uniq, inv, comp, row
        counts = np.bincount(lev, minlength=G1)
        starts = np.cumsum(counts) - counts
        tri = counts * (counts + 1) // 2
        first = starts[lev]
        # chunks of entries (as e1) holding about CHUNK pairs each
        per_entry = np.arange(lev.size) - first + 1
        chunk_of = (np.cumsum(per_entry) - per_entry) // self.CHUNK
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(chunk_of)) + 1, [lev.size]])
        del per_entry, chunk_of

        # positions (j1, j2), j1 >= j2, as Fortran-order offsets j1 + j2 q2: the pattern sorted
        # by them is visited in memory order when S is filled and S^{-1} read. One pass
        # over the pairs, chunk by chunk in level order (e1 = repeat(arange(lo, hi), n),
        # col[e1] >= col[e2]), marks the pattern and computes
        # P'[(c k1 + d) G1 + l, p] = (N_l[c, j1] N_l[d, j2] + N_l[c, j2] N_l[d, j1]) / 2,
        # row by row in CSR form (rows are levels within each (c, d) block: the pairs' order)
        key_type = np.int32 if q2 * q2 < 2**31 else np.int64
        col_k = col.astype(key_type)
        col_q = col_k * key_type(q2)
        mark = np.zeros(q2 * q2, dtype=bool)
        keys, vals = [], [[] for _ in range(k1 * k1)]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            n, e2 = lower_pairs(first, lo, hi)
            key = np.repeat(col_k[lo:hi], n) + col_q[e2]
            mark[key] = True
            keys.append(key)
            n1 = [np.repeat(Nv[c, lo:hi], n) for c in range(k1)]
            n2 = [Nv[c, e2] for c in range(k1)]
            for c in range(k1):
                for d in range(k1):
                    vals[c * k1 + d].append(n1[c] * n2[d] if k1 == 1
                                            else 0.5 * (n1[c] * n2[d] + n2[c] * n1[d]))
        z = sp.tril(sp.coo_matrix(Z2tZ2)).tocoo()
        z_key = z.row.astype(np.int64) + z.col.astype(np.int64) * q2
        mark[z_key] = True
        mark[np.arange(q2, dtype=np.int64) * (q2 + 1)] = True
        pattern = np.flatnonzero(mark)
        del mark
        self.npat = npat = pattern.size
        rank = np.empty(q2 * q2, dtype=np.int32)
        rank[pattern] = np.arange(npat, dtype=np.int32)
        target = np.concatenate([rank[key] for key in keys])
        del keys
        z_pos = rank[z_key]
        del rank
        data = np.concatenate([np.concatenate(v) for v in vals])
        del vals
        indptr = np.concatenate([[0], np.cumsum(np.tile(tri, k1 * k1))])
        self.PT = sp.csr_matrix((data, np.tile(target, k1 * k1), indptr),
                                shape=(G1 * k1 * k1, npat))
        del data, target
        self.pj1 = (pattern % q2).astype(np.intp)
        self.pj2 = (pattern // q2).astype(np.intp)
        self.diag = self.pj1 == self.pj2
        self.diag_pos = np.flatnonzero(self.diag)
        self.flat_f = pattern                      # (j1, j2) in a Fortran-ordered (q2, q2)
        self.flat_t = self.pj2 + self.pj1 * q2     # (j1, j2) in a row-major one
        self.wt = np.where(self.diag, 1.0, 2.0)
        self.z2 = np.zeros(npat)
        np.add.at(self.z2, z_pos, z.data)

    # --- products ---------------------------------------------------------------------------
    def ntdn(self, Dc):
        """``N' D N`` for per-level symmetric ``D_l`` given as (k1, k1, G1): the dense
        (q2, q2) matrix, or (sparse designs) its values on the lower pattern."""
        if self.dense:
            if self.k1 == 1:
                return (self.N.T * Dc[0, 0]) @ self.N
            DN = np.matmul(kern.to_batch(Dc), self.N3)
            return self.N.T @ DN.reshape(-1, self.q2)
        return self.PT.T @ Dc.ravel()  # CSC product: as fast as a CSR copy of P would be

    def level_quad(self, Om):
        """``N_l Om N_l'`` for every primary level as (k1, k1, G1), for a symmetric ``Om``:
        dense (q2, q2), or (sparse designs) its values on the lower pattern."""
        k1, G1 = self.k1, self.G1
        if self.dense:
            NO = self.N @ Om
            if k1 == 1:
                return np.einsum("lj,lj->l", NO, self.N)[None, None, :]
            return np.einsum("lcj,ldj->cdl", NO.reshape(G1, k1, self.q2), self.N3)
        return (self.PT @ (Om * self.wt)).reshape(k1, k1, G1)

    def z2_dot(self, x):
        """``Z2'Z2 x``."""
        return self.Z2tZ2 @ x

    def n_dot(self, v):
        """``N v`` for v of shape (q2,) or (q2, m)."""
        return self.N @ v

    def nt_dot(self, M):
        """``N' M`` for M of shape (G1 * k1,) or (G1 * k1, m)."""
        return (self.N.T if self.dense else self.NT) @ M

    def scatter(self, values, both=False):
        """A Fortran-ordered (q2, q2) array holding pattern values in its lower triangle
        (and the upper one, ``both``); zero elsewhere."""
        q2 = self.q2
        out = np.zeros(q2 * q2)
        out[self.flat_f] = values
        if both:
            out[self.flat_t] = values
        return out.reshape(q2, q2, order="F")

    def gather(self, A):
        """Values of a (q2, q2) array at the lower pattern."""
        if A.flags.f_contiguous:
            return A.ravel(order="F")[self.flat_f]
        return A.ravel()[self.flat_t]          # row-major: (j1, j2) sits at j1 q2 + j2

    # --- the factor of S ----------------------------------------------------------------------
    def schur(self, rem, X, lam, T2):
        """``S = Lambda2' X Lambda2 + I`` from ``X = Z2'Z2 - N'DN``, lower triangle filled."""
        if lam is not None:
            if self.dense:
                S = X * np.outer(lam, lam)
                S[rem._diag, rem._diag] += 1.0
                return S
            vals = X * lam[self.pj1] * lam[self.pj2]
            vals[self.diag_pos] += 1.0
            return self.scatter(vals)
        S = rem.lam_t(T2, rem.lam_t(T2, X if self.dense else self.scatter(X, both=True)).T)
        S[rem._diag, rem._diag] += 1.0
        return S

    def cholesky(self, S):
        """The factor of S (dense, in place) and its log-determinant."""
        L2 = cholesky_lower(S)
        return L2, 2.0 * float(np.sum(np.log(np.diagonal(L2))))

    @staticmethod
    def solve(L2, B, trans=False):
        """``L2 X = B`` (or ``L2' X = B``) by LAPACK ``trtrs``."""
        x, info = _dtrtrs(L2, B, lower=1, trans=int(trans))
        if info != 0:
            raise np.linalg.LinAlgError("singular triangular factor")
        return x

    @staticmethod
    def inverse(L2):
        """``S^{-1}``, lower triangle only (dense)."""
        return inverse_lower(L2)

    def omega(self, rem, Sinv_low, lam, T2):
        """``Lambda2 S^{-1} Lambda2'`` in the form :meth:`level_quad` takes, and ``S^{-1}`` in
        the form :meth:`remainder_blocks` takes (values on the pattern for sparse designs
        with one-column terms, else the full matrix)."""
        if lam is not None and not self.dense:
            sv = self.gather(Sinv_low)
            return sv * lam[self.pj1] * lam[self.pj2], sv
        Sinv = symmetric(Sinv_low)
        Om = Sinv * np.outer(lam, lam) if lam is not None else rem.lam(T2, rem.lam(T2, Sinv).T)
        return (Om if self.dense else self.gather(Om)), Sinv

    def remainder_blocks(self, rem, Sinv, X, lam, T2):
        """Per remainder term, (G_t, k_t, k_t): diagonal blocks of ``S^{-1} Lambda2' X``."""
        if lam is not None:
            if self.dense:
                d = np.einsum("ij,ji->i", Sinv, lam[:, None] * X)
            else:  # on the lower pattern: each off-diagonal pair serves both of its columns
                v = Sinv * X
                v[self.diag_pos] *= 0.5
                d = (np.bincount(self.pj1, weights=v * lam[self.pj2], minlength=self.q2)
                     + np.bincount(self.pj2, weights=v * lam[self.pj1], minlength=self.q2))
            return [d[rem.offsets[t]:rem.offsets[t + 1]].reshape(-1, 1, 1)
                    for t in range(len(rem.ks))]
        Y = rem.lam_t(T2, X if self.dense else self.scatter(X, both=True))
        out = []
        for t in range(len(rem.ks)):
            idx = rem.block_index(t)
            out.append(np.einsum("gaj,jgb->gab", Sinv[idx], Y[:, idx]))
        return out
