"""Minimising the profiled deviance with its exact gradient (issue 16).

lme4 and the compiled peers use derivative-free optimisers (BOBYQA, Nelder-Mead); with
forward differences a gradient costs ``n_theta`` extra evaluations. The exact gradient of
:mod:`mlm.engine.gradient` costs about one, so L-BFGS-B needs a few evaluations per
iteration instead of ``n_theta + 1``, and the final Newton steps and the convergence
check take their curvature from differences of exact gradients (``n_theta`` gradients)
instead of second differences of the deviance (``n_theta (n_theta + 3) / 2``
evaluations).

Most fits never reach L-BFGS-B: :func:`optimize` first takes Newton steps from a warm
start (the parent fit's estimate for a refit, else moment estimates from
:mod:`mlm.engine.start`) and keeps the answer when :func:`check` accepts it; lme4's start
and the L-BFGS-B search are the fallback.

Everything works in scaled units ``x = theta / theta_scale`` (:func:`mlm.engine.pls.theta_scale`),
as :meth:`mlm.engine.pls.PLSProblem.optimize` always has.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import get_lapack_funcs
from scipy.optimize import minimize

from mlm.engine.start import moment_start

__all__ = ["Objective", "optimize", "check"]


class Objective:
    """The deviance and its gradient in scaled units, cached at the last few points, counted.

    Several points, not one: Newton's curvature differences and a rejected trial step
    evaluate elsewhere before the loop (or :func:`check`) asks for the current point
    again, which cost a whole evaluation per fit (4 or 5 of sleepstudy's, issue 16)."""

    CACHE = 8

    def __init__(self, problem):
        self.problem = problem
        self.scale = problem.theta_scale
        self.evaluations = 0
        self._cache = {}

    def __call__(self, x):
        """``(deviance, gradient)`` at ``x``; the gradient is zeros where the deviance is
        not finite (a trial point the line search then steps back from)."""
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        val = self._cache.get(key)
        if val is None:
            self.evaluations += 1
            dev, g = self.problem.deviance_and_gradient(x * self.scale)
            if g is None or not (np.isfinite(dev) and np.all(np.isfinite(g))):
                dev, g = np.inf, np.zeros_like(x)
            val = (float(dev), np.asarray(g, dtype=float) * self.scale)
            if len(self._cache) >= self.CACHE:
                del self._cache[next(iter(self._cache))]  # the oldest
            self._cache[key] = val
        return val

    def value(self, x):
        return self(x)[0]

    def grad(self, x):
        return self(x)[1]

    def hessian(self, x, g0, idx, step):
        """Forward differences of the exact gradient along coordinates ``idx``, symmetrised."""
        H = np.empty((len(idx), len(idx)))
        for a, j in enumerate(idx):
            h = step * max(1.0, abs(x[j]))
            e = np.zeros_like(x)
            e[j] = h
            H[:, a] = (self.grad(x + e)[idx] - g0[idx]) / h
        return 0.5 * (H + H.T)


#: relative step for the curvature from gradient differences (error O(h), harmless: it
#: only sets the Newton step's length, not the point where the exact gradient vanishes)
HESS_STEP = 1e-5


def _free(x, g, lower, tol=1e-12, bounded=None):
    """Coordinates not held at their lower bound by a gradient pointing out of the region."""
    on_bound = (np.isfinite(lower) if bounded is None else bounded) & (x <= lower + tol)
    return np.flatnonzero(~(on_bound & (g >= 0)))


#: L-BFGS-B keeps every diagonal entry at least this far (scaled units) from its bound
#: of 0: there the exact gradient is 0 whatever the curvature (the deviance is even in a
#: lone diagonal entry), so a point on the bound looks stationary even where the deviance
#: falls inwards; a hair inside, the gradient shows the way. Entries that end on the
#: shifted bound are then put on 0 itself when that is not worse.
SHIFT = 1e-4

#: L-BFGS-B's first step has unit length in its variables; it works on ``STRETCH * x`` so
#: that the first step is 1 / STRETCH in our units, a small step as lme4's BOBYQA takes
#: (a unit step from the start lands on zero variances, where it can stall). Later steps
#: come from the curvature it has learnt, so only the first is affected.
STRETCH = 4.0


#: The first pass keeps diagonal entries this far from 0 (scaled units, where the
#: optimum's entries are typically 0.05 to 1): near 0 the deviance is flat in a lone
#: diagonal entry (it depends on its square), so L-BFGS-B creeps back from the bound a
#: factor of two or three per iteration (chem97: 20 evaluations). Started from the first
#: pass's answer, the second pass reaches smaller values, or 0, directly.
FIRST_SHIFT = 0.02


def _lbfgsb(obj, start, bounds):
    """L-BFGS-B in two passes (FIRST_SHIFT, then SHIFT); ``(f, x)``."""
    _, x1 = _lbfgsb_pass(obj, start, bounds, FIRST_SHIFT)
    return _lbfgsb_pass(obj, x1, bounds, SHIFT)


def _lbfgsb_pass(obj, start, bounds, shift):
    """L-BFGS-B from ``start`` with diagonal entries at least ``shift`` (then snapped to 0
    when that is not worse) and variables stretched by STRETCH; ``(f, x)``."""
    c = STRETCH
    shifted = [(shift, None) if lo == 0 else (lo, hi) for lo, hi in bounds]
    lo = np.array([b[0] if b[0] is not None else -np.inf for b in shifted])

    def stretched(y):
        f, g = obj(y / c)
        return f, g / c

    res = minimize(stretched, np.maximum(start, lo) * c, jac=True, method="L-BFGS-B",
                   bounds=[(None if a is None else a * c, None if b is None else b * c) for a, b in shifted],
                   options={"ftol": 1e-10, "gtol": 1e-4 / c, "maxiter": 500})
    x, fx = np.asarray(res.x) / c, float(res.fun)
    at = np.flatnonzero((lo == shift) & (x <= shift * (1 + 1e-9)))
    if at.size:
        trial = x.copy()
        trial[at] = 0.0
        f0 = obj.value(trial)
        if f0 <= fx:
            x, fx = trial, f0
    return fx, x


def _descend(obj, x, bounds, diag):
    """L-BFGS-B from ``x``, restarted off any variance it leaves on its bound.

    A variance that reaches zero is a stationary point of the deviance (it depends on
    theta_i through theta_i^2 there), so a gradient method can stall on the bound
    although the optimum lies inside (L-BFGS-B's first step from lme4's start can land
    there; lme4's default optimizer stalls the same way on chem97 with a slope at the
    school level): restart off the bound and keep the better answer.
    """
    best = _lbfgsb(obj, x, bounds)
    for i in np.flatnonzero(diag & (best[1] < 1e-3)):
        for push in (0.1, 0.5):
            start = best[1].copy()
            start[i] = push
            trial = _lbfgsb(obj, start, bounds)
            if trial[0] < best[0] - 1e-7:
                best = trial
                break
    return best


def optimize(problem, theta0=None):
    """Minimise the deviance over theta within lme4's bounds; see
    :meth:`mlm.engine.pls.PLSProblem.optimize` for the phases. Returns ``(theta, info)``."""
    obj = Objective(problem)
    scale = obj.scale
    x = problem.theta_start() if theta0 is None else np.asarray(theta0, dtype=float) / scale
    lower = problem.theta_lower()
    warm_start = x if theta0 is not None else moment_start(problem)
    if warm_start is not None:
        # a refit (same design, another outcome) starts with its parent fit's curvature
        known = getattr(problem, "_curvature", None) if theta0 is not None else None
        warm = _warm_newton(obj, warm_start, lower, known)
        if warm is not None and not _corner(problem, warm[0]):
            return _finish(problem, obj, *warm)
    else:
        warm = None
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    diag = np.isfinite(lower)
    best = _descend(obj, x, bounds, diag)
    if theta0 is None and np.any(diag & (best[1] < 1e-3)):
        # Still on a bound: the stall can also move the other entries of the template
        # (hsb, three correlated effects). A short derivative-free search in small
        # steps from the start, as lme4's BOBYQA moves, then the gradient method again.
        trial = _descend(obj, _coarse(obj, x, bounds), bounds, diag)
        if trial[0] < best[0] - 1e-7:
            best = trial
    x, fx, curv = newton(obj, best[1], best[0], lower)
    info = check(obj, x, lower, curv)
    if not info["converged"]:  # one more polish from the answer, then judge again
        trial = _lbfgsb(obj, x, bounds)
        if trial[0] <= fx:
            x, fx, curv = newton(obj, trial[1], trial[0], lower)
            info = check(obj, x, lower, curv)
    if warm is not None and warm[1] < fx:  # a corner answer that the full search did not beat
        return _finish(problem, obj, *warm)
    return _finish(problem, obj, x, fx, info, curv)


#: The decrement (possible further drop of the deviance) below which the first Newton
#: attempt from a warm start is taken as converged without a second one.
TIGHT = 1e-8

#: A leading diagonal entry (scaled units) below which a template is near a lower-rank
#: corner (:func:`_corner`).
CORNER = 0.05


def _corner(problem, x):
    """Whether ``x`` puts a template of several columns near a lower-rank corner through
    one of its leading diagonal entries.

    With ``T[0, 0]`` (or, in three columns, ``T[1, 1]``) near zero the entries below it
    are nearly unidentified, the deviance runs along a flat valley, and a lower-rank
    covariance can be reached from several faces that hold separate local optima: on 320
    random designs the moment start's Newton steps stopped 0.003 to 0.1 above the optimum
    in five, every one with a small leading diagonal entry (``(x | g)`` with no intercept
    variance, ``(x + z | g)``). The full search from lme4's start then runs as well and the
    better answer is kept. A last diagonal entry at zero (a slope without variance: its
    column of T is zero) leaves no such valley and is judged by :func:`_on_bound` alone."""
    for i, k in enumerate(problem.ks):
        if k < 2:
            continue
        sl = problem._slices[i]
        leading = [sl.start + j for j, (a, b) in enumerate(problem._idx[i]) if a == b and a < k - 1]
        if np.any(x[leading] < CORNER):
            return True
    return False


def _finish(problem, obj, x, fx, info, curvature=None):
    theta = x * obj.scale
    problem._checked = (theta.tobytes(), dict(info))  # check_convergence(theta) reuses it
    problem._curvature = curvature  # refits' first Newton step (with_response copies it)
    return theta, {"deviance": fx, "evaluations": obj.evaluations, **info}


def _warm_newton(obj, x, lower, curvature=None):
    """Newton steps straight from a warm start (a bootstrap or power refit starts at the
    original fit's estimate, usually close to the refit's optimum; a fit at moment
    estimates): ``(x, f, info, curvature)`` when they reach a point :func:`check` accepts,
    else None and the caller runs the full search from lme4's start. Costs ``n_theta + 1``
    evaluations and one per step, against two L-BFGS-B passes."""
    fx = obj.value(x)
    if not np.isfinite(fx):
        return None
    for attempt in range(2):
        # a second attempt starts from where the first stopped with fresh curvature: the
        # BFGS-updated one can go stale on a long way in (steps halved to nothing)
        x, fx, curv = newton(obj, x, fx, lower, iterations=20, search=True,
                             curvature=curvature if attempt == 0 else None)
        near = np.isfinite(lower) & (x < 1e-3)
        if np.any(near):
            found = _on_bound(obj, x, fx, lower, near)
            if found is None:
                return None
            x, fx, curv = found
        info = check(obj, x, lower, curv)
        # the first attempt must have converged tightly (its curvature may be stale, and
        # the check's bar of 1e-3 would then let it stop that far short); the second,
        # with fresh curvature, meets the check as every fit does
        if info["converged"] and (attempt == 1 or info["decrement"] < TIGHT):
            return x, fx, info, curv
    return None


def _on_bound(obj, x, fx, lower, near):
    """Newton steps heading for a zero variance (a singular fit): put those entries on
    their bound, converge in the others, and accept only if the deviance rises a hair
    inside the bound along each of them. On the bound the gradient of a lone variance
    vanishes whatever the curvature (the deviance is even in it), so the test is made at
    ``SHIFT``, where the exact gradient shows which way the deviance falls. Returns
    ``(x, f, curvature)`` or None (then the full search decides)."""
    trial = x.copy()
    trial[near] = lower[near]
    f_bound = obj.value(trial)
    if not f_bound <= fx + 1e-9 * max(1.0, abs(fx)):
        return None
    x, fx, curv = newton(obj, trial, f_bound, lower, iterations=20, search=True)
    if np.any(np.isfinite(lower) & ~near & (x < 1e-3)):
        return None  # another variance is heading for its bound: let the full search judge
    inward = [i for i in np.flatnonzero(near) if not _rises_inside(obj, x, i)]
    if not inward:
        return x, fx, curv
    # The deviance falls inwards: the optimum lies just inside the bound (a slope SD of
    # 0.006 on a 50,000-row crossed design), where the steps overshot. Newton again from
    # a hair inside, where the step can only grow the entry.
    start = x.copy()
    start[inward] = SHIFT
    f_start = obj.value(start)
    if not np.isfinite(f_start):
        return None
    return newton(obj, start, f_start, lower, iterations=20, search=True)


def _rises_inside(obj, x, i):
    """Whether the deviance rises from the bound inwards along entry ``i`` (the exact
    gradient at ``SHIFT``; on the bound itself it vanishes)."""
    inside = x.copy()
    inside[i] = SHIFT
    return bool(obj.grad(inside)[i] > 0)


COARSE_FEV = (2, 4)


def _coarse(obj, x, bounds):
    """A short bounded Nelder-Mead search with a small simplex, to find the basin.

    Like lme4's BOBYQA it moves in small steps: a gradient method started at lme4's start
    value takes a unit first step that can land on a zero variance (a stationary point)
    and stall there.
    """
    k = x.size
    steps = np.where(x > 0.5, -0.25, 0.25)  # towards the interior
    simplex = np.vstack([x] + [x + steps[i] * np.eye(k)[i] for i in range(k)])
    coarse = minimize(obj.value, x, method="Nelder-Mead", bounds=bounds,
                      options={"initial_simplex": simplex, "maxfev": COARSE_FEV[0] * k + COARSE_FEV[1],
                               "xatol": 1e-2, "fatol": 1e-3})
    return np.asarray(coarse.x)


def newton(obj, x, fx, lower, iterations=8, search=False, curvature=None):
    """Newton steps on the free coordinates with the exact gradient.

    The curvature is taken once (differences of exact gradients) and then updated by
    BFGS from the gradient that comes with every evaluation, so each further step costs
    one evaluation and the steps still converge superlinearly. The fixed point is where
    the exact gradient vanishes, a deterministic function of the data, so row order and
    group labels do not move the answer by the optimiser's tolerance (issue 11). A step
    is kept when it does not raise the deviance beyond rounding; the loop ends when the
    next step would move no coordinate by 1e-10 (relative). Returns ``(x, deviance,
    curvature)``, the last a ``(free, H)`` pair or None.

    With ``search`` (a start that may be far from the optimum: :func:`_warm_newton`) a
    curvature that is not positive definite has its eigenvalues mirrored and floored
    (a descent direction all the same), a step that raises the deviance is halved
    up to four times before giving up, and a diagonal entry may fall by at most 90% per
    step (a variance overshot to 0 would sit on a stationary point).
    """
    x = np.asarray(x, dtype=float).copy()
    if x.size == 1:
        return _newton_1d(obj, x, fx, lower, iterations, search, curvature)
    tol = 1e-12 * max(1.0, abs(fx))
    bounded = np.isfinite(lower)
    for _ in range(iterations):
        g = obj.grad(x)
        free = _free(x, g, lower, bounded=bounded)
        if free.size == 0:
            break
        if curvature is None or not np.array_equal(curvature[0], free):
            H = obj.hessian(x, g, free, HESS_STEP)
            if not np.all(np.isfinite(H)):
                break
            if not _positive_definite(H):
                if not search:
                    break  # not convex here: leave it to the check
                H = _mirrored(H)
            curvature = (free, H)
        step = _newton_step(curvature[1], g[free])
        # from a rough start a step can overshoot a variance to its bound of 0, a
        # stationary point: there each step may only take a tenth of the way
        floor = np.where(bounded, np.maximum(lower, 0.1 * x), lower) if search else lower
        for _ in range(5 if search else 1):
            trial = x.copy()
            trial[free] += step
            trial = np.maximum(trial, floor)
            moved = np.max(np.abs(trial - x) / np.maximum(1.0, np.abs(x)))
            if moved < 1e-10:
                break
            f_trial = obj.value(trial)
            if f_trial <= fx + tol:
                break
            step = step / 2
        if moved < 1e-10:
            break  # x is the root to far below the optimiser's tolerance
        if not f_trial <= fx + tol:
            break
        if search and np.any(bounded & (trial < 1e-3) & (x >= 1e-3)):
            x, fx = trial, f_trial  # heading for a zero variance: _on_bound takes over
            break
        curvature = _bfgs_update(curvature, trial[free] - x[free], obj.grad(trial)[free] - g[free])
        x, fx = trial, f_trial
    return x, float(fx), curvature


def _newton_1d(obj, x, fx, lower, iterations, search, curvature):
    """:func:`newton` for one theta entry (a random intercept alone: the model bootstrap
    and power studies refit thousands of times) on Python floats; the same steps, in a
    tenth of the array calls."""
    x0, lo = float(x[0]), float(lower[0])
    bounded = np.isfinite(lo)
    H = None if curvature is None else float(curvature[1][0, 0])
    tol = 1e-12 * max(1.0, abs(fx))

    def grad(v):
        return float(obj.grad(np.array([v]))[0])

    for _ in range(iterations):
        g = grad(x0)
        if bounded and x0 <= lo + 1e-12 and g >= 0:
            break  # held at the bound
        if H is None:
            h = HESS_STEP * max(1.0, abs(x0))
            H = (grad(x0 + h) - g) / h
            if not np.isfinite(H) or (H <= 0 and not search):
                H = None
                break
            H = max(abs(H), 1e-12)
        step = -g / H
        floor = max(lo, 0.1 * x0) if (search and bounded) else lo
        for _ in range(5 if search else 1):
            trial = max(x0 + step, floor)
            moved = abs(trial - x0) / max(1.0, abs(x0))
            if moved < 1e-10:
                break
            f_trial = obj.value(np.array([trial]))
            if f_trial <= fx + tol:
                break
            step /= 2
        if moved < 1e-10 or not f_trial <= fx + tol:
            break
        if search and bounded and trial < 1e-3 <= x0:
            x0, fx = trial, f_trial  # heading for a zero variance: _on_bound takes over
            break
        slope = (grad(trial) - g) / (trial - x0)  # the secant (BFGS in one coordinate)
        H = slope if slope > 0 else H
        x0, fx = trial, f_trial
    curv = None if H is None else (np.array([0]), np.array([[H]]))
    return np.array([x0]), float(fx), curv


_dpotrf = get_lapack_funcs("potrf", (np.empty(1),))
_dposv = get_lapack_funcs("posv", (np.empty(1),))


def _positive_definite(H):
    # LAPACK directly: np.linalg's checks cost more than the factor of a 3 x 3 matrix,
    # and this runs once per Newton step (issue 16)
    if H.shape[0] == 1:
        return bool(H[0, 0] > 0)
    return _dpotrf(H, lower=1)[1] == 0


def _mirrored(H):
    """``H`` with its eigenvalues replaced by their absolute values, floored at 1e-3 of
    the largest: positive definite, so the Newton step goes downhill."""
    w, V = np.linalg.eigh(H)
    w = np.maximum(np.abs(w), 1e-3 * max(np.abs(w).max(), 1e-12))
    return (V * w) @ V.T


def _newton_step(H, g):
    """``-H^{-1} g`` (H positive definite; a division when there is one free coordinate)."""
    if H.shape[0] == 1:
        return -g / H[0, 0]
    _, x, info = _dposv(H, g, lower=1)  # H is positive definite (checked before)
    return -x if info == 0 else -np.linalg.solve(H, g)


def _bfgs_update(curvature, s, y):
    """The curvature after a step ``s`` that changed the gradient by ``y`` (BFGS): the
    gradient comes with every evaluation, so the update is free and turns the linear
    contraction of a frozen curvature into superlinear convergence (in one coordinate it
    is the secant ``y / s``). Kept as it was when ``s'y`` is not clearly positive or the
    update is not positive definite."""
    free, H = curvature
    if H.shape[0] == 1:  # the secant
        s0, y0 = float(s[0]), float(y[0])
        return (free, np.array([[y0 / s0]])) if s0 * y0 > 0 else curvature
    sy = float(s @ y)
    Hs = H @ s
    sHs = float(s @ Hs)
    if not (sy > 1e-12 * np.sqrt(float(s @ s) * float(y @ y)) and sHs > 0):
        return curvature
    H_new = H - np.outer(Hs, Hs) / sHs + np.outer(y, y) / sy
    return (free, H_new) if _positive_definite(H_new) else curvature


def check(obj, x, lower, curvature=None, decrement_tol=1e-3):
    """Judge an optimum by the exact gradient and the curvature along each coordinate.

    ``g_j^2 / (2 h_jj)`` is how much a Newton step along free coordinate ``j`` could still
    lower the deviance (scale-free, as lme4's check of ``solve(Hessian, gradient)``);
    a coordinate on its bound with the gradient pointing outward is not free. The
    curvature of the final Newton steps is reused when given (``(free, H)``).
    """
    x = np.asarray(x, dtype=float)
    g = obj.grad(x)
    free = _free(x, g, lower)
    known = {} if curvature is None else {int(j): curvature[1][a, a] for a, j in enumerate(curvature[0])}
    gmax, dec, ok = 0.0, 0.0, True
    for j in free:
        if j in known:
            curv = known[j]
        else:
            h = HESS_STEP * max(1.0, abs(x[j]))
            e = np.zeros_like(x)
            e[j] = h
            curv = (obj.grad(x + e)[j] - g[j]) / h
        gmax = max(gmax, abs(float(g[j])))
        if np.isfinite(curv) and curv > 0:
            dec = max(dec, float(g[j] ** 2 / (2 * curv)))
        elif abs(g[j]) > 1e-3:
            ok = False
    if not np.isfinite(obj.value(x)):
        ok = False
    return {"gradient": float(gmax), "decrement": float(dec),
            "converged": bool(ok and dec < decrement_tol)}
