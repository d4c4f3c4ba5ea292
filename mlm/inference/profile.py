"""Profile-likelihood intervals: lme4's ``profile.merMod`` with the crossings found by root-finding.

For each parameter the deviance is minimised over all the others with that parameter
held at a value; the signed square root of the increase over the optimum,

    zeta(x) = sign(x - x_hat) sqrt(D_min(x) - D(x_hat)),

is nearly linear in x, and the interval at level ``1 - alpha`` is where
``zeta = -+ qnorm(1 - alpha / 2)`` (Bates, Maechler, Bolker & Walker 2015, JSS 67(1),
section 5.1). What lme4 does, and is done here too:

* The deviance profiled is the ML deviance, for REML fits as well (lme4's ``devfun2``
  calls ``refitML``): intervals are centred on the ML estimates.
* Random-effect parameters are profiled on lme4's standard-deviation/correlation scale
  with the residual SD (``sd_``, ``cor_``, ``sigma``), the fixed effects profiled out;
  bounds ``sd >= 0``, ``-1 <= cor <= 1``. A profile that reaches a bound before the
  crossing gives the bound as the limit (an SD whose profile reaches 0: lower limit 0).
* A fixed effect ``beta_j`` is profiled by fixing it and optimising the variance
  parameters. lme4 refits with ``x_j beta_j`` as an offset on the design without
  column ``j``; here the same minimum is taken from the full model's factorisation: for
  fixed theta the penalised residual sum of squares is quadratic in beta, so
  minimising over the other fixed effects gives ``r2(theta) + (b - beta_hat_j(theta))^2
  / [(R_X' R_X)^{-1}]_jj`` exactly, with no new design (tests check the identity).

Where lme4 tabulates zeta on a grid and inverts an interpolating spline, the crossing is
found here by a bracketing root-finder on zeta itself (secant steps to bracket, then
Brent's method), to 1e-6 of a standard error; every zeta evaluation re-optimises the
other parameters from the nearest point already profiled.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from mlm.engine.pls import PLSProblem, psd_cholesky, single_threaded_blas
from mlm.engine.varpar import varpar_derivatives

__all__ = ["Profiler", "varpar_names"]

_LOG2PI = np.log(2.0 * np.pi)


# --- parameters on lme4's sd/cor scale ----------------------------------------------------
def varpar_names(problem: PLSProblem, columns, group_names) -> list:
    """lme4's ``oldNames = FALSE`` name of every theta entry, in the problem's (formula) order.

    ``columns[t]`` are the column names of term ``t``, ``group_names[t]`` its factor.
    A diagonal entry is ``sd_<col>|<group>``; entry (i, j) below it is
    ``cor_<col i>.<col j>|<group>``.
    """
    names = []
    for idx, cols, g in zip(problem._idx, columns, group_names):
        for i, j in idx:
            names.append(f"sd_{cols[i]}|{g}" if i == j else f"cor_{cols[i]}.{cols[j]}|{g}")
    return names


def theta_to_sdcor(problem: PLSProblem, theta, sigma) -> np.ndarray:
    """``(theta, sigma)`` -> lme4's ``(sd..., cor..., sigma)`` in theta's layout (``Cv_to_Sv``).

    A correlation with a zero SD beside it is undefined: NaN.
    """
    out = np.empty(problem.n_theta)
    for s, idx, T in zip(problem._slices, problem._idx, problem.templates(theta)):
        C = T @ T.T
        sd = np.sqrt(np.diag(C))
        vals = []
        for i, j in idx:
            if i == j:
                vals.append(sigma * sd[i])
            else:
                vals.append(C[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan)
        out[s] = vals
    return np.append(out, sigma)


def sdcor_to_theta(problem: PLSProblem, par) -> np.ndarray | None:
    """lme4's ``Sv_to_Cv``: ``(sd..., cor..., sigma)`` -> theta; None if not a covariance."""
    par = np.asarray(par, dtype=float)
    sigma = par[-1]
    theta = np.empty(problem.n_theta)
    for s, k, idx in zip(problem._slices, problem.ks, problem._idx):
        vals = par[s]
        if k == 1:
            theta[s] = vals[0] / sigma
            continue
        sd = np.empty(k)
        R = np.eye(k)
        for v, (i, j) in zip(vals, idx):
            if i == j:
                sd[i] = v
            else:
                R[i, j] = R[j, i] = v
        if k == 2:  # closed form of the Cholesky factor
            r = R[1, 0]
            L = np.array([[sd[0], 0.0], [r * sd[1], sd[1] * np.sqrt(max(0.0, 1.0 - r * r))]])
        else:
            if np.linalg.eigvalsh(R)[0] < -1e-10:
                return None  # correlations that no covariance matrix has
            L = psd_cholesky(R * np.outer(sd, sd))
        theta[s] = [L[i, j] / sigma for i, j in idx]
    return theta


# --- numerical helpers -------------------------------------------------------------------------
class _Scaled:
    """``f`` on ``u = x / scale`` with box bounds, cached, with forward-difference gradients."""

    H = 1e-5  # difference step, in units of the scale (about a standard error)

    def __init__(self, f, lower, upper, scale):
        self.f, self.scale = f, np.asarray(scale, dtype=float)
        self.lo = np.asarray(lower, dtype=float) / self.scale
        self.hi = np.asarray(upper, dtype=float) / self.scale
        self.cache = {}

    def __call__(self, u):
        key = u.tobytes()
        if key not in self.cache:
            if len(self.cache) > 64:
                self.cache.clear()
            val = self.f(u * self.scale)
            self.cache[key] = val if np.isfinite(val) else 1e300
        return self.cache[key]

    def grad(self, u):
        f0 = self(u)
        g = np.empty_like(u)
        for i in range(u.size):
            step = self.H if u[i] + self.H <= self.hi[i] else -self.H
            v = u.copy()
            v[i] += step
            g[i] = (self(v) - f0) / step
        return g


def _quasi_newton(fs, u, B, tol=1e-8, maxiter=30):
    """BFGS from the curvature ``B`` (of the scaled problem) with an active set for the box.

    Started near the optimum with the curvature measured at the estimates, a step or two
    suffice (L-BFGS-B, starting from the identity, needs several times more evaluations).
    Returns (value, u) or None when it cannot make progress (the caller falls back).
    """
    u = np.clip(u, fs.lo, fs.hi)
    f0 = fs(u)
    g = fs.grad(u)
    for _ in range(maxiter):
        at_lo, at_hi = u <= fs.lo, u >= fs.hi
        free = ~((at_lo & (g > 0)) | (at_hi & (g < 0)))
        if not free.any():
            return f0, u
        gf = g[free]
        try:
            c = np.linalg.cholesky(B[np.ix_(free, free)])
        except np.linalg.LinAlgError:
            return None
        pf = -np.linalg.solve(c.T, np.linalg.solve(c, gf))
        slope = float(gf @ pf)
        if -slope / 2 < tol:
            return f0, u
        t = 1.0
        while True:
            un = u.copy()
            un[free] += t * pf
            un = np.clip(un, fs.lo, fs.hi)
            fn = fs(un)
            if fn <= f0 + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-3:
                return None
        gn = fs.grad(un)
        sv, yv = un - u, gn - g
        sy = float(sv @ yv)
        if sy > 1e-12:
            Bs = B @ sv
            B = B - np.outer(Bs, Bs) / float(sv @ Bs) + np.outer(yv, yv) / sy
        u, f0, g = un, fn, gn
    return None


def _minimize(f, x0, lower, upper, scale, curvature=None):
    """Minimise ``f`` within box bounds on ``x / scale``, forward-difference gradients.

    Quasi-Newton from ``curvature`` (the Hessian of ``f`` in scaled units, when given),
    falling back to L-BFGS-B. A coordinate that ends on a lower bound of 0 (an SD) is
    pushed off it and the search restarted, keeping the better answer: the deviance
    depends on an SD through its square there, so a gradient method can stall on the
    bound (mlm.engine.pls.optimize).
    """
    fs = _Scaled(f, lower, upper, scale)
    bounds = list(zip(np.where(np.isfinite(fs.lo), fs.lo, None),
                      np.where(np.isfinite(fs.hi), fs.hi, None)))

    def run(u0):
        u0 = np.clip(u0, fs.lo, fs.hi)
        if curvature is not None:
            out = _quasi_newton(fs, u0, curvature)
            if out is not None:
                return out
        res = minimize(fs, u0, jac=fs.grad, method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 300})
        return float(res.fun), np.asarray(res.x)

    best = run(np.asarray(x0, dtype=float) / fs.scale)
    for i in np.flatnonzero((fs.lo == 0) & (best[1] <= 1e-6)):
        start = best[1].copy()
        start[i] = 0.5
        trial = run(start)
        if trial[0] < best[0] - 1e-8:
            best = trial
    return best[0], best[1] * fs.scale


def _hessian(f, x, h):
    """Central-difference Hessian of ``f`` at ``x`` with steps ``h``."""
    k = x.size
    H = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / (h[i] * h[i])
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def _standard_errors(H, fallback):
    """Wald standard errors from a deviance Hessian (covariance = (H / 2)^-1), with fallbacks."""
    se = np.full(H.shape[0], np.nan)
    try:
        cov = np.linalg.inv(H / 2.0)
        d = np.diag(cov)
        if np.all(np.isfinite(d)) and np.all(d > 0):
            se = np.sqrt(d)
    except np.linalg.LinAlgError:
        pass
    bad = ~np.isfinite(se)
    diag = np.diag(H)
    cond = np.where(diag > 0, np.sqrt(2.0 / np.where(diag > 0, diag, 1.0)), np.nan)
    se[bad] = cond[bad]
    bad = ~np.isfinite(se) | (se <= 0)
    se[bad] = np.asarray(fallback)[bad]
    return se


@dataclass
class _Curve:
    """The points of one parameter's profile computed so far: x, zeta, the others' optimum."""

    points: list = field(default_factory=list)

    def start(self, x, lower, upper):
        """A start for the others at ``x``: the optimum at the nearest point profiled,
        extrapolated linearly along the profile from the two nearest (the optimum moves
        smoothly with x, so this saves most of the optimiser's iterations)."""
        pts = sorted(self.points, key=lambda p: abs(p[0] - x))
        x1, _, a1 = pts[0]
        if len(pts) < 2 or pts[1][0] == x1:
            return a1
        x2, _, a2 = pts[1]
        guess = a1 + (x - x1) * (a1 - a2) / (x1 - x2)
        return np.clip(guess, lower, upper)


def _zeta_function(objective, x_hat, others_hat, lo, hi, scale, curvature, base, seen=None):
    """zeta(x) of one parameter: sign(x - x_hat) sqrt(min over the others of the deviance - base).

    ``objective(x, others)`` is the deviance with the parameter at ``x``; the others start
    where the profile's nearest points put them (:class:`_Curve`) and are minimised within
    ``lo``/``hi`` (:func:`_minimize`, with ``scale`` and ``curvature`` as its metric).
    ``seen(dev)`` is told every minimum found (the glmer profile watches for one below the
    fit's). The one profile function of the linear variance parameters, the linear fixed
    effects and every glmer parameter.
    """
    curve = _Curve([(x_hat, 0.0, others_hat)])

    def zeta(x):
        for px, pz, _ in curve.points:
            if px == x:
                return pz
        start = curve.start(x, lo, hi)
        if np.size(start):
            dev, arg = _minimize(lambda v: objective(x, v), start, lo, hi, scale, curvature)
        else:
            dev, arg = objective(x, start), start
        if seen is not None:
            seen(dev)
        z = float(np.sign(x - x_hat) * np.sqrt(max(0.0, dev - base)))
        curve.points.append((x, z, arg))
        return z

    return zeta


# --- the profiler -------------------------------------------------------------------------------
class Profiler:
    """Profiles of one fitted model's parameters on lme4's scale.

    Parameters
    ----------
    problem : PLSProblem
        The fit's problem (REML or ML); an ML copy is profiled, as lme4 does.
    theta, sigma : the fit's estimates (start of the ML refit for REML fits).
    """

    #: A crossing is accepted when zeta is within ZTOL of its target (about ZTOL standard
    #: errors of the parameter, zeta having slope near 1 per SE), or bracketed within
    #: XTOL standard errors.
    ZTOL = 1e-6
    XTOL = 1e-7

    def __init__(self, problem: PLSProblem, theta, sigma):
        ml = copy.copy(problem)
        ml.reml = False
        self.ml = ml
        with single_threaded_blas():
            if problem.reml:
                theta, _ = ml.optimize(theta0=np.asarray(theta, dtype=float))
            theta = np.asarray(theta, dtype=float)
            sol = ml.solve(theta)
        self.theta = theta
        self.sigma = float(np.sqrt(sol.sigma2))
        self.beta = sol.beta
        self.base = float(sol.deviance)
        self.vcov_beta = sol.vcov_beta
        self.n = ml.n
        self._shift = np.asarray(getattr(ml, "beta_shift", np.zeros(ml.p)), dtype=float)
        self.est = theta_to_sdcor(ml, theta, self.sigma)   # ML sd/cor/sigma
        kinds = []
        for idx in ml._idx:
            kinds.extend("sd" if i == j else "cor" for i, j in idx)
        self.kinds = kinds + ["sigma"]
        self.lower = np.array([0.0 if k != "cor" else -1.0 for k in self.kinds])
        self.upper = np.array([np.inf if k != "cor" else 1.0 for k in self.kinds])
        self._varpar = None
        self._theta = None

    # deviance of the variance parameters on the sd/cor scale (fixed effects profiled out)
    def varpar_deviance(self, par) -> float:
        par = np.asarray(par, dtype=float)
        if par[-1] <= 0 or np.any(~np.isfinite(par)):
            return np.inf
        theta = sdcor_to_theta(self.ml, par)
        if theta is None:
            return np.inf
        return self.ml.deviance_varpar(np.append(theta, par[-1]))

    # ML deviance with beta_j fixed at b, the other fixed effects and sigma profiled out
    def fixed_deviance(self, theta, j, b) -> float:
        try:
            out = self.ml._factor(np.asarray(theta, dtype=float))
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        LX, cbeta, r2, logdet = out[5], out[6], out[7], out[8]
        # the problem's outcome is shifted by X beta_shift (mlm.pls): add it back
        beta_j = np.linalg.solve(LX.T, cbeta)[j] + self._shift[j]
        e = np.zeros(LX.shape[0])
        e[j] = 1.0
        w = np.linalg.solve(LX, e)
        r2b = r2 + (b - beta_j) ** 2 / float(w @ w)
        if not r2b > 0:
            return np.inf
        return float(logdet + self.n * (1.0 + _LOG2PI + np.log(r2b / self.n)))

    def _curvature(self):
        """Hessian of the sd/cor/sigma deviance at the estimates and the Wald SEs from it."""
        if self._varpar is None:
            x = self.est.copy()
            cor = np.array(self.kinds) == "cor"
            rough = np.where(cor, 0.1, np.maximum(np.abs(x), 1e-3 * self.sigma) * 0.1)
            h = np.where(cor, 1e-4, 1e-4 * np.maximum(np.abs(x), 1e-2 * self.sigma))
            # keep central differences inside the bounds (an SD at 0, a correlation at 1)
            xs = np.clip(np.where(np.isnan(x), 0.0, x), self.lower + 2 * h, self.upper - 2 * h)
            H = _hessian(self.varpar_deviance, xs, h)
            self._varpar = (H, _standard_errors(H, rough))
        return self._varpar

    @property
    def varpar_se(self) -> np.ndarray:
        """Wald SEs of the sd/cor/sigma parameters (scales for the optimiser and first steps)."""
        return self._curvature()[1]

    def _theta_curvature(self):
        """Hessian of the ML deviance in theta at the estimates, and SEs of theta from it."""
        if self._theta is None:
            if self.ml.has_gradient:
                # The deviance with sigma profiled out, d(theta) = min_sigma D(theta, sigma),
                # has Hessian D_tt - D_ts D_ss^{-1} D_st at sigma = sigma(theta): the Schur
                # complement of Satterthwaite's Hessian (mlm.engine.varpar, 2 k + 1
                # factorisations against 2 k^2 + 1 for second differences)
                with single_threaded_blas():
                    D = varpar_derivatives(self.ml, self.theta, self.sigma).hessian
                H = D[:-1, :-1] - np.outer(D[:-1, -1], D[-1, :-1]) / D[-1, -1]
            else:
                h = 1e-4 * np.maximum(np.abs(self.theta), 1e-2)
                H = _hessian(self.ml.deviance, self.theta, h)
            fallback = np.maximum(np.abs(self.theta), 0.05) * 0.2
            self._theta = (H, _standard_errors(H, fallback))
        return self._theta

    # --- zeta functions -----------------------------------------------------------------------
    def _zeta_varpar(self, w):
        """zeta(x) for variance parameter ``w`` (index into the sd/cor/sigma vector)."""
        others = np.array([i for i in range(self.est.size) if i != w])
        lo, hi = self.lower[others], self.upper[others]
        lo = np.where(np.array(self.kinds)[others] == "sigma", 1e-8 * self.sigma, lo)
        H, se = self._curvature()
        scale = se[others]
        full = self.est.copy()

        def objective(x, v):
            full[others] = v
            full[w] = x
            return self.varpar_deviance(full)

        return _zeta_function(objective, self.est[w], self.est[others], lo, hi, scale,
                              H[np.ix_(others, others)] * np.outer(scale, scale), self.base)

    def _zeta_fixed(self, j):
        lower = self.ml.theta_lower()
        H, scale = self._theta_curvature()
        return _zeta_function(lambda b, th: self.fixed_deviance(th, j, b), self.beta[j],
                              self.theta, lower, np.full(lower.size, np.inf), scale,
                              H * np.outer(scale, scale), self.base)

    # --- crossings ------------------------------------------------------------------------------
    def limit(self, zeta, est, se, target, lo=-np.inf, hi=np.inf):
        """The x where ``zeta(x) = target``, or the bound reached first (lme4's rule).

        zeta is nearly linear, so secant steps from the estimate (the first one
        ``target`` standard errors) usually land within ``ZTOL`` in three or four
        evaluations; once the crossing is bracketed a step that would leave the bracket
        is replaced by a regula-falsi step (Illinois variant), so the search always
        converges.
        """
        sign = 1.0 if target > 0 else -1.0
        inside = (est, 0.0)      # nearest point known to lie before the crossing
        beyond = None            # a point known to lie past it
        prev = inside
        x = min(max(est + target * se, lo), hi)
        side = 0
        for _ in range(80):
            z = zeta(x)
            if not np.isfinite(z):
                return np.nan
            if abs(z - target) < self.ZTOL:
                return x
            if (z - target) * sign > 0:
                if beyond is not None and side == 1:  # Illinois: halve the stale end's weight
                    inside = (inside[0], target + (inside[1] - target) / 2)
                beyond, side = (x, z), 1
            else:
                if x == lo or x == hi:
                    return x  # the profile reaches the bound before the crossing
                if beyond is not None and side == -1:
                    beyond = (beyond[0], target + (beyond[1] - target) / 2)
                inside, side = (x, z), -1
            if beyond is not None and abs(beyond[0] - inside[0]) < self.XTOL * se:
                return x
            # secant through the last two points
            dz = z - prev[1]
            cand = x + (target - z) * (x - prev[0]) / dz if dz != 0 else np.nan
            if beyond is None:
                if not np.isfinite(cand) or (cand - x) * sign <= 0:
                    cand = x + 2 * (x - prev[0])  # flat or turning: keep going outward
                step = cand - x
                step = np.sign(step) * min(abs(step) * 1.02 + 1e-3 * se, 10 * abs(x - est))
                cand = min(max(x + step, lo), hi)
            else:
                a, b = sorted((inside[0], beyond[0]))
                if not (np.isfinite(cand) and a < cand < b):  # regula falsi in the bracket
                    (xa, za), (xb, zb) = inside, beyond
                    cand = xa + (target - za) * (xb - xa) / (zb - za)
                    if not a < cand < b:
                        cand = 0.5 * (a + b)
            prev = (x, z)
            x = cand
        return x

    def varpar_interval(self, w, zcrit):
        """(low, high) for variance parameter ``w``; flags (on_boundary) as a third item."""
        est = self.est[w]
        if np.isnan(est):
            return np.nan, np.nan, "undefined"
        se = self.varpar_se[w]
        zeta = self._zeta_varpar(w)
        lo, hi = self.lower[w], self.upper[w]
        if self.kinds[w] == "sigma":
            lo = 1e-10 * est  # the deviance is infinite at sigma = 0
        flag = None
        if est <= lo + 1e-8 * max(1.0, self.sigma):
            low, flag = lo, "lower"
            # lme4 starts the profile a step off the bound (0.001 for an SD at 0)
            se = max(se, 1e-3)
        else:
            low = self.limit(zeta, est, se, -zcrit, lo, hi)
        if est >= hi - 1e-8:
            high, flag = hi, "upper"
        else:
            high = self.limit(zeta, est, se, zcrit, lo, hi)
        return low, high, flag

    def fixed_interval(self, j, zcrit):
        se = float(np.sqrt(self.vcov_beta[j, j]))
        zeta = self._zeta_fixed(j)
        return (self.limit(zeta, self.beta[j], se, -zcrit),
                self.limit(zeta, self.beta[j], se, zcrit))
