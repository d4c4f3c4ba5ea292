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

from mlm.engine.pls import _rx_inverse, _tri

__all__ = ["applies", "deviance_and_gradient", "solve"]


def applies(problem) -> bool:
    """Whether ``problem`` is one grouping factor with a one-column template."""
    return (not problem.dense and problem.rem is None and problem.k1 == 1
            and len(problem.primary) == 1)


def _factor(problem, t):
    """The factorisation at ``theta = (t,)``: each level's ``L_l``, ``RZX``, ``cu``, the
    fixed-effects factor ``LX``, ``c_beta``, r2 and the deviance (LinAlgError where the
    fixed-effects block is not positive definite)."""
    m, zx, zy = problem.Mc[0, 0], problem.ZXc[0], problem.Zyc[0]     # (G,), (p, G), (G,)
    L = np.sqrt(t * t * m + 1.0)                                      # each level's factor
    ratio = t / L
    RZX = zx * ratio                                                  # (p, G)
    cu = zy * ratio
    LX = np.linalg.cholesky(problem.XtX - RZX @ RZX.T)
    cbeta = _tri(LX, problem.Xty - RZX @ cu)
    r2 = problem.yty - float(cu @ cu) - float(cbeta @ cbeta)
    dev = float(problem._deviance_from(r2, 2.0 * float(np.log(L).sum()), LX))
    return L, RZX, cu, LX, cbeta, r2, dev


def deviance_and_gradient(problem, theta):
    """``(deviance, gradient)`` at ``theta`` (a length-1 array); ``(inf, None)`` where the
    fixed-effects block is not positive definite."""
    t = float(theta[0])
    try:
        L, RZX, cu, LX, cbeta, r2, dev = _factor(problem, t)
    except np.linalg.LinAlgError:
        return np.inf, None
    if not np.isfinite(dev):
        return dev, None
    # gradient: 2 (phi - c s'u), mlm.engine.gradient's notation with k = 1
    m, zx, zy = problem.Mc[0, 0], problem.ZXc[0], problem.Zyc[0]
    beta = _tri(LX, cbeta, lower=True, trans=True)
    u = (cu - beta @ RZX) / L
    s = zy - beta @ zx - m * (t * u)
    phi = t * float(m @ (1.0 / (L * L)))
    if problem.reml:
        Y = RZX / L                                                   # (p, G)
        phi += float(np.sum(_rx_inverse(LX) * (Y @ (t * m * Y - zx).T)))
    c = (problem.n - problem.p if problem.reml else problem.n) / r2
    return dev, np.array([2.0 * (phi - c * float(s @ u))])


def solve(problem, theta, cond_var=False):
    """:meth:`mlm.engine.pls.PLSProblem.solve` for this layout: the same estimates from the
    closed forms (``u_l = (cu_l - RZX_l beta) / L_l``, ``b = theta u``, postVar
    ``sigma^2 theta^2 / L_l^2``)."""
    from mlm.engine.pls import PLSSolution

    t = float(theta[0])
    L, RZX, cu, LX, cbeta, r2, dev = _factor(problem, t)
    beta = _tri(LX, cbeta, lower=True, trans=True)
    sigma2 = r2 / (problem.n - problem.p if problem.reml else problem.n)
    b = (t * (cu - beta @ RZX) / L)[:, None]
    cv = [(sigma2 * t * t / (L * L))[:, None, None]] if cond_var else None
    return PLSSolution(theta=np.asarray(theta, dtype=float), beta=beta + problem.beta_shift,
                       sigma2=float(sigma2), deviance=dev, vcov_beta=sigma2 * _rx_inverse(LX),
                       b=[b], cond_var=cv, templates=[np.array([[t]])])
