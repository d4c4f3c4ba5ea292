"""The deviance and its gradient for one grouping factor with one random column.

A random intercept ``(1 | g)`` (or a lone slope ``(0 + x | g)``) is the model most
often fitted, and the one refitted thousands of times by :func:`mlm.bootstrap` and
:func:`mlm.power`. Its relative covariance factor is one number ``theta``, every level's
block of ``Lambda'Z'Z Lambda + I`` is the scalar ``theta^2 m_l + 1`` (``m_l`` the level's
sum of squared random-effect column), so the factorisation of
:meth:`mlm.engine.pls.PLSProblem._factor` and the gradient of
:func:`mlm.engine.gradient.primary_gradient` reduce to a handful of operations on arrays
over the levels. Same formulas (Bates et al. 2015, JSS 67(1), sec. 3; the gradient's
derivation is in :mod:`mlm.engine.gradient`), a tenth of the numpy calls: at 160 schools
an evaluation took 93 us through the general per-level kernels, dominated by call
overhead (issue 16).
"""

from __future__ import annotations

import numpy as np

from mlm.engine.pls import _tri

__all__ = ["applies", "deviance_and_gradient"]


_EYES = {}


def _eye(p):
    if p not in _EYES:
        _EYES[p] = np.eye(p)
    return _EYES[p]


def applies(problem) -> bool:
    """Whether ``problem`` is one grouping factor with a one-column template."""
    return (not problem.dense and problem.rem is None and problem.k1 == 1
            and len(problem.primary) == 1)


def deviance_and_gradient(problem, theta):
    """``(deviance, gradient)`` at ``theta`` (a length-1 array); ``(inf, None)`` where the
    fixed-effects block is not positive definite."""
    t = float(theta[0])
    m, zx, zy = problem.Mc[0, 0], problem.ZXc[0], problem.Zyc[0]     # (G,), (p, G), (G,)
    L = np.sqrt(t * t * m + 1.0)                                      # each level's factor
    ratio = t / L
    RZX = zx * ratio                                                  # (p, G)
    cu = zy * ratio
    try:
        LX = np.linalg.cholesky(problem.XtX - RZX @ RZX.T)
    except np.linalg.LinAlgError:
        return np.inf, None
    cbeta = _tri(LX, problem.Xty - RZX @ cu)
    r2 = problem.yty - float(cu @ cu) - float(cbeta @ cbeta)
    logdet = 2.0 * float(np.log(L).sum())
    dev = float(problem._deviance_from(r2, logdet, LX))
    if not np.isfinite(dev):
        return dev, None
    # gradient: 2 (phi - c s'u), mlm.engine.gradient's notation with k = 1
    beta = _tri(LX, cbeta, lower=True, trans=True)
    u = (cu - beta @ RZX) / L
    s = zy - beta @ zx - m * (t * u)
    inv_L2 = 1.0 / (L * L)
    phi = t * float(m @ inv_L2)
    if problem.reml:
        Linv = _tri(LX, _eye(LX.shape[0]), lower=True)
        Q = Linv.T @ Linv                                             # (R_X'R_X)^{-1}
        Y = RZX / L                                                   # (p, G)
        phi += float(np.sum(Q * (Y @ (t * m * Y - zx).T)))
    c = (problem.n - problem.p if problem.reml else problem.n) / r2
    return dev, np.array([2.0 * (phi - c * float(s @ u))])


def solve(problem, theta, cond_var=False):
    """:meth:`mlm.engine.pls.PLSProblem.solve` for this layout: the same estimates from the
    closed forms (``u_l = (cu_l - RZX_l beta) / L_l``, ``b = theta u``, postVar
    ``sigma^2 theta^2 / L_l^2``)."""
    from mlm.engine.pls import PLSSolution

    t = float(theta[0])
    m, zx, zy = problem.Mc[0, 0], problem.ZXc[0], problem.Zyc[0]
    L = np.sqrt(t * t * m + 1.0)
    ratio = t / L
    RZX = zx * ratio
    cu = zy * ratio
    LX = np.linalg.cholesky(problem.XtX - RZX @ RZX.T)
    cbeta = _tri(LX, problem.Xty - RZX @ cu)
    r2 = problem.yty - float(cu @ cu) - float(cbeta @ cbeta)
    dev = float(problem._deviance_from(r2, 2.0 * float(np.log(L).sum()), LX))
    beta = _tri(LX, cbeta, lower=True, trans=True)
    sigma2 = r2 / (problem.n - problem.p if problem.reml else problem.n)
    Linv = _tri(LX, _eye(LX.shape[0]), lower=True)
    b = (t * (cu - beta @ RZX) / L)[:, None]
    cv = [(sigma2 * t * t / (L * L))[:, None, None]] if cond_var else None
    T = np.array([[t]])
    return PLSSolution(theta=np.asarray(theta, dtype=float), beta=beta + problem.beta_shift,
                       sigma2=float(sigma2), deviance=dev, vcov_beta=sigma2 * (Linv.T @ Linv),
                       b=[b], cond_var=cv, templates=[T])
