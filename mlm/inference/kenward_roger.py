"""Kenward-Roger's adjusted covariance and degrees of freedom, as pbkrtest computes them.

Kenward & Roger (1997, Biometrics 53); Halekoh & Højsgaard (2014, JSS 59(9)), pbkrtest
0.5.2's ``vcovAdj``, ``Lb_ddf`` and ``KRmodcomp``. pbkrtest forms ``n x n`` matrices
(``Sigma^{-1}`` and one product per variance parameter); here every quantity goes through
the random effects instead (``Z' Sigma^{-1} Z``, ``Z' Sigma^{-1} X``, Woodbury), block by
block when the random terms are nested in one factor, so a model of 100,000 rows costs a
fraction of a second. Crossed factors with many levels form one large block: above
:data:`KR_MAX_ENTRIES` the methods refuse before running and point to Satterthwaite.
Used through :mod:`mlm.inference.ddf` (``ddf="kenward-roger"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from mlm.errors import MLMError
from mlm.engine.pls import single_threaded_blas

__all__ = ["KR_MAX_ENTRIES", "check_kr_size", "kr_size", "kr_parts", "vcov_adjusted"]

#: Kenward-Roger works on per-block arrays of (blocks x q_block^2) entries for each variance
#: parameter; above this many entries (about 400 MB of doubles) it refuses before running.
KR_MAX_ENTRIES = 50_000_000


@dataclass(frozen=True)
class _KRParts:
    """pbkrtest's ``vcovAdj`` result: the adjusted covariance and its ``P`` and ``W``."""

    vcov_adj: np.ndarray
    P: np.ndarray  # (r, p, p)
    W: np.ndarray  # (r, r)


def _require_kr(fit):
    if not fit.reml:
        raise MLMError("Kenward-Roger's method is only available for REML fits (as in lmerTest and "
                       "pbkrtest): refit with reml=True, or use ddf='satterthwaite', which works for "
                       "ML fits too.")


def _block_layout(design):
    """Columns of Z grouped into independent blocks, as (block of each column, position).

    When every random term is nested in the grouping factor with the fewest levels (each
    of a term's levels lies within one of its levels), ``Z' Sigma^{-1} Z`` is
    block-diagonal by that factor; otherwise (crossed factors) there is one block.
    """
    blocks = design.blocks
    top = min(range(len(blocks)), key=lambda i: blocks[i].n_levels)
    top_codes = blocks[top].codes
    parent_of = []
    for b in blocks:
        pairs = np.unique(np.stack([b.codes, top_codes], axis=1), axis=0)
        if len(pairs) != b.n_levels:
            parent_of = None
            break
        parent = np.empty(b.n_levels, dtype=np.intp)
        parent[pairs[:, 0]] = pairs[:, 1]
        parent_of.append(parent)
    col_block = []
    for t, b in enumerate(blocks):
        if parent_of is None:
            col_block.append(np.zeros(b.n_levels * b.k, dtype=np.intp))
        else:
            col_block.append(np.repeat(parent_of[t], b.k))
    col_block = np.concatenate(col_block)
    nblock = int(col_block.max()) + 1
    order = np.argsort(col_block, kind="stable")
    pos = np.empty_like(col_block)
    counts = np.bincount(col_block, minlength=nblock)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos[order] = np.arange(col_block.size) - np.repeat(starts, counts)
    return col_block, pos, nblock, int(counts.max())


def kr_size(fit_or_design):
    """Entries of the per-block arrays Kenward-Roger needs (checked against KR_MAX_ENTRIES)."""
    design = getattr(fit_or_design, "design", fit_or_design)
    _, _, nblock, qmax = _block_layout(design)
    npar = sum(b.k * (b.k + 1) // 2 for b in design.blocks)
    return nblock * qmax * qmax * (npar + 6)


def check_kr_size(design):
    """Refuse, before running, a model too large for Kenward-Roger (clear error, the way out)."""
    size = kr_size(design)
    if size > KR_MAX_ENTRIES:
        raise MLMError(
            f"ddf='kenward-roger' would need about {size * 8 / 2**20:,.0f} MiB for this model "
            f"(its limit is {KR_MAX_ENTRIES * 8 / 2**20:,.0f} MiB): the random effects form one large "
            "block (crossed factors with many levels) where pbkrtest would form n x n matrices. "
            "Use ddf='satterthwaite' (lmerTest's default), which costs about one fit.")


def _scatter(col_block, pos, nblock, qmax, rows, cols, vals):
    out = np.zeros((nblock, qmax, qmax))
    np.add.at(out, (col_block[rows], pos[rows], pos[cols]), vals)
    return out


def _z_and_lambda(design, templates):
    Zs, lam = [], []
    for b, T in zip(design.blocks, templates):
        n, k = b.Z.shape
        cols = (b.codes[:, None] * k + np.arange(k)[None, :]).ravel()
        Zs.append(sp.csr_matrix((b.Z.ravel(), (np.repeat(np.arange(n), k), cols)),
                                shape=(n, b.n_levels * k)))
        lam.append(sp.kron(sp.identity(b.n_levels, format="csr"), sp.csr_matrix(T)))
    return sp.hstack(Zs).tocsr(), sp.block_diag(lam, format="coo")


def _kr_param_patterns(design):
    """(rows, cols) in Z's columns of each covariance parameter's derivative E_r (symmetric)."""
    out, off = [], 0
    for b in design.blocks:
        k, G = b.k, b.n_levels
        base = off + np.arange(G) * k
        for j in range(k):
            for i in range(j, k):
                if i == j:
                    out.append((base + i, base + i))
                else:
                    out.append((np.concatenate([base + i, base + j]), np.concatenate([base + j, base + i])))
        off += k * G
    return out


def kr_parts(fit) -> _KRParts:
    """pbkrtest's ``vcovAdj`` (Kenward & Roger 1997, eq. 2-5), computed through Z.

    pbkrtest differentiates ``Sigma = sum_r gamma_r G_r + sigma^2 I`` with respect to the
    variance and covariance components. The adjustment does not depend on the basis of
    that linear space, so the residual direction is taken as ``Sigma`` itself, and every
    quantity reduces to ``A = Z' Sigma^{-1} Z``, ``B = Z' Sigma^{-1} X`` and
    ``C = X' Sigma^{-1} X``: with ``E_r`` the pattern of component ``r``,
    ``tr(Sigma^-1 G_r Sigma^-1 G_s) = tr(E_r A E_s A)``, ``P_r = -B' E_r B``,
    ``Q_rs = B' E_r A E_s B`` and, for the Sigma direction, ``tr(E_r A)``, ``n``, ``-C``,
    ``B' E_r B`` and ``C``.
    """
    store = fit.__dict__.setdefault("_inference_cache", {})
    if "kenward-roger" in store:
        return store["kenward-roger"]
    _require_kr(fit)
    design = fit.design
    check_kr_size(design)
    with single_threaded_blas():
        out = _kr_compute(fit, design)
    store["kenward-roger"] = out
    return out


def _kr_blocks(fit, design):
    """Per-block A = Z'Sigma^-1 Z and B = Z'Sigma^-1 X (Woodbury), and C = X'Sigma^-1 X."""
    s2 = fit.solution.sigma2
    X = design.X
    Z, lam = _z_and_lambda(design, fit.solution.templates)
    col_block, pos, nblock, qmax = _block_layout(design)
    ztz = (Z.T @ Z).tocoo()
    ZtZ = _scatter(col_block, pos, nblock, qmax, ztz.row, ztz.col, ztz.data)
    Lam = _scatter(col_block, pos, nblock, qmax, lam.row, lam.col, lam.data)
    ztx = np.asarray(Z.T @ X)
    ZtX = np.zeros((nblock, qmax, X.shape[1]))
    ZtX[col_block, pos] = ztx
    LamT = np.swapaxes(Lam, 1, 2)
    K = LamT @ ZtZ                                   # Lambda' Z'Z
    M = K @ Lam + np.eye(qmax)                       # Lambda' Z'Z Lambda + I
    KX = LamT @ ZtX
    sol = np.linalg.solve(M, np.concatenate([K, KX], axis=2))
    A = (ZtZ - np.swapaxes(K, 1, 2) @ sol[:, :, :qmax]) / s2
    B = (ZtX - np.swapaxes(K, 1, 2) @ sol[:, :, qmax:]) / s2
    C = (X.T @ X - np.einsum("gqi,gqj->ij", KX, sol[:, :, qmax:])) / s2
    return A, B, C, (col_block, pos, nblock, qmax)


def _kr_compute(fit, design):
    A, B, C, layout = _kr_blocks(fit, design)
    col_block, pos, nblock, qmax = layout
    n, p = design.X.shape
    Phi = fit.solution.vcov_beta
    Es = [_scatter(col_block, pos, nblock, qmax, r, c, np.ones(len(r)))
          for r, c in _kr_param_patterns(design)]
    nr = len(Es) + 1
    EA = [E @ A for E in Es]
    EB = [E @ B for E in Es]
    K = np.empty((nr, nr))
    P = np.empty((nr, p, p))
    Q = np.empty((nr, nr, p, p))
    for r in range(nr - 1):
        P[r] = -np.einsum("gqi,gqj->ij", B, EB[r])
        K[r, -1] = K[-1, r] = float(np.einsum("gii->", EA[r]))
        Q[r, -1] = Q[-1, r] = -P[r]
        AEB = A @ EB[r]
        for s in range(r, nr - 1):
            K[r, s] = K[s, r] = float(np.sum(EA[r] * np.swapaxes(EA[s], 1, 2)))
            Q[s, r] = np.einsum("gqi,gqj->ij", EB[s], AEB)
            Q[r, s] = Q[s, r].T
    K[-1, -1] = n
    P[-1] = -C
    Q[-1, -1] = C
    IE2 = np.empty((nr, nr))
    for i in range(nr):
        PhiPi = Phi @ P[i]
        for j in range(i, nr):
            IE2[i, j] = IE2[j, i] = (K[i, j] - 2.0 * np.sum(Phi * Q[i, j])
                                     + np.sum(PhiPi * (P[j] @ Phi)))  # tr(Phi P_i Phi P_j)
    eig = np.linalg.eigvalsh(IE2)
    W = 2.0 * (np.linalg.inv(IE2) if np.min(np.abs(eig)) > 1e-10 else np.linalg.pinv(IE2))
    W = 0.5 * (W + W.T)
    U = np.zeros((p, p))
    for i in range(nr):
        for j in range(nr):
            U += W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j])
    adj = Phi + 2.0 * Phi @ U @ Phi
    return _KRParts(vcov_adj=0.5 * (adj + adj.T), P=P, W=W)


def vcov_adjusted(fit) -> np.ndarray:
    """Kenward-Roger's adjusted covariance of the fixed effects (pbkrtest's ``vcovAdj``)."""
    return kr_parts(fit).vcov_adj


def _kr_A(fit, L):
    """A1 and A2 of Kenward & Roger (pbkrtest's ``.KR_adjust`` / ``Lb_ddf``)."""
    parts = kr_parts(fit)
    Phi = fit.solution.vcov_beta
    L = np.atleast_2d(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    U = [Theta @ Phi @ Pi @ Phi for Pi in parts.P]
    W = parts.W
    tr = np.array([np.trace(u) for u in U])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[i, j] * np.sum(U[i] * U[j].T) for i in range(len(U)) for j in range(len(U))))
    return A1, A2


def _kr_df(q, A1, A2):
    """pbkrtest's denominator df and F scaling from A1, A2 and the number of rows q."""
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0 = 1 + c1 * B
    V1 = 1 - c2 * B
    V2 = 1 - c3 * B
    if abs(V0) < 1e-10:
        V0 = 0.0
    x = 1 - A2 / q
    ratio = 1.0 if (abs(x) < 1e-14 and abs(V1) < 1e-14) else x / V1
    rho = ratio ** 2 * V0 / (q * V2)
    df2 = 4 + (q + 2) / (q * rho - 1)
    return df2, x
