"""Minimising the profiled deviance without a gradient: the layouts the exact gradient of
:mod:`mlm.engine.gradient` does not cover (crossed remainder terms with several columns).

:meth:`mlm.engine.pls.PLSProblem.optimize` and ``check_convergence`` call these; the
gradient path is :mod:`mlm.engine.optimize`. Everything works in scaled units
``x = theta / theta_scale``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize

__all__ = ["optimize_differences", "newton_differences", "check_differences", "DECREMENT_TOL"]

#: A fit has converged when no coordinate's Newton step could lower the deviance
#: (-2 log-likelihood) by more than this.
DECREMENT_TOL = 1e-3


def _scaled(f, scale):
    return lambda x: f(np.asarray(x, dtype=float) * scale)


def optimize_differences(problem, theta0=None):
    """Three phases on forward/central differences (see :meth:`mlm.engine.pls.PLSProblem.optimize`)."""
    scale = problem.theta_scale
    x = problem.theta_start() if theta0 is None else np.asarray(theta0, dtype=float) / scale
    lower = problem.theta_lower()
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    counter = [0]
    dev = _scaled(problem.deviance, scale)

    # L-BFGS-B asks for the value and the gradient at the same point: forward
    # differences reuse the value, n + 1 evaluations instead of 2n + 1.
    cache = {}

    def f(x):
        key = x.tobytes()
        if key not in cache:
            counter[0] += 1
            cache.clear()
            cache[key] = dev(x)
        return cache[key]

    def g(x):
        counter[0] += x.size
        f0 = f(x)
        out = np.empty_like(x)
        for j in range(x.size):
            h = 1e-6 * max(1.0, abs(x[j]))
            up = x.copy()
            up[j] += h
            out[j] = (dev(up) - f0) / h
        return out

    def polish(start):
        best = None
        for _ in range(3):
            res = minimize(f, start, jac=g, method="L-BFGS-B", bounds=bounds,
                           options={"ftol": 1e-10, "gtol": 1e-5, "maxiter": 500})
            improved = best is None or res.fun < best[0] - 1e-9
            if best is None or res.fun <= best[0]:
                best = (float(res.fun), np.asarray(res.x))
            if not improved:
                break
            start = best[1]
        return best

    if theta0 is None:
        k = x.size
        # step towards the interior: down for diagonal entries at 1, up elsewhere
        steps = np.where(x > 0.5, -0.25, 0.25)
        simplex = np.vstack([x] + [x + steps[i] * np.eye(k)[i] for i in range(k)])
        coarse = minimize(f, x, method="Nelder-Mead", bounds=bounds,
                          options={"initial_simplex": simplex, "maxfev": 8 * k + 10,
                                   "xatol": 1e-3, "fatol": 1e-4})
        x = np.asarray(coarse.x)
    best = polish(x)
    # A variance that reaches zero is a stationary point of the deviance (which
    # depends on theta_i through theta_i^2 there), so a gradient method can stall on
    # the bound although the optimum lies inside (lme4's default optimizer stalls the
    # same way on chem97 with a slope at the school level). Restart off the bound.
    diag = np.isfinite(lower)
    for i in np.flatnonzero(diag & (best[1] < 1e-3)):
        for push in (0.1, 0.5):
            start = best[1].copy()
            start[i] = push
            trial = polish(start)
            if trial[0] < best[0] - 1e-7:
                best = trial
                break
    x, fx, n_newton = newton_differences(dev, best[1], best[0], lower)
    counter[0] += n_newton
    check = check_differences(dev, x, lower)
    if not check["converged"]:  # one more polish from the answer, then judge again
        trial = polish(x)
        if trial[0] <= fx:
            x, fx, n_newton = newton_differences(dev, trial[1], trial[0], lower)
            counter[0] += n_newton
            check = check_differences(dev, x, lower)
    return x * scale, {"deviance": fx, "evaluations": counter[0], **check}


#: Relative step of the central differences in the final Newton steps: large enough
#: that rounding in the deviance (about 1e-13 relative) stays far below the slopes
#: it measures, small enough that the truncation error (h^2) is negligible.
NEWTON_STEP = 1e-4

def newton_differences(dev, x, fx, lower, iterations=4):
    """Newton steps on the free coordinates from central-difference slopes.

    The slopes are central differences (error h^2); the curvature matrix needs only to
    be good enough for the steps to contract, so its off-diagonal entries are one-sided
    (one evaluation each). The fixed point is where the central slopes vanish, a
    deterministic function of the data, so row order and group labels no longer
    move the answer by the optimiser's tolerance. A step is kept when it does not
    raise the deviance beyond rounding. Returns ``(x, deviance, evaluations)``.
    """
    x = np.asarray(x, dtype=float).copy()
    evals = 0
    tol = 1e-12 * max(1.0, abs(fx))
    for _ in range(iterations):
        h = NEWTON_STEP * np.maximum(1.0, np.abs(x))
        free = [j for j in range(x.size) if not (np.isfinite(lower[j]) and x[j] - h[j] < lower[j])]
        if not free:
            break
        up, grad, curv = {}, np.empty(len(free)), np.empty((len(free), len(free)))
        for a, j in enumerate(free):
            e = np.zeros_like(x)
            e[j] = h[j]
            up[j], dn = dev(x + e), dev(x - e)
            grad[a] = (up[j] - dn) / (2 * h[j])
            curv[a, a] = (up[j] - 2 * fx + dn) / (h[j] * h[j])
            evals += 2
        for a, j in enumerate(free):
            for c in range(a):
                i = free[c]
                e = np.zeros_like(x)
                e[j], e[i] = h[j], h[i]
                curv[a, c] = curv[c, a] = (dev(x + e) - up[j] - up[i] + fx) / (h[i] * h[j])
                evals += 1
        if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(curv))):
            break  # at the edge of where the deviance is defined: leave it to the check
        try:
            chol = np.linalg.cholesky(curv)
            step = -sla.cho_solve((chol, True), grad)
        except np.linalg.LinAlgError:  # not convex here: leave it to the check
            break
        trial = x.copy()
        trial[free] += step
        trial = np.maximum(trial, lower)
        f_trial = dev(trial)
        evals += 1
        if not f_trial <= fx + tol:
            break
        moved = np.max(np.abs(trial - x) / np.maximum(1.0, np.abs(x)))
        x, fx = trial, min(f_trial, fx) if f_trial < fx else f_trial
        if moved < 1e-10:
            break
    return x, float(fx), evals


def check_differences(dev, x, lower, step=1e-5):
    """PLSProblem.check_convergence's dict for the deviance ``dev`` of scaled coordinates ``x``."""
    f0 = dev(x)
    gmax, dec, ok = 0.0, 0.0, True
    for j in range(x.size):
        h = step * max(1.0, abs(x[j]))
        up = x.copy()
        up[j] += h
        fu = dev(up)
        if x[j] - h < lower[j]:
            g = (fu - f0) / h
            if g >= 0:  # on the bound, pointing outward: not free
                continue
            curv = np.nan
        else:
            dn = x.copy()
            dn[j] -= h
            fd = dev(dn)
            g = (fu - fd) / (2 * h)
            curv = (fu - 2 * f0 + fd) / (h * h)
        gmax = max(gmax, abs(g))
        if np.isfinite(curv) and curv > 0:
            dec = max(dec, g * g / (2 * curv))
        elif abs(g) > 1e-3:
            ok = False
    return {"gradient": float(gmax), "decrement": float(dec),
            "converged": bool(ok and dec < DECREMENT_TOL)}
