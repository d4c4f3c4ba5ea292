"""Start values for theta from the per-level sums the engine already holds (issue 16).

lme4 starts every fit at identity templates and lets a derivative-free optimiser walk
from there (about 20-40 evaluations). Newton steps on the exact gradient
(:func:`mlm.engine.optimize.newton`) converge in a handful of evaluations once they are
close, so a cheap estimate of where the optimum lies saves most of the walk.

The estimate is a method of moments, term by term, on the outcome less its
least-squares fit on X (the engine's shifted response, ``r``): for every level ``l`` of
a term, ``b_l = M_l^{-1} Z_l'r`` with ``M_l = Z_l'Z_l`` estimates the level's effects;
their spread, less the sampling part ``sigma^2 M_l^{-1}``, estimates the term's
covariance (Swamy 1970's estimator of random coefficients, with levels weighted by their
information, ``tr M_l``), and the within-level residual sum of squares estimates
``sigma^2`` (with several factors, the residuals of all of them fitted jointly). Other
terms are ignored when one term's spread is estimated, so for crossed factors it is
rough; it only has to land in the basin. The optimiser judges the answer by the exact
gradient and falls back to lme4's start when Newton steps from here do not converge
(:func:`mlm.engine.optimize.optimize`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["moment_start"]

#: Smallest start of a diagonal entry (scaled units, where optima are typically 0.05-1):
#: a zero variance is a stationary point of the deviance, so Newton steps must start off it.
FLOOR = 0.05


def moment_start(problem):
    """Theta in the optimiser's units (``theta / theta_scale``) from moments, or None when
    no term has two levels with an invertible ``Z_l'Z_l``."""
    blocks = _term_blocks(problem)
    estimates = [_moments(M, c, problem) for M, c in blocks.values()]
    if not any(e is not None for e in estimates):
        return None
    s2 = _joint_residual_variance(problem) if len(blocks) > 1 else None
    if s2 is None:
        s2 = min((e[2] for e in estimates if e is not None and e[2] > 0),
                 default=problem.yty / max(problem.n - problem.p, 1))
    theta = np.empty(problem.n_theta)
    for terms, est in zip(blocks, estimates):
        offset = 0
        for i in terms:
            k = problem.ks[i]
            if est is None:
                T = np.eye(k)
            else:
                seg = slice(offset, offset + k)
                rel = (est[0][seg, seg] - s2 * est[1][seg, seg]) / s2
                T = _floored_factor(rel)
            theta[problem._slices[i]] = [T[a, b] for (a, b) in problem._idx[i]]
            offset += k
    x = theta / problem.theta_scale
    diag = np.isfinite(problem.theta_lower())
    return np.where(diag, np.maximum(x, FLOOR), x) if np.all(np.isfinite(x)) else None


def _term_blocks(problem):
    """``{terms: (M (G, k, k), c (G, k))}``: each grouping factor's per-level ``Z'Z``
    blocks and ``Z'r`` (the primary factor's terms together, as the engine holds them)."""
    out = {}
    if problem.dense:
        for t in range(len(problem.ks)):
            k, G = problem.ks[t], problem.n_levels[t]
            idx = problem.offsets[t] + np.arange(G)[:, None] * k + np.arange(k)[None, :]
            out[(t,)] = (problem.ZtZ[idx[:, :, None], idx[:, None, :]], problem.Zty[idx])
        return out
    out[tuple(problem.primary)] = (np.moveaxis(problem.Mc, -1, 0), problem.Zyc.T)
    rem = problem.rem
    if rem is not None:
        for t, i in enumerate(problem.rest):
            out[(i,)] = (rem.term_gram(t), rem.Z2ty[rem.block_index(t)])
    return out


def _moments(M, c, problem):
    """``(spread of the level estimates, mean of M_l^{-1}, within-level residual variance)``
    or None; the term's covariance is the first less sigma^2 times the second."""
    G, k, _ = M.shape
    scale = np.abs(M).reshape(G, -1).max(axis=1)
    det = np.linalg.det(M)
    ok = (scale > 0) & (np.abs(det) > 1e-8 * np.maximum(scale, 1e-300) ** k)
    if ok.sum() < 2:
        return None
    Minv = np.linalg.inv(M[ok])
    b = np.einsum("gab,gb->ga", Minv, c[ok])
    G_ok = int(ok.sum())
    # weights by the level's information (trace of Z_l'Z_l, its size for an intercept):
    # small levels' estimates are mostly noise, and sigma^2 M_l^{-1} subtracts it only on
    # average (equal weights on balanced data: the ANOVA identity below still holds)
    w = np.trace(M[ok], axis1=1, axis2=2)
    w = w / w.sum()
    # divisors of the one-way ANOVA: with a random intercept and an intercept-only X on
    # balanced data, (MSB - MSW) / n and MSW, which REML reproduces when positive
    df = problem.n - G_ok * k - max(problem.p - k, 0)
    s2 = (problem.yty - float(np.einsum("ga,ga->", b, c[ok]))) / df if df > 0 else -1.0
    spread = np.einsum("g,ga,gb->ab", w, b, b) * G_ok / (G_ok - 1)
    return spread, np.einsum("g,gab->ab", w, Minv), s2


#: Scaled theta at which the penalised fit is, for the start's purpose, the least-squares
#: fit with every level as a fixed effect (a level with n rows keeps 1 - 1 / (900 n) of its
#: mean).
JOINT_X = 30.0


def _joint_residual_variance(problem):
    """``sigma^2`` from the residuals of all factors fitted jointly, or None.

    With several factors, one factor's within-level residuals still hold the others'
    effects when they are crossed (Penicillin: the plates' spread inflated the start's
    residual variance fivefold and Newton steps from there failed). One factorisation at
    a large theta gives the joint fit's residual sum of squares instead.
    """
    df = problem.n - problem.p - problem.q
    if df <= 0:
        return None
    theta = JOINT_X * problem.theta_start() * problem.theta_scale
    try:
        rss = getattr(problem._closed_form, "penalised_rss", None)  # its one factorisation
        r2 = rss(problem, theta) if rss is not None else float(problem._factor(theta)[7])
    except (np.linalg.LinAlgError, ValueError):
        return None
    return r2 / df if np.isfinite(r2) and r2 > 0 else None


def _floored_factor(rel):
    """Cholesky factor of ``rel`` with negative eigenvalues set to zero."""
    from mlm.engine.pls import psd_cholesky

    w, V = np.linalg.eigh(0.5 * (rel + rel.T))
    return psd_cholesky((V * np.maximum(w, 0.0)) @ V.T)
