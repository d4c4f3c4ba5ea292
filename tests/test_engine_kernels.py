"""Closed-form kernels over flat arrays (mlm.engine.kernels) against numpy's batched
LAPACK on the same matrices: identities of linear algebra, to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from mlm.engine import kernels as kern


def spd_stack(G, k, seed):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((G, k, k))
    return R @ np.swapaxes(R, 1, 2) + np.eye(k)


# k = 1, 2 (closed forms), 3-4 (entry loops) and 5-6 (batched LAPACK beyond LOOP_MAX)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_kernels_agree_with_batched_lapack(k):
    G, m = 11, 3
    rng = np.random.default_rng(k)
    A = spd_stack(G, k, k)
    L = kern.chol(kern.from_batch(A))
    Lb = np.linalg.cholesky(A)
    np.testing.assert_allclose(kern.to_batch(L), Lb, rtol=1e-12, atol=1e-12)
    B = rng.standard_normal((k, m, G))                      # levels last
    Bb = np.moveaxis(B, -1, 0)                              # (G, k, m)
    np.testing.assert_allclose(np.moveaxis(kern.fwd(L, B), -1, 0), np.linalg.solve(Lb, Bb), rtol=1e-10)
    np.testing.assert_allclose(np.moveaxis(kern.bwd(L, B), -1, 0),
                               np.linalg.solve(np.swapaxes(Lb, 1, 2), Bb), rtol=1e-10)
    v = rng.standard_normal((k, G))
    np.testing.assert_allclose(kern.fwd(L, v).T, np.linalg.solve(Lb, v.T[:, :, None])[:, :, 0], rtol=1e-10)
    np.testing.assert_allclose(kern.to_batch(kern.inv_lower(L)), np.linalg.inv(Lb), rtol=1e-10, atol=1e-12)
    assert kern.logdet(L) == pytest.approx(np.linalg.slogdet(A)[1].sum(), rel=1e-12)
    T = np.tril(rng.standard_normal((k, k)))
    np.testing.assert_allclose(kern.to_batch(kern.sandwich(T, kern.from_batch(A))),
                               T.T @ A @ T, rtol=1e-10, atol=1e-12)
    C = rng.standard_normal((k, m, G))
    np.testing.assert_allclose(kern.to_batch(kern.gram(B, C)),
                               Bb @ np.swapaxes(np.moveaxis(C, -1, 0), 1, 2), rtol=1e-10, atol=1e-12)


def test_kernels_keep_the_levels_apart():
    # one level's block never leaks into another's: a stack of identical blocks gives
    # identical factors, and changing one level changes only that level's factor
    A = np.broadcast_to(spd_stack(1, 2, 0), (5, 2, 2)).copy()
    L0 = kern.chol(kern.from_batch(A))
    A[3] *= 4.0
    L1 = kern.chol(kern.from_batch(A))
    np.testing.assert_array_equal(np.delete(L0, 3, axis=2), np.delete(L1, 3, axis=2))
    np.testing.assert_allclose(L1[..., 3], 2.0 * L0[..., 3])
