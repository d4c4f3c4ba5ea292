"""Closed-form kernels for many small symmetric blocks at once, one per grouping level.

The engine (:mod:`mlm.engine.pls`) factors ``T' M_l T + I`` for every level ``l`` of the primary
grouping factor. Batched LAPACK (``np.linalg.cholesky`` on a ``(G, k, k)`` stack) and
batched ``matmul`` pay a per-matrix overhead that dominates for the 1 x 1 and 2 x 2
blocks of random intercepts and slopes (field notes: 5.9 ms -> 0.54 ms per evaluation at
20,000 groups). Here a stack of ``k x k`` matrices is held **component-major**, as an
array of shape ``(k, k, G)`` whose entry ``[a, b]`` is one contiguous array over the
levels, and every algorithm is written entry by entry over those flat arrays: the Python
loops run over ``k`` (1 or 2, rarely more), never over levels. Levels are always the last
axis: vectors per level are ``(k, G)``, matrices with ``m`` columns per level
``(k, m, G)``, so that every entry is a contiguous array over the levels.

Products with the (shared) template ``T`` are single BLAS calls on the flattened arrays.
Above ``LOOP_MAX`` the entry loops would cost more than batched LAPACK; those sizes go
through ``np.linalg`` on a ``(G, k, k)`` copy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chol", "fwd", "bwd", "inv_lower", "logdet", "left_t", "right", "sandwich",
           "to_batch", "from_batch", "gram"]

#: Largest block size handled by entry loops; larger blocks use batched LAPACK.
LOOP_MAX = 4


def to_batch(A):
    """(k, m, G) -> (G, k, m) view (``transpose``: np.moveaxis's checks cost more here)."""
    return A.transpose(2, 0, 1)


def from_batch(A):
    """(G, k, m) -> contiguous (k, m, G)."""
    return np.ascontiguousarray(A.transpose(1, 2, 0))


def chol(A):
    """Lower Cholesky factor of every level's block of ``A`` (k, k, G)."""
    k = A.shape[0]
    if k > LOOP_MAX:
        return from_batch(np.linalg.cholesky(to_batch(A)))
    L = np.zeros_like(A)
    for j in range(k):
        d = A[j, j].copy()
        for m in range(j):
            d -= L[j, m] * L[j, m]
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, k):
            s = A[i, j].copy()
            for m in range(j):
                s -= L[i, m] * L[j, m]
            L[i, j] = s / L[j, j]
    return L


def fwd(L, B):
    """Solve ``L_l X_l = B_l`` for every level; ``B`` is (k, G) or (k, m, G)."""
    k = L.shape[0]
    if k > LOOP_MAX:
        return _lapack_solve(L, B, trans=False)
    X = np.empty_like(B)
    for i in range(k):
        s = B[i].copy()
        for m in range(i):
            s -= L[i, m] * X[m]
        X[i] = s / L[i, i]
    return X


def bwd(L, B):
    """Solve ``L_l' X_l = B_l`` for every level."""
    k = L.shape[0]
    if k > LOOP_MAX:
        return _lapack_solve(L, B, trans=True)
    X = np.empty_like(B)
    for i in reversed(range(k)):
        s = B[i].copy()
        for m in range(i + 1, k):
            s -= L[m, i] * X[m]
        X[i] = s / L[i, i]
    return X


def _lapack_solve(L, B, trans):
    Lb = to_batch(L)
    if trans:
        Lb = np.swapaxes(Lb, -1, -2)
    vec = B.ndim == 2
    Bb = np.moveaxis(B[:, None, :] if vec else B, -1, 0)  # (G, k, m)
    X = np.moveaxis(np.linalg.solve(Lb, Bb), 0, -1)
    return np.ascontiguousarray(X[:, 0, :] if vec else X)


def inv_lower(L):
    """``L_l^{-1}`` for every level (lower triangular, (k, k, G))."""
    k = L.shape[0]
    X = np.zeros_like(L)
    for j in range(k):
        X[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, k):
            s = L[i, j] * X[j, j]
            for m in range(j + 1, i):
                s = s + L[i, m] * X[m, j]
            X[i, j] = -s / L[i, i]
    return X


def logdet(L):
    """``sum_l log |L_l L_l'|``."""
    return 2.0 * float(sum(np.sum(np.log(L[i, i])) for i in range(L.shape[0])))


def left_t(T, B):
    """``T' B_l`` for every level (``B`` of shape (k, ...)): one BLAS call."""
    k = T.shape[0]
    return (T.T @ B.reshape(k, -1)).reshape(B.shape)


def right(A, T):
    """``A_l T`` for every level's (j, k, G) block ``A``: one batched call over j."""
    return np.matmul(T.T, A)


def sandwich(T, M):
    """``T' M_l T`` for every level."""
    return left_t(T, right(M, T))


def gram(B, C=None):
    """``B_l C_l'`` per level for (k, m, G) arrays: the (k, k', G) stack of inner products."""
    C = B if C is None else C
    return np.einsum("amg,bmg->abg", B, C)
