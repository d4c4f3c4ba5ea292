"""Profile-likelihood intervals for :func:`mlm.glmer` fits: lme4's ``profile.merMod`` for GLMMs.

For a glmer fit lme4 profiles the fit's own criterion (the Laplace deviance, or AGQ with
the fit's ``nAGQ``) as a function of the random-effect SDs and correlations (its
``sd_`` / ``cor_`` scale; a GLMM has no ``sigma``) and the fixed effects together:

* a variance parameter is held at a value while the deviance is minimised over the
  other variance parameters and all the fixed effects (lme4's ``devfun2`` calls the
  deviance of ``c(theta, beta)``);
* a fixed effect ``beta_j`` is held at a value while the deviance is minimised over the
  variance parameters and the other fixed effects (lme4 refits with ``x_j beta_j`` as an
  offset: the same minimum).

Both are one rule on the joint vector ``(sd/cor, beta)``, so one zeta function serves
every row. The signed root ``zeta(x) = sign(x - x_hat) sqrt(D_min(x) - D_hat)`` is then
inverted at ``-+ qnorm((1 + level) / 2)`` by the root-finder of the linear profile
(:meth:`mlm.inference.profile.Profiler.limit`: secant steps, then regula falsi, to 1e-6
of a standard error), with the same bound rules (an SD whose profile reaches 0 gets the
lower limit 0; a correlation is bounded by -1 and 1). lme4 tabulates zeta on a grid and
inverts an interpolating spline instead (Bates, Maechler, Bolker & Walker 2015, JSS 67(1),
section 5.1).
"""

from __future__ import annotations

import numpy as np

from mlm.engine.pls import single_threaded_blas
from mlm.inference.profile import (Profiler, _hessian, _standard_errors, _zeta_function,
                                   sdcor_to_theta, theta_to_sdcor)

__all__ = ["GLMMProfiler"]


class _Layout:
    """Theta's layout of a GLMM's random-effects structure under the names the sd/cor
    conversions of :mod:`mlm.inference.profile` read (``_slices``, ``ks``, ``_idx``)."""

    def __init__(self, rs):
        self._slices, self.ks, self._idx = rs.slices, rs.ks, rs.idx
        self.n_theta = rs.n_theta
        self.templates = rs.templates


class GLMMProfiler(Profiler):
    """Profiles of a glmer fit's SDs, correlations and fixed effects (lme4's scale).

    Parameters
    ----------
    problem : mlm.glmm.engine.GLMMProblem
        The fit's problem: its ``deviance(theta, beta)`` (Laplace or AGQ) is profiled.
    theta, beta : the fit's estimates.
    beta_se : the fit's standard errors of the fixed effects (first steps and scales).

    Examples
    --------
    >>> import mlm
    >>> from mlm.inference.glmm_profile import GLMMProfiler
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> prof = GLMMProfiler(fit.problem, fit.theta, fit.fixef.to_numpy(),
    ...                     fit.coefficients["std_error"].to_numpy())
    >>> low, high, _ = prof.varpar_interval(0, 1.959964)   # sd_(Intercept)|herd, 95%
    >>> round(float(low), 2), round(float(high), 2)
    (0.35, 1.1)
    """

    def __init__(self, problem, theta, beta, beta_se):
        self.problem = problem
        self.lay = _Layout(problem.rs)
        self.nv = problem.n_theta
        self.sigma = 1.0  # no residual SD: the sd/cor conversions take sigma = 1
        kinds = []
        for idx in self.lay._idx:
            kinds.extend("sd" if i == j else "cor" for i, j in idx)
        self.kinds = kinds
        self.est = theta_to_sdcor(self.lay, np.asarray(theta, dtype=float), 1.0)[:-1]
        self.beta = np.asarray(beta, dtype=float)
        self.beta_se = np.asarray(beta_se, dtype=float)
        self.lower = np.array([0.0 if k == "sd" else -1.0 for k in kinds])
        self.upper = np.array([np.inf if k == "sd" else 1.0 for k in kinds])
        self.x_hat = np.concatenate([self.est, self.beta])
        self.lo_all = np.concatenate([self.lower, np.full(self.beta.size, -np.inf)])
        self.hi_all = np.concatenate([self.upper, np.full(self.beta.size, np.inf)])
        with single_threaded_blas(), np.errstate(all="ignore"):
            self.base = float(problem.deviance(np.asarray(theta, dtype=float), self.beta))
        self._joint = None
        #: the lowest deviance met while profiling: below ``base`` when the fit stopped
        #: short of its optimum (lme4 warns of a non-monotone profile then)
        self.lowest = self.base

    def deviance(self, x) -> float:
        """The fit's deviance at ``x = (sd/cor..., beta...)``; ``inf`` outside the domain."""
        x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(x)):
            return np.inf
        theta = sdcor_to_theta(self.lay, np.append(x[:self.nv], 1.0))
        if theta is None:
            return np.inf
        with np.errstate(all="ignore"):
            return float(self.problem.deviance(theta, x[self.nv:]))

    def _curvature(self):
        """Hessian of the deviance in ``(sd/cor, beta)`` at the estimates, and SEs from it."""
        if self._joint is None:
            x = self.x_hat.copy()
            cor = np.array(self.kinds + ["beta"] * self.beta.size) == "cor"
            sd = np.array(self.kinds + ["beta"] * self.beta.size) == "sd"
            rough = np.where(cor, 0.1, np.where(sd, np.maximum(np.abs(x), 1e-2) * 0.2,
                                                  np.r_[np.zeros(self.nv), self.beta_se]))
            h = np.where(cor, 1e-4, np.where(sd, 1e-3 * np.maximum(np.abs(x), 1e-2),
                                             1e-3 * np.r_[np.ones(self.nv), self.beta_se]))
            # keep central differences inside the bounds (an SD at 0, a correlation at 1)
            xs = np.clip(np.where(np.isnan(x), 0.0, x), self.lo_all + 2 * h, self.hi_all - 2 * h)
            H = _hessian(self.deviance, xs, h)
            self._joint = (H, _standard_errors(H, rough))
        return self._joint

    def _zeta(self, w):
        """zeta(x) for coordinate ``w`` of ``(sd/cor, beta)``, all the others optimised."""
        others = np.array([i for i in range(self.x_hat.size) if i != w])
        H, se = self._curvature()
        scale = se[others]
        x0 = np.where(np.isnan(self.x_hat), 0.0, self.x_hat)
        full = x0.copy()

        def objective(x, v):
            full[others] = v
            full[w] = x
            return self.deviance(full)

        def seen(dev):
            self.lowest = min(self.lowest, dev)

        return _zeta_function(objective, x0[w], x0[others], self.lo_all[others],
                              self.hi_all[others], scale,
                              H[np.ix_(others, others)] * np.outer(scale, scale), self.base, seen)

    # Profiler.varpar_interval reads these two for variance parameter ``w``
    def _zeta_varpar(self, w):
        return self._zeta(w)

    @property
    def varpar_se(self) -> np.ndarray:
        return self._curvature()[1][:self.nv]

    def fixed_interval(self, j, zcrit):
        """(low, high) of fixed effect ``j``."""
        zeta = self._zeta(self.nv + j)
        se = self.beta_se[j]
        return (self.limit(zeta, self.beta[j], se, -zcrit),
                self.limit(zeta, self.beta[j], se, zcrit))
