"""A remainder that is one factor enclosing the primary one (a three-level model).

Every primary level ``l`` (a school) lies in one level ``g = parent(l)`` of the other
factor (an area), so ``N = Z1'Z2`` has one ``k1 x k2`` block per primary level, ``N_l``,
in its parent's columns, and the Schur complement is block-diagonal by area:

    S_g = T' (Z2'Z2_g - sum_{l in g} N_l' D_l N_l) T + I,    D_l = C_l'C_l.

:class:`BlockCoupling` offers the operations of
:class:`mlm.engine.crossed.CrossedCoupling` (the products with ``N``, the per-level
quadratic forms, solves with and the inverse of the factor of ``S``) on these blocks, so
that :mod:`mlm.engine.gradient_crossed` serves both layouts. Sums over the children of an
area are one sparse product with a fixed (areas x levels) indicator; blocks of one
column are plain vectors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mlm.engine import kernels as kern

__all__ = ["BlockCoupling"]


def _chol(S):
    """Lower Cholesky factors of a (G, k, k) batch."""
    if S.shape[1] == 1:
        if not np.all(S > 0):
            raise np.linalg.LinAlgError("the Schur complement is not positive definite")
        return np.sqrt(S)
    return np.linalg.cholesky(S)


class BlockCoupling:
    """``N`` of a remainder enclosing the primary factor, as (G1, k1, k2) blocks.

    Parameters
    ----------
    Nb : ndarray, shape (G1, k1, k2)
        ``N_l``, the coupling of primary level ``l`` with its parent's columns.
    parent : ndarray of int, shape (G1,)
    Z2tZ2 : ndarray, shape (G2, k2, k2)
        The diagonal blocks of ``Z2'Z2`` (it has no others).
    """

    def __init__(self, Nb, parent, Z2tZ2):
        self.Nb = Nb
        self.G1, self.k1, self.k2 = Nb.shape
        self.G2 = Z2tZ2.shape[0]
        self.q2 = self.G2 * self.k2
        self.parent = parent
        self.Zb = Z2tZ2
        self.base = Z2tZ2            # what N' D N is subtracted from
        self.agg = sp.csr_matrix((np.ones(self.G1), (parent, np.arange(self.G1))),
                                 shape=(self.G2, self.G1))
        self.scalar = self.k1 == 1 and self.k2 == 1
        if self.scalar:
            self.n = Nb[:, 0, 0]

    def _by_parent(self, A):
        """Sum of a (G1, ...) array over the children of every parent: (G2, ...)."""
        if A.ndim == 1:
            return np.bincount(self.parent, weights=A, minlength=self.G2)
        return (self.agg @ A.reshape(self.G1, -1)).reshape((self.G2,) + A.shape[1:])

    # --- products ------------------------------------------------------------------------
    def n_dot(self, v):
        """``N v`` for v of shape (q2,) or (q2, m), rows level-major."""
        if self.scalar:
            return self.n * v[self.parent] if v.ndim == 1 else self.n[:, None] * v[self.parent]
        V = v.reshape(self.G2, self.k2, -1)[self.parent]
        out = np.matmul(self.Nb, V)
        return out.reshape(self.G1 * self.k1) if v.ndim == 1 else out.reshape(self.G1 * self.k1, -1)

    def nt_dot(self, M):
        """``N' M`` for M of shape (G1 * k1,) or (G1 * k1, m)."""
        if self.scalar:
            return self._by_parent(self.n * M if M.ndim == 1 else self.n[:, None] * M)
        per = np.matmul(np.swapaxes(self.Nb, 1, 2), M.reshape(self.G1, self.k1, -1))
        out = self._by_parent(per)
        return out.reshape(self.q2) if M.ndim == 1 else out.reshape(self.q2, -1)

    def z2_dot(self, x):
        """``Z2'Z2 x`` for x of shape (q2,) or (q2, m)."""
        if self.k2 == 1:
            return self.Zb[:, 0, 0] * x if x.ndim == 1 else self.Zb[:, 0, 0][:, None] * x
        out = np.matmul(self.Zb, x.reshape(self.G2, self.k2, -1))
        return out.reshape(x.shape)

    def ntdn(self, Dc):
        """``N' D N`` (block-diagonal) for per-level ``D_l`` as (k1, k1, G1): (G2, k2, k2)."""
        if self.scalar:
            return self._by_parent(self.n * self.n * Dc[0, 0])[:, None, None]
        per = np.swapaxes(self.Nb, 1, 2) @ kern.to_batch(Dc) @ self.Nb
        return self._by_parent(per)

    def level_quad(self, Om):
        """``N_l Om_{parent(l)} N_l'`` for every primary level as (k1, k1, G1)."""
        if self.scalar:
            return (self.n * self.n * Om[self.parent, 0, 0])[None, None, :]
        per = self.Nb @ Om[self.parent] @ np.swapaxes(self.Nb, 1, 2)
        return kern.from_batch(per)

    # --- the factor of S -------------------------------------------------------------------
    def schur(self, rem, X, lam, T2):
        """``S = T' X T + I`` by blocks."""
        if lam is not None:
            t = float(T2[0][0, 0])
            return X * (t * t) + 1.0
        T = T2[0]
        return T.T @ X @ T + np.eye(self.k2)

    def cholesky(self, S):
        """Block factors of S and the log-determinant."""
        L2 = _chol(S)
        return L2, 2.0 * float(np.sum(np.log(np.diagonal(L2, axis1=1, axis2=2))))

    def solve(self, L2, B, trans=False):
        """``L2 X = B`` (or ``L2' X = B``) for B of shape (q2,) or (q2, m)."""
        if self.k2 == 1:
            return B / (L2[:, 0, 0] if B.ndim == 1 else L2[:, 0, 0][:, None])
        Bb = B.reshape(self.G2, self.k2, -1)
        Lb = np.swapaxes(L2, 1, 2) if trans else L2
        return np.linalg.solve(Lb, Bb).reshape(B.shape)

    def inverse(self, L2):
        """``S^{-1}`` by blocks, (G2, k2, k2)."""
        if self.k2 == 1:
            return 1.0 / (L2 * L2)
        Linv = kern.inv_lower(kern.from_batch(L2))
        return kern.to_batch(np.einsum("mag,mbg->abg", Linv, Linv))

    def omega(self, rem, Sinv, lam, T2):
        """``Lambda2 S^{-1} Lambda2'`` by blocks, and ``S^{-1}``."""
        T = T2[0]
        return (Sinv * float(T[0, 0]) ** 2 if lam is not None else T @ Sinv @ T.T), Sinv

    def remainder_blocks(self, rem, Sinv, X, lam, T2):
        """The diagonal blocks of ``S^{-1} Lambda2' X``, one (G2, k2, k2) array."""
        T = T2[0]
        return [Sinv * X * float(T[0, 0]) if lam is not None else Sinv @ T.T @ X]
