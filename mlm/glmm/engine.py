"""lme4's Laplace approximation and adaptive Gauss-Hermite quadrature for GLMMs.

The engine of :func:`mlm.glmer`. For relative covariance factors ``theta`` and fixed
effects ``beta``, penalised iteratively reweighted least squares (PIRLS) finds the
conditional mode ``u`` of the spherical random effects, the maximiser of
``log p(y | u) - |u|^2 / 2`` (Bates, Maechler, Bolker & Walker 2015, JSS 67(1),
section 5). The Laplace approximation of -2 log-likelihood is then

    ``-2 log p(y | u) + |u|^2 + log |Lambda' Z' W Z Lambda + I|``

with ``W`` lme4's IRLS (Fisher) weights at the mode, and ``log p(y | u)`` including the
normalising constants, as R's ``logLik``. For a single scalar random-effects term the
integral over each level's effect is one-dimensional and adaptive Gauss-Hermite
quadrature (``nagq`` nodes centred at the mode and scaled by its curvature; Pinheiro &
Bates 1995) replaces the Laplace approximation, which is its one-node case.

Optimisation follows lme4's ``glmer``: stage 1 minimises over ``theta`` with ``beta``
and ``u`` both from PIRLS (lme4's ``nAGQ = 0`` criterion), stage 2 over
``(theta, beta)`` jointly with PIRLS over ``u`` only. Unlike lme4, PIRLS is iterated to
the precision of the arithmetic (lme4's default tolerance leaves the log-likelihood up
to 4e-4 low: field notes), and the answer is polished by Newton steps. The covariance of
the fixed effects is lme4's: twice the inverse Hessian of the deviance in
``(theta, beta)``, its ``beta`` block (``vcov.merMod``'s ``use.hessian``).

With one grouping factor, a canonical link and the Laplace approximation, both stages
use the exact gradient of :mod:`mlm.glmm.gradient` (an adjoint through the modes, about
the cost of one PIRLS step), and the Hessian is formed from differences of it; otherwise
derivatives are finite differences of the deviance. On 100,000 binary rows in 2,000
groups with ``(x | g)`` that takes a fit from 155 deviance evaluations to 29 (issue 14;
``benchmarks/glmer_bench.py``).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from mlm.engine.pls import single_threaded_blas, theta_scale
from mlm.errors import FitError
from mlm.glmm.gradient import (CANONICAL, free_coordinates, hessian_from_gradient, laplace_gradient,
                               line_search, negligible_gain, newton_with_gradient,
                               supports_gradient)
from mlm.glmm.structure import OneFactor, make_structure

__all__ = ["GLMMProblem"]


class _PIRLSFailure(Exception):
    pass


class GLMMProblem:
    """The Laplace / AGQ deviance of one GLMM as a function of ``(theta, beta)``.

    Parameters
    ----------
    y : ndarray, shape (n,)
        The outcome: 0/1 or a proportion (binomial), a count (Poisson).
    X : ndarray, shape (n, p)
        Fixed-effects columns (full column rank).
    terms : sequence of (Z, codes, n_levels, group_name)
        The random-effects terms, as :meth:`mlm.design.Design.pls_terms` gives them.
    family : mlm.glmm.family.Family
    weights : ndarray, shape (n,)
        Prior weights: the number of trials of a binomial proportion, else 1.
    offset : ndarray, shape (n,)
        Known part of the linear predictor.
    nagq : int
        1 for the Laplace approximation; more for adaptive Gauss-Hermite quadrature
        (one scalar random-effects term only).
    """

    def __init__(self, y, X, terms, family, weights, offset, nagq=1):
        self.y = np.asarray(y, dtype=float)
        self.X = np.asarray(X, dtype=float)
        self.n, self.p = self.X.shape
        self.family = family
        self.weights = np.asarray(weights, dtype=float)
        self.offset = np.asarray(offset, dtype=float)
        self._const = family.constant(self.y, self.weights)
        # the log-likelihood's sum as dot products with these (formed once): binomial
        # k log(mu) + (w - k) log(1 - mu), Poisson w y log(mu) - w mu, plus the constants
        self._ll_terms = (self.weights * self.y,
                          self.weights * (1.0 - self.y) if family.name == "binomial" else self.weights,
                          float(np.sum(self._const)))
        self.rs = make_structure(terms)
        self.nagq = int(nagq)
        self.n_theta = self.rs.n_theta
        self._u = np.zeros(self.rs.q)
        self.theta_scale = theta_scale(terms, self.rs.idx)
        sd = self.X.std(axis=0)
        rms = np.sqrt(np.mean(self.X ** 2, axis=0))
        spread = np.where(sd > 1e-8 * rms, sd, rms)
        # the optimiser works in beta * spread of its column: unit-free, as theta (mlm.pls)
        self.beta_scale = np.where(spread > 0, spread, 1.0)
        if self.nagq > 1:
            if not (isinstance(self.rs, OneFactor) and self.rs.k == 1):
                raise FitError("nagq > 1 (adaptive Gauss-Hermite quadrature) needs a single scalar "
                               "random-effects term such as (1 | g), as in lme4.")
            z, w = np.polynomial.hermite_e.hermegauss(self.nagq)
            self._nodes, self._logw = z, np.log(w / np.sqrt(2 * np.pi))
        #: the exact gradient is available (Laplace, one grouping factor, canonical link)
        self.has_gradient = supports_gradient(self)
        #: Fisher scoring is Newton's method (canonical links): PIRLS converges quadratically
        self._newton_pirls = (family.name, family.link) in CANONICAL

    # --- the conditional distribution ---------------------------------------------------
    def _cond(self, eta):
        fam = self.family
        mu = fam.linkinv(eta)
        mu_eta = fam.mu_eta(eta)
        var = fam.variance(mu)
        return mu, mu_eta, var

    def cond_loglik(self, eta):
        """Row-wise log p(y | eta)."""
        return self.family.loglik(self.y, self.family.linkinv(eta), self.weights, self._const)

    # --- PIRLS ----------------------------------------------------------------------------
    def pirls(self, theta, beta=None, u0=None, maxit=40, b0=None):
        """Conditional modes at ``theta`` (and ``beta``; ``None``: ``beta`` joins the search).

        Returns ``(u, beta, eta, factor)`` with the factor of ``Lambda'Z'WZLambda + I`` at
        the mode. Fisher scoring steps with step halving, stopped after the step whose
        decrement is below 1e-10 when they are Newton steps (canonical links: convergence
        is quadratic, and the decrement after that step is about 1e-25), one step later
        otherwise (linear convergence), which takes the mode to rounding precision.
        The mean at each ``eta`` is computed once and serves both the log-likelihood and
        the weights; with ``beta`` fixed, ``offset + X beta`` is formed once.
        """
        rs, fam = self.rs, self.family
        joint = beta is None
        u = np.zeros(rs.q) if u0 is None else np.array(u0, dtype=float)
        b = np.zeros(self.p) if joint else np.asarray(beta, dtype=float)
        if joint:
            b = self.glm_start if b0 is None else np.array(b0, dtype=float)
        fixed = None if joint else self.offset + self.X @ b

        def linear(u_, b_):
            return (self.offset + self.X @ b_ if joint else fixed) + rs.linpred(theta, u_)

        def objective(eta_, u_):
            mu_ = fam.linkinv(eta_)
            return mu_, -2.0 * self._loglik_sum(mu_) + u_ @ u_

        eta = linear(u, b)
        mu, obj = objective(eta, u)
        last = False
        for _ in range(maxit):
            w, r = self._irls(eta, mu)
            F = rs.factor(theta, w)
            su = rs.crossprod(theta, r) - u
            if joint:
                du, db, dec = self._joint_step(theta, F, w, r, su)
            else:
                du = F.solve(su)
                db, dec = np.zeros(self.p), float(su @ du)
            if not np.isfinite(dec):
                raise _PIRLSFailure
            step = 1.0
            while True:
                u_new, b_new = u + step * du, b + step * db
                eta_new = linear(u_new, b_new)
                mu_new, obj_new = objective(eta_new, u_new)
                if obj_new <= obj + 1e-10 * max(1.0, abs(obj)):
                    break
                step /= 2
                if step < 1e-3:  # no descent left in this direction: at the mode's precision
                    break
            if step < 1e-3:
                break
            u, b, eta, mu, obj = u_new, b_new, eta_new, mu_new, obj_new
            if last or (dec < 1e-10 and self._newton_pirls):
                break
            last = dec < 1e-10
        F = rs.factor(theta, self._irls(eta, mu)[0])
        self._mode_objective = (eta, obj)  # -2 log p(y | u) + |u|^2 there, for the deviance
        return u, b, eta, F

    def _loglik_sum(self, mu):
        """``sum_i log p(y_i | mu_i)``, constants included (:meth:`Family.loglik`, summed)."""
        a, b, const = self._ll_terms
        if self.family.name == "binomial":
            return float(a @ np.log(mu) + b @ np.log1p(-mu) + const)
        return float(a @ np.log(mu) - b @ mu + const)

    def _irls(self, eta, mu):
        """IRLS weights ``w mu_eta^2 / V(mu)`` and scores ``w (y - mu) mu_eta / V(mu)``.

        For a canonical link ``mu_eta = V(mu)`` (R's guards keep both at the same floor), so
        they are ``w V(mu)`` and ``w (y - mu)``.
        """
        if self._newton_pirls:
            return self.weights * self.family.variance(mu), self._ll_terms[0] - self.weights * mu
        mu_eta, var = self.family.mu_eta(eta), self.family.variance(mu)
        return self.weights * mu_eta ** 2 / var, self.weights * (self.y - mu) * mu_eta / var

    def _penalised(self, eta, u):
        """``-2 log p(y | u) + |u|^2`` at the mode PIRLS just found (computed there once)."""
        cached = getattr(self, "_mode_objective", None)
        if cached is not None and cached[0] is eta:
            return cached[1]
        return float(-2.0 * np.sum(self.cond_loglik(eta)) + u @ u)

    def _joint_step(self, theta, F, w, r, su):
        """The Newton step in ``(u, beta)`` by the Schur complement of the ``u`` block."""
        B = self.rs.crossprod(theta, w[:, None] * self.X)          # Lambda'Z'WX, (q, p)
        AiB = F.solve(B)
        S = self.X.T @ (w[:, None] * self.X) - B.T @ AiB
        sb = self.X.T @ r
        Ai_su = F.solve(su)
        db = np.linalg.solve(S, sb - B.T @ Ai_su)
        du = Ai_su - AiB @ db
        return du, db, float(su @ du + sb @ db)

    @functools.cached_property
    def glm_start(self):
        """Fixed effects of the single-level GLM (IRLS), PIRLS's start in stage 1."""
        fam = self.family
        ybar = (self.weights * self.y + 0.5) / (self.weights + 1.0) if fam.name == "binomial" else self.y + 0.1
        eta = fam.linkfun(ybar)
        beta = np.zeros(self.p)
        for _ in range(25):
            mu, mu_eta, var = self._cond(eta)
            w = self.weights * mu_eta ** 2 / var
            z = eta - self.offset + (self.y - mu) / mu_eta
            new = np.linalg.lstsq(self.X * np.sqrt(w)[:, None], z * np.sqrt(w), rcond=None)[0]
            eta = self.offset + self.X @ new
            if np.max(np.abs(new - beta)) < 1e-10 * (1 + np.max(np.abs(new))):
                beta = new
                break
            beta = new
        return beta

    # --- deviances ------------------------------------------------------------------------
    def deviance(self, theta, beta):
        """-2 log-likelihood at ``(theta, beta)``: Laplace (``nagq = 1``) or AGQ."""
        try:
            u, _, eta, F = self.pirls(theta, beta, self._u)
        except (_PIRLSFailure, np.linalg.LinAlgError, ValueError, FloatingPointError):
            try:
                u, _, eta, F = self.pirls(theta, beta, None)
            except (_PIRLSFailure, np.linalg.LinAlgError, ValueError, FloatingPointError):
                return np.inf
        self._u, self._eta = u, eta
        if self.nagq > 1:
            return self._agq(theta, u, eta, F)
        return float(self._penalised(eta, u) + F.logdet)

    def deviance_gradient(self, theta, beta):
        """The Laplace deviance and its exact gradient in ``(theta, beta)`` (needs ``has_gradient``)."""
        dev = self.deviance(theta, beta)
        if not np.isfinite(dev):
            return dev, np.zeros(self.n_theta + self.p)
        u, eta = self._u, self._eta
        k = self.n_theta
        return dev, _exact_or_differences(
            lambda: laplace_gradient(self, theta, u, eta),
            lambda z: self.deviance(z[:k], z[k:]), np.concatenate([theta, beta]))

    def _agq(self, theta, u, eta, F):
        """Adaptive Gauss-Hermite quadrature, level by level, for one scalar term."""
        rs = self.rs
        G, codes = rs.G, rs.codes
        zt = rs.Z[:, 0] * float(np.asarray(theta)[0])
        sd = 1.0 / F.diag_sqrt()                       # posterior scale of u per level
        base = eta - zt * u[codes]
        terms = np.empty((len(self._nodes), G))
        for j, z in enumerate(self._nodes):
            uj = u + z * sd
            ll = np.bincount(codes, weights=self.cond_loglik(base + zt * uj[codes]), minlength=G)
            terms[j] = self._logw[j] + ll - 0.5 * uj * uj + 0.5 * z * z
        return float(np.sum(-2.0 * logsumexp(terms, axis=0) + 2.0 * np.log(F.diag_sqrt())))

    def deviance_stage1(self, theta):
        """lme4's ``nAGQ = 0`` criterion: ``beta`` and ``u`` both at their joint mode."""
        warm = getattr(self, "_stage1", None)
        try:
            try:
                u0, b0 = warm if warm is not None else (None, None)
                u, b, eta, F = self.pirls(theta, None, u0, b0=b0)
            except (_PIRLSFailure, np.linalg.LinAlgError, ValueError, FloatingPointError):
                u, b, eta, F = self.pirls(theta, None, None)
        except (_PIRLSFailure, np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf, None
        self._stage1 = (u, b)
        self._eta1 = eta
        return float(self._penalised(eta, u) + F.logdet), b

    def stage1_gradient(self, theta):
        """lme4's ``nAGQ = 0`` criterion, its exact gradient in ``theta``, and ``beta`` there."""
        dev, b = self.deviance_stage1(theta)
        if b is None or not np.isfinite(dev):
            return dev, np.zeros(self.n_theta), b
        u, eta = self._stage1[0], self._eta1
        g = _exact_or_differences(lambda: laplace_gradient(self, theta, u, eta, beta_fixed=False),
                                  lambda z: self.deviance_stage1(z)[0], np.asarray(theta, dtype=float))
        self._stage1 = (u, b)  # the warm start at theta, not at a difference's step
        return dev, g, b

    # --- optimisation ---------------------------------------------------------------------
    def _split(self, x):
        k = self.n_theta
        return x[:k] * self.theta_scale, x[k:] / self.beta_scale

    def _lower(self):
        return np.concatenate([self.rs.theta_lower(), np.full(self.p, -np.inf)])

    def optimize(self):
        """Both stages, then Newton polishing; returns ``(theta, beta, info)``."""
        with single_threaded_blas(), np.errstate(all="ignore"):
            return self._optimize()

    def _optimize(self):
        counter = [0]
        lower_t = self.rs.theta_lower()
        bounds_t = [(0.0 if np.isfinite(lo) else None, None) for lo in lower_t]
        beta_at = {}
        grad = self.has_gradient

        def f1(xt):
            counter[0] += 1
            if grad:  # the exact gradient: a few evaluations instead of 2 m + 1 per step
                dev, g, b = self.stage1_gradient(xt * self.theta_scale)
            else:
                dev, b = self.deviance_stage1(xt * self.theta_scale)
            if b is not None:
                beta_at["b"] = b
                beta_at[np.asarray(xt, dtype=float).tobytes()] = b
            if not grad:
                return dev
            g = g * self.theta_scale
            return dev, _bound_slopes(lambda z: self.deviance_stage1(z * self.theta_scale)[0],
                                      xt, dev, g, lower_t, counter)

        opts = {"ftol": 1e-8, "gtol": 1e-4, "maxiter": 200}
        res = minimize(f1, self.rs.theta_start() / self.theta_scale, method="L-BFGS-B",
                       jac=grad, bounds=bounds_t, options=opts)
        # A gradient method's first step from lme4's start can land on a zero variance,
        # a stationary point of the deviance (field notes); restart off such a bound.
        for i in np.flatnonzero(np.isfinite(lower_t) & (res.x < 1e-3)):
            start = np.asarray(res.x).copy()
            start[i] = 0.5 / self.theta_scale[i]
            trial = minimize(f1, start, method="L-BFGS-B", jac=grad, bounds=bounds_t, options=opts)
            if trial.fun < res.fun - 1e-7:
                res = trial
        xt = np.asarray(res.x)
        if xt.tobytes() not in beta_at:  # the search's answer was not its last evaluation
            f1(xt)
        beta0 = beta_at.get(xt.tobytes(), beta_at.get("b", self.glm_start))
        if getattr(self, "_stage1", None) is not None:
            self._u = self._stage1[0]  # stage 2's first PIRLS starts from stage 1's modes
        x = np.concatenate([xt, beta0 * self.beta_scale])

        def f2(x):
            counter[0] += 1
            th, b = self._split(x)
            return self.deviance(th, b)

        def f2g_exact(x):
            counter[0] += 1
            th, b = self._split(x)
            dev, g = self.deviance_gradient(th, b)
            return dev, self._scale_gradient(g)

        def f2g(x):  # for the bounded quasi-Newton search (Newton leaves bounded coordinates out)
            dev, g = f2g_exact(x)
            return dev, _bound_slopes(f2, x, dev, g, lower, counter)

        def newton(x, fx, iterations=10):
            if grad:
                return newton_with_gradient(f2g_exact, x, lower, NEWTON_STEP, iterations)
            return _newton(f2, x, fx if fx is not None else f2(x), lower, iterations)

        lower = self._lower()
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        n1 = counter[0]
        # Stage 1's answer is usually close to stage 2's: Newton steps from there finish in
        # a few evaluations. When they do not (an indefinite Hessian, a variance near its
        # bound, a slow crawl), the quasi-Newton search takes over as lme4's stage 2 does.
        x, fx, H, gr, free = newton(x, None, iterations=10)
        decrement = _decrement(H, gr)
        interior = np.all(x[:self.n_theta][np.isfinite(lower[:self.n_theta])] > 1e-2)
        if grad and decrement < 1e-6 and not interior:
            interior = _stationary_at_bounds(f2, x, fx, lower, free)
        n2 = counter[0]
        if not (decrement < 1e-6 and interior):
            best = self._polish(f2g if grad else f2, x, bounds, grad)
            for i in np.flatnonzero(np.isfinite(lower[:self.n_theta]) & (best[1][:self.n_theta] < 1e-3)):
                start = best[1].copy()
                start[i] = 0.5
                trial = self._polish(f2g if grad else f2, start, bounds, grad)
                if trial[0] < best[0] - 1e-7:
                    best = trial
            n2 = counter[0]
            x, fx, H, gr, free = newton(best[1], best[0])
            decrement = _decrement(H, gr)
        theta, beta = self._split(x)
        self.deviance(theta, beta)  # leave the modes at the answer
        return theta, beta, {"deviance": fx, "evaluations": counter[0], "hessian_scaled": H,
                             "free": free, "x": x, "gradient": float(np.max(np.abs(gr), initial=0.0)),
                             "decrement": decrement, "converged": bool(decrement < 1e-3),
                             "phases": (n1, n2 - n1, counter[0] - n2)}

    def _scale_gradient(self, g):
        """A gradient in ``(theta, beta)`` -> in the optimiser's units (see :meth:`_split`)."""
        k = self.n_theta
        return np.concatenate([g[:k] * self.theta_scale, g[k:] / self.beta_scale])

    @staticmethod
    def _polish(f, x, bounds, jac=False):
        best = None
        for _ in range(3):
            res = minimize(f, x, method="L-BFGS-B", jac=jac, bounds=bounds,
                           options={"ftol": 1e-12, "gtol": 1e-6, "maxiter": 1000, "eps": 1e-7})
            if best is None or res.fun < best[0] - 1e-9:
                best = (float(res.fun), np.asarray(res.x))
                x = best[1]
            else:
                break
        return best

    def hessian(self, x, free=None):
        """Central-difference Hessian of the deviance in the optimiser's units at ``x``."""
        def f(z):
            th, b = self._split(z)
            return self.deviance(th, b)

        def fg(z):
            th, b = self._split(z)
            dev, g = self.deviance_gradient(th, b)
            return dev, self._scale_gradient(g)
        with single_threaded_blas(), np.errstate(all="ignore"):
            if self.has_gradient:
                free = list(range(x.size)) if free is None else list(free)
                h = NEWTON_STEP * np.maximum(1.0, np.abs(x))
                return hessian_from_gradient(fg, x, free, h), fg(x)[1][free]
            return _hessian(f, x, f(x), free)

    def vcov_beta(self, x, H=None, free=None):
        """lme4's Hessian-based covariance of the fixed effects (``vcov.merMod``).

        ``2 H^{-1}`` restricted to ``beta``, with ``H`` the Hessian of the deviance in
        ``(theta, beta)``. A variance estimated at zero is left out of ``H`` (the
        deviance is even in it there, so its cross-derivatives vanish).
        """
        k = self.n_theta
        lower = self._lower()
        if H is None or free is None:
            free = [j for j in range(x.size) if not (np.isfinite(lower[j]) and x[j] < 1e-4)]
            H = self.hessian(x, free)[0]
        try:
            Hi = np.linalg.inv(H)
        except np.linalg.LinAlgError:
            return None
        pos = [free.index(j) for j in range(k, x.size)]
        V = 2.0 * Hi[np.ix_(pos, pos)] / np.outer(self.beta_scale, self.beta_scale)
        # A Hessian that is singular to rounding (separation: an estimate running off to
        # infinity) inverts to a non-positive variance there: no standard error, not a
        # square root of a negative number.
        bad = ~(np.diag(V) > 0)
        if bad.any():
            V = V.copy()
            V[bad, :] = np.nan
            V[:, bad] = np.nan
        return V


NEWTON_STEP = 1e-4
#: the one-sided step off a zero variance (optimiser's units) for :func:`_bound_slopes`
BOUND_STEP = 1e-2


def _bound_slopes(f, x, fx, g, lower, counter):
    """Replace the gradient of every variance parameter sitting at zero by a one-sided slope.

    The deviance is even in a diagonal ``theta`` entry at zero, so its exact derivative
    there vanishes and a gradient method that lands on the bound (its first step from
    lme4's start often does: field notes) would stop at a stationary point that can be a
    maximum. The secant ``(f(x + d e_i) - f(x)) / d`` says whether moving off the bound
    lowers the deviance, as the finite differences of a derivative-free search would.
    """
    n = len(lower)
    at_bound = [i for i in range(n) if np.isfinite(lower[i]) and x[i] <= lower[i]]
    if not at_bound or not np.isfinite(fx):
        return g
    g = g.copy()
    for i in at_bound:
        e = np.zeros_like(x)
        e[i] = BOUND_STEP
        counter[0] += 1
        g[i] = (f(x + e) - fx) / BOUND_STEP
    return g


def _exact_or_differences(exact, f, x):
    """The exact gradient, or central differences of ``f`` where it cannot be formed.

    Under (quasi-)separation the fixed-effects block of the modes' Hessian is singular to
    rounding and the adjoint solve fails; the deviance itself is still defined there.
    """
    try:
        g = exact()
        if np.all(np.isfinite(g)):
            return g
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        pass
    g = np.empty(x.size)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = 1e-5 * max(1.0, abs(x[j]))
        g[j] = (f(x + e) - f(x - e)) / (2.0 * e[j])
    return g


def _stationary_at_bounds(f, x, fx, lower, free):
    """Whether ``x`` is a minimum on the bounds: every bounded coordinate left out of the
    Newton steps sits exactly at its bound, and moving it off the bound raises ``f``.

    Newton's converged answer with a variance at zero is then the optimum (the search
    restarted off a zero variance already in stage 1), and the polishing searches would
    only confirm it at the cost of dozens of evaluations.
    """
    fixed = [i for i in range(len(lower)) if np.isfinite(lower[i]) and i not in free]
    if any(x[i] > lower[i] for i in fixed):
        return False  # a coordinate frozen just inside its bound: not settled
    for i in fixed:
        e = np.zeros_like(x)
        e[i] = BOUND_STEP
        if not f(x + e) > fx:
            return False
    return True


def _decrement(H, grad):
    """``grad' H^-1 grad``: how much a Newton step could still lower the deviance (x2)."""
    try:
        np.linalg.cholesky(H)
        return float(grad @ np.linalg.solve(H, grad))
    except np.linalg.LinAlgError:
        return np.inf


def _hessian(f, x, fx, free=None, h=None):
    """Central-difference Hessian over ``free`` coordinates (all when None)."""
    free = list(range(x.size)) if free is None else list(free)
    h = NEWTON_STEP * np.maximum(1.0, np.abs(x)) if h is None else h
    m = len(free)
    H = np.empty((m, m))
    up, dn = {}, {}
    for a, j in enumerate(free):
        e = np.zeros_like(x)
        e[j] = h[j]
        up[j], dn[j] = f(x + e), f(x - e)
        H[a, a] = (up[j] - 2 * fx + dn[j]) / h[j] ** 2
    for a, j in enumerate(free):
        for c in range(a):
            i = free[c]
            e = np.zeros_like(x)
            e[j], e[i] = h[j], h[i]
            fpp = f(x + e)
            fmm = f(x - e)
            H[a, c] = H[c, a] = (fpp - up[j] - up[i] + 2 * fx - dn[j] - dn[i] + fmm) / (2 * h[i] * h[j])
    grad = np.array([(up[j] - dn[j]) / (2 * h[j]) for j in free])
    return H, grad


def _newton(f, x, fx, lower, iterations=10):
    """Newton steps on central differences (free coordinates); returns ``(x, f, H, grad, free)``.

    The fixed point is where central slopes vanish, so the answer does not depend on
    where a quasi-Newton search happened to stop. The Hessian is reused across steps
    with fresh slopes, and recomputed once the answer has moved away from where it was
    taken, so that the one returned (for the covariance of the estimates) is the
    Hessian at the answer. ``grad' H^-1 grad`` with the last slopes is what a step could
    still gain (the convergence check).
    """
    x = np.asarray(x, dtype=float).copy()
    h = NEWTON_STEP * np.maximum(1.0, np.abs(x))
    free = free_coordinates(x, h, lower)
    H, grad = _hessian(f, x, fx, free, h)
    x_h = x.copy()
    for _ in range(iterations):
        try:
            np.linalg.cholesky(H)
            step = -np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        if negligible_gain(grad, step, fx):
            if np.max(np.abs(x - x_h) / np.maximum(1.0, np.abs(x))) > 1e-4:
                H, grad = _hessian(f, x, fx, free, h)
                x_h = x.copy()
                continue
            break
        trial, ft = line_search(f, x, step, free, lower, fx)
        if trial is None:
            break
        moved = np.max(np.abs(trial - x) / np.maximum(1.0, np.abs(x)))
        x, fx = trial, ft
        if moved > 1e-2:  # far from where H was taken: a fresh one (full Newton step)
            H, grad = _hessian(f, x, fx, free, h)
            x_h = x.copy()
            continue
        grad = np.empty(len(free))
        for a, j in enumerate(free):
            e = np.zeros_like(x)
            e[j] = h[j]
            grad[a] = (f(x + e) - f(x - e)) / (2 * h[j])
    return x, float(fx), H, grad, free
