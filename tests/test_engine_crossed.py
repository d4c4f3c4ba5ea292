"""The fixed-pattern products of a crossed remainder (mlm.engine.crossed) and the block products
of an enclosing one (mlm.engine.blocks), against scipy's sparse products and dense algebra.

These are identities of linear algebra: the fixed maps must reproduce ``N' D N`` and the
per-level ``N_l Om N_l'`` exactly up to rounding (1e-12 relative to the largest entry).
The gradient built on them is checked against central differences of the deviance in
tests/test_engine_gradient.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mlm
from mlm.engine import pls
from mlm.engine.blocks import BlockCoupling
from mlm.engine.crossed import CrossedCoupling, lower_pairs
from mlm.engine.pls import PLSProblem


def _layout(kind, k1, seed):
    """(N as CSR (G1 k1, q2), Z2'Z2 as CSR, G1) of a random crossed layout."""
    rng = np.random.default_rng(seed)
    n, G1 = 600, 40
    a = rng.integers(0, G1, n)
    if kind == "crossed":          # every primary level meets most remainder levels
        cols = [rng.integers(0, 9, n), rng.integers(0, 5, n)]
    elif kind == "partial":        # primary levels in blocks meeting a few levels each
        cols = [(a // 8) * 3 + rng.integers(0, 3, n), rng.integers(0, 4, n)]
    else:                          # "sparse": InstEval-like, each level meets few columns
        cols = [(a * 7 + rng.integers(0, 4, n)) % 60]
    sizes = [int(c.max()) + 1 for c in cols]
    Z2 = sp.hstack([sp.csr_matrix((np.ones(n), (np.arange(n), c)), shape=(n, G))
                    for c, G in zip(cols, sizes)]).tocsr()
    Z1v = np.column_stack([np.ones(n), rng.normal(size=n)])[:, :k1]
    Z1 = PLSProblem._sparse_z(Z1v, a, G1)
    return (Z1.T @ Z2).tocsr(), (Z2.T @ Z2).tocsr(), G1


def _random_d(k1, G1, seed):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(G1, k1, k1))
    return np.ascontiguousarray((B @ np.swapaxes(B, 1, 2)).transpose(1, 2, 0))  # (k1, k1, G1)


def _scipy_ntdn(N, Dc):
    k1 = Dc.shape[0]
    Db = sp.block_diag([Dc[:, :, g] for g in range(Dc.shape[2])], format="csr") if k1 > 1 \
        else sp.diags(Dc[0, 0])
    return (N.T @ Db @ N).toarray()


LAYOUTS = [(kind, k1) for kind in ("crossed", "partial", "sparse") for k1 in (1, 2)]
IDS = [f"{kind}-k1={k1}" for kind, k1 in LAYOUTS]


def test_lower_pairs_enumerates_every_pair_within_groups_once():
    counts = np.array([3, 0, 1, 4, 2])
    starts = np.cumsum(counts) - counts
    first = np.repeat(starts, counts)
    n, e2 = lower_pairs(first, 0, first.size)
    e1 = np.repeat(np.arange(first.size), n)
    got = sorted(zip(e1.tolist(), e2.tolist()))
    want = sorted((s + i, s + j) for s, c in zip(starts, counts) for i in range(c) for j in range(i + 1))
    assert got == want


@pytest.mark.parametrize("chunk", [1 << 19, 7], ids=["one pass", "many chunks"])
@pytest.mark.parametrize("kind, k1", LAYOUTS, ids=IDS)
def test_fixed_pattern_ntdn_equals_scipys_product(kind, k1, chunk, monkeypatch):
    monkeypatch.setattr(CrossedCoupling, "CHUNK", chunk)
    N, ZZ, G1 = _layout(kind, k1, 1)
    cc = CrossedCoupling(N, ZZ, G1, k1, dense=False)
    Dc = _random_d(k1, G1, 2)
    want = _scipy_ntdn(N, Dc)
    got = cc.scatter(cc.ntdn(Dc), both=True)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale)
    # the pattern holds every nonzero of the product and of Z2'Z2, and the diagonal
    np.testing.assert_allclose(cc.scatter(cc.z2, both=True), ZZ.toarray(), rtol=0, atol=0)
    assert np.all(cc.diag[cc.diag_pos]) and cc.diag_pos.size == cc.q2
    # the dense form gives the same matrix
    dense = CrossedCoupling(N, ZZ, G1, k1, dense=True)
    np.testing.assert_allclose(dense.ntdn(Dc), want, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("kind, k1", LAYOUTS, ids=IDS)
def test_level_quadratic_forms_equal_dense_algebra(kind, k1):
    N, ZZ, G1 = _layout(kind, k1, 3)
    q2 = N.shape[1]
    rng = np.random.default_rng(4)
    B = rng.normal(size=(q2, q2))
    Om = B @ B.T
    Nd = N.toarray().reshape(G1, k1, q2)
    want = np.einsum("lcj,jk,ldk->cdl", Nd, Om, Nd)
    sparse = CrossedCoupling(N, ZZ, G1, k1, dense=False)
    dense = CrossedCoupling(N, ZZ, G1, k1, dense=True)
    scale = np.abs(want).max()
    # only Om's values on the pattern are used: entries off it meet zeros of N'N
    np.testing.assert_allclose(sparse.level_quad(sparse.gather(Om)), want, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(dense.level_quad(Om), want, rtol=0, atol=1e-12 * scale)
    v = rng.normal(size=(q2, 3))
    M = rng.normal(size=(G1 * k1, 3))
    np.testing.assert_allclose(sparse.n_dot(v), N @ v, atol=1e-12)
    np.testing.assert_allclose(sparse.nt_dot(M), N.T @ M, atol=1e-12)
    np.testing.assert_allclose(dense.nt_dot(M), N.T @ M, atol=1e-12)


@pytest.mark.parametrize("k1, k2", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_block_coupling_equals_dense_algebra(k1, k2):
    rng = np.random.default_rng(5)
    G1, G2 = 30, 7
    parent = rng.integers(0, G2, G1)
    parent[:G2] = np.arange(G2)
    Nb = rng.normal(size=(G1, k1, k2))
    Zb = rng.normal(size=(G2, k2, k2))
    Zb = Zb @ np.swapaxes(Zb, 1, 2)
    bc = BlockCoupling(Nb, parent, Zb)
    q2 = G2 * k2
    N = np.zeros((G1, k1, G2, k2))
    N[np.arange(G1), :, parent, :] = Nb
    N = N.reshape(G1 * k1, q2)
    Dc = _random_d(k1, G1, 6)
    full = _scipy_ntdn(sp.csr_matrix(N), Dc)
    idx = np.arange(G2)[:, None] * k2 + np.arange(k2)[None, :]
    np.testing.assert_allclose(bc.ntdn(Dc), full[idx[:, :, None], idx[:, None, :]], atol=1e-12)
    Om = rng.normal(size=(G2, k2, k2))
    Om = Om @ np.swapaxes(Om, 1, 2)
    Omd = np.zeros((q2, q2))
    for g in range(G2):
        Omd[idx[g][:, None], idx[g][None, :]] = Om[g]
    N3 = N.reshape(G1, k1, q2)
    np.testing.assert_allclose(bc.level_quad(Om), np.einsum("lcj,jk,ldk->cdl", N3, Omd, N3), atol=1e-12)
    v = rng.normal(size=(q2, 2))
    M = rng.normal(size=(G1 * k1, 2))
    np.testing.assert_allclose(bc.n_dot(v), N @ v, atol=1e-12)
    np.testing.assert_allclose(bc.n_dot(v[:, 0]), N @ v[:, 0], atol=1e-12)
    np.testing.assert_allclose(bc.nt_dot(M), N.T @ M, atol=1e-12)
    np.testing.assert_allclose(bc.nt_dot(M[:, 0]), N.T @ M[:, 0], atol=1e-12)
    T = np.tril(rng.normal(size=(k2, k2)))
    lam = np.full(q2, T[0, 0]) if k2 == 1 else None
    S = bc.schur(None, Zb, lam, [T])
    np.testing.assert_allclose(S, T.T @ Zb @ T + np.eye(k2), atol=1e-12)
    L2, logdet = bc.cholesky(S)
    assert logdet == pytest.approx(np.sum(np.linalg.slogdet(S)[1]), rel=1e-12)
    np.testing.assert_allclose(bc.inverse(L2) @ S, np.broadcast_to(np.eye(k2), S.shape), atol=1e-10)
    r = rng.normal(size=(q2, 2))
    Lfull = np.zeros((q2, q2))
    for g in range(G2):
        Lfull[idx[g][:, None], idx[g][None, :]] = L2[g]
    np.testing.assert_allclose(bc.solve(L2, r), np.linalg.solve(Lfull, r), atol=1e-10)
    np.testing.assert_allclose(bc.solve(L2, r, trans=True), np.linalg.solve(Lfull.T, r), atol=1e-10)


def _partially_crossed_data(seed):
    # pupils in primary schools (a), crossed with secondary schools (b) that draw on a few
    # primaries each, and a third factor (c) crossed with both
    rng = np.random.default_rng(seed)
    n = 1500
    a = rng.integers(0, 120, n)
    b = (a // 10) * 2 + rng.integers(0, 3, n)
    c = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    y = (rng.normal(0, 1, 120)[a] + rng.normal(0, 0.7, b.max() + 1)[b] + rng.normal(0, 0.5, 6)[c]
         + 0.5 * x + rng.normal(0, 1, n))
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b, "c": c})


@pytest.mark.parametrize("dense_w", [0, 10**9], ids=["sparse pattern", "dense"])
def test_partially_crossed_fit_agrees_across_paths(dense_w, monkeypatch):
    # the deviance, estimates and conditional variances of a partially crossed design are the
    # same on the fixed-pattern path, the dense path and the whole system factored densely
    data = _partially_crossed_data(7)
    d = mlm.build_design("y ~ x + (1 | a) + (1 | b) + (1 | c)", data)
    monkeypatch.setattr(pls._Remainder, "DENSE_MAX", dense_w)
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    assert problem.rem.mode == ("sparse" if dense_w == 0 else "dense")
    monkeypatch.setattr(PLSProblem, "DENSE_Q", 10**6)
    whole = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    assert whole.dense
    theta = np.array([0.8, 0.5, 0.3])
    assert problem.deviance(theta) == pytest.approx(whole.deviance(theta), rel=1e-11)
    s1, s2 = problem.solve(theta, cond_var=True), whole.solve(theta, cond_var=True)
    np.testing.assert_allclose(s1.beta, s2.beta, rtol=1e-9)
    for b1, b2, v1, v2 in zip(s1.b, s2.b, s1.cond_var, s2.cond_var):
        np.testing.assert_allclose(b1, b2, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(v1, v2, rtol=1e-7, atol=1e-12)
    g1, g2 = problem.deviance_and_gradient(theta)[1], whole.deviance_and_gradient(theta)[1]
    np.testing.assert_allclose(g1, g2, rtol=1e-7, atol=1e-7 * np.abs(g2).max())


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_partially_crossed_gradient_matches_central_differences(reml, monkeypatch):
    # step h = 1e-5 relative: truncation O(h^2), rounding ~eps |dev| / h; agreement to 1e-6
    # relative as in tests/test_engine_gradient.py
    monkeypatch.setattr(pls._Remainder, "DENSE_MAX", 0)
    d = mlm.build_design("y ~ x + (1 | a) + (1 | b) + (x | c)", _partially_crossed_data(8))
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=reml)
    assert problem.rem.mode == "sparse"
    theta = np.array([0.8, 0.5, 0.3, -0.1, 0.2])
    g = problem.deviance_and_gradient(theta)[1]
    num = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = 1e-5 * max(1.0, abs(theta[j]))
        num[j] = (problem.deviance(theta + e) - problem.deviance(theta - e)) / (2 * e[j])
    np.testing.assert_array_less(np.abs(g - num), 1e-6 * np.maximum(1.0, np.abs(num)))
