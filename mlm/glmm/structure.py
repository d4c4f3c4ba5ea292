"""The random-effects structure of a GLMM as penalised IRLS needs it.

Each penalised iteratively reweighted least squares (PIRLS) step of
:mod:`mlm.glmm` solves ``(Lambda' Z' W Z Lambda + I) delta = rhs`` for new weights ``W``
(Bates, Maechler, Bolker & Walker 2015, JSS 67(1), section 5; lme4's ``pwrssUpdate``).
Two structures provide that system:

* :class:`OneFactor`: every term on one grouping factor (``(1 | g)``, ``(x | g)``,
  ``(x || g)``). The system is block-diagonal by level, so it is a batch of ``k x k``
  problems whose weighted sums are formed with ``np.bincount`` and factored with the
  closed forms of :mod:`mlm.pls` (the linear engine's per-level path).
* :class:`General`: nested and crossed factors. ``Z Lambda`` is a sparse matrix and the
  ``q x q`` system is factored densely (lme4's sparse Cholesky would pay off only for
  many thousands of random effects, which this structure refuses with a clear error).

Vectors in random-effects space are flat, ``(q,)``, ordered term by term and, within a
term, level by level (lme4's order); matrices are ``(q, m)``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from mlm.errors import FitError
from mlm.engine.pls import (PLSProblem, _bwd_batched, _chol_batched, _fwd_batched, templates,
                            theta_layout, theta_lower, theta_start)

__all__ = ["OneFactor", "General", "make_structure"]


class _Layout:
    """Theta's layout over the terms (lme4's column-wise lower triangles)."""

    def __init__(self, terms):
        self.ks = [int(Z.shape[1]) for Z, _, _, _ in terms]
        self.n_levels = [int(G) for _, _, G, _ in terms]
        self.group_names = [g for _, _, _, g in terms]
        self.idx = theta_layout(self.ks)
        starts = np.cumsum([0] + [len(i) for i in self.idx])
        self.slices = [slice(starts[i], starts[i + 1]) for i in range(len(terms))]
        self.n_theta = int(starts[-1])
        self.q = sum(k * G for k, G in zip(self.ks, self.n_levels))
        self.offsets = np.cumsum([0] + [k * G for k, G in zip(self.ks, self.n_levels)])

    def templates(self, theta):
        return templates(theta, self.slices, self.ks, self.idx)

    def theta_start(self):
        return theta_start(self.idx)

    def theta_lower(self):
        return theta_lower(self.idx)


class OneFactor(_Layout):
    """All terms on one grouping factor: a batch of ``k x k`` systems, one per level."""

    def __init__(self, terms):
        super().__init__(terms)
        self.Z = np.column_stack([np.asarray(Z, dtype=float) for Z, _, _, _ in terms])
        self.codes = np.asarray(terms[0][1], dtype=np.intp)
        self.G = self.n_levels[0]
        self.k = self.Z.shape[1]
        # term t's block of the combined k x k template sits at these columns
        self._cols = np.cumsum([0] + self.ks)

    def template(self, theta):
        """The combined ``k x k`` template (block-diagonal over the terms), cached per theta."""
        key = np.asarray(theta, dtype=float).tobytes()
        if key != getattr(self, "_tkey", None):
            Ts = self.templates(theta)
            self._tkey, self._tval = key, (Ts[0] if len(Ts) == 1 else sla.block_diag(*Ts))
        return self._tval

    def _to_flat(self, b):
        """(G, k) per-level values in the combined order -> lme4's term-by-term order."""
        if len(self.ks) == 1:
            return b.ravel()
        return np.concatenate([b[:, self._cols[t]:self._cols[t + 1]].ravel()
                               for t in range(len(self.ks))])

    def _from_flat(self, v):
        if len(self.ks) == 1:
            return v.reshape(self.G, self.k, *v.shape[1:])
        parts = [v[self.offsets[t]:self.offsets[t + 1]].reshape(self.G, self.ks[t], *v.shape[1:])
                 for t in range(len(self.ks))]
        return np.concatenate(parts, axis=1)

    def linpred(self, theta, u):
        """``Z Lambda u`` for every row."""
        b = self._from_flat(u) @ self.template(theta).T
        return np.einsum("ij,ij->i", self.Z, b[self.codes]) if self.k > 1 else self.Z[:, 0] * b[self.codes, 0]

    def effects(self, theta, u):
        """``b = Lambda u`` as one ``(levels, k_t)`` array per term."""
        b = self._from_flat(u) @ self.template(theta).T
        return [b[:, self._cols[t]:self._cols[t + 1]] for t in range(len(self.ks))]

    def crossprod(self, theta, r):
        """``Lambda' Z' r`` for a row vector ``r`` (or ``(n, m)`` matrix)."""
        r2 = r[:, None] if r.ndim == 1 else r
        G, k = self.G, self.k
        s = np.empty((G, k, r2.shape[1]))
        for j in range(k):
            for c in range(r2.shape[1]):
                s[:, j, c] = np.bincount(self.codes, weights=self.Z[:, j] * r2[:, c], minlength=G)
        out = self.template(theta).T @ s  # T' s_g, level by level
        out = self._to_flat_matrix(out)
        return out[:, 0] if r.ndim == 1 else out

    def _to_flat_matrix(self, a):
        if len(self.ks) == 1:
            return a.reshape(self.G * self.k, -1)
        return np.concatenate([a[:, self._cols[t]:self._cols[t + 1], :].reshape(-1, a.shape[2])
                               for t in range(len(self.ks))])

    def factor(self, theta, w):
        """The Cholesky factor of ``Lambda' Z' W Z Lambda + I`` for row weights ``w``."""
        G, k = self.G, self.k
        M = np.empty((G, k, k))
        for a in range(k):
            for c in range(a, k):
                M[:, a, c] = M[:, c, a] = np.bincount(self.codes, weights=w * self.Z[:, a] * self.Z[:, c],
                                                      minlength=G)
        T = self.template(theta)
        A = T.T @ M @ T
        A += np.eye(k)
        return _BatchedFactor(self, _chol_batched(A))


class _BatchedFactor:
    def __init__(self, structure, L):
        self.s, self.L = structure, L

    @property
    def logdet(self):
        """``log |A|`` (lme4's ``ldL2``)."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.L, axis1=1, axis2=2))))

    def solve(self, v):
        """``A^{-1} v`` for a flat ``(q,)`` vector or ``(q, m)`` matrix."""
        s = self.s
        B = s._from_flat(v)
        B3 = B[:, :, None] if B.ndim == 2 else B
        X = _bwd_batched(self.L, _fwd_batched(self.L, np.ascontiguousarray(B3)))
        out = s._to_flat_matrix(X)
        return out[:, 0] if v.ndim == 1 else out

    def diag_sqrt(self):
        """Per-level diagonal of L for a scalar term (AGQ's scale)."""
        return self.L[:, 0, 0]

    def inverse_blocks(self):
        """The ``(levels, k, k)`` diagonal blocks of ``A^{-1}`` (combined order)."""
        k = self.L.shape[1]
        eye = np.ascontiguousarray(np.broadcast_to(np.eye(k), self.L.shape))
        Li = _fwd_batched(self.L, eye)
        return np.swapaxes(Li, 1, 2) @ Li


class General(_Layout):
    """Nested or crossed grouping factors: ``Z`` sparse, the ``q x q`` system dense.

    ``Z' W Z`` is formed with one ``np.bincount`` over the pairs of nonzero columns of
    every row (a row has one nonzero per random-effect column of each term), so a PIRLS
    step costs no sparse-matrix products; ``Lambda`` is applied as a dense matrix (or a
    diagonal scaling when every term has one column).
    """

    MAX_Q = 6000

    def __init__(self, terms):
        super().__init__(terms)
        if self.q > self.MAX_Q:
            raise FitError(f"This model has {self.q} random effects on several grouping factors; "
                           f"glmer handles up to {self.MAX_Q} there today (one grouping factor has "
                           "no limit). Simplify the random part or fit a subset of the groups.")
        self.Zs = sp.hstack([PLSProblem._sparse_z(np.asarray(Z, dtype=float), np.asarray(c, dtype=np.intp), G)
                             for Z, c, G, _ in terms]).tocsr()
        # every row's nonzero columns and values (same count per row: sum of the k's)
        cols, vals = [], []
        for t, (Z, codes, _, _) in enumerate(terms):
            Z = np.asarray(Z, dtype=float)
            for a in range(Z.shape[1]):
                cols.append(self.offsets[t] + np.asarray(codes, dtype=np.intp) * self.ks[t] + a)
                vals.append(Z[:, a])
        C, V = np.stack(cols, axis=1), np.stack(vals, axis=1)        # (n, K)
        self._pair = (C[:, :, None] * self.q + C[:, None, :]).reshape(len(C), -1)
        self._pairval = (V[:, :, None] * V[:, None, :]).reshape(len(V), -1)
        rows, cols_, src = [], [], []
        for t, (k, G, idx) in enumerate(zip(self.ks, self.n_levels, self.idx)):
            base = self.offsets[t] + np.arange(G) * k
            for j, (a, c) in enumerate(idx):
                rows.append(base + a)
                cols_.append(base + c)
                src.append(np.full(G, self.slices[t].start + j))
        self._lr, self._lc, self._ls = map(np.concatenate, (rows, cols_, src))
        self._diag = all(k == 1 for k in self.ks)
        self._lam_key, self._lam_val = None, None

    def lam_dense(self, theta):
        """Lambda as a vector (diagonal: every term one column) or a dense ``q x q`` matrix."""
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if key != self._lam_key:
            if self._diag:
                lam = theta[self._ls]
            else:
                lam = np.zeros((self.q, self.q))
                lam[self._lr, self._lc] = theta[self._ls]
            self._lam_key, self._lam_val = key, lam
        return self._lam_val

    def lam(self, theta):
        lam = self.lam_dense(theta)
        return sp.csc_matrix(np.diag(lam) if lam.ndim == 1 else lam)

    def _lam_apply(self, theta, v, transpose=False):
        lam = self.lam_dense(theta)
        if lam.ndim == 1:
            return lam.reshape(-1, *([1] * (v.ndim - 1))) * v
        return (lam.T if transpose else lam) @ v

    def linpred(self, theta, u):
        return self.Zs @ self._lam_apply(theta, u)

    def effects(self, theta, u):
        b = self._lam_apply(theta, u)
        return [b[self.offsets[t]:self.offsets[t + 1]].reshape(G, k)
                for t, (k, G) in enumerate(zip(self.ks, self.n_levels))]

    def crossprod(self, theta, r):
        return self._lam_apply(theta, np.asarray(self.Zs.T @ r), transpose=True)

    def factor(self, theta, w):
        M = np.bincount(self._pair.ravel(), weights=(w[:, None] * self._pairval).ravel(),
                        minlength=self.q * self.q).reshape(self.q, self.q)
        lam = self.lam_dense(theta)
        A = M * np.outer(lam, lam) if lam.ndim == 1 else lam.T @ M @ lam
        A[np.diag_indices_from(A)] += 1.0
        return _DenseFactor(np.linalg.cholesky(A))


class _DenseFactor:
    def __init__(self, L):
        self.L = L

    @property
    def logdet(self):
        return 2.0 * float(np.sum(np.log(np.diag(self.L))))

    def solve(self, v):
        return sla.cho_solve((self.L, True), v, check_finite=False)

    def inverse(self):
        return sla.cho_solve((self.L, True), np.eye(self.L.shape[0]), check_finite=False)


def make_structure(terms):
    """:class:`OneFactor` when every term shares one grouping factor, else :class:`General`."""
    if len({g for _, _, _, g in terms}) == 1:
        return OneFactor(terms)
    return General(terms)
