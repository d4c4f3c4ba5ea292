"""Simulation from, and refits of, a generalized linear mixed model (:func:`mlm.glmer`).

The glmer counterpart of :class:`mlm.simulation.replicates.RefitTemplate`, run by the same
seeded joblib machinery (:func:`mlm.simulation.replicates.run_replicates`), so that
:func:`mlm.bootstrap` and ``fit.simulate`` give the same numbers serially, on every core and
on a cluster.

A new outcome is drawn as lme4's ``simulate.merMod`` (``use.u = FALSE``) does: new random
effects ``b_t = T_t u_t`` with ``u_t ~ N(0, I)`` for every level of every term (``T_t`` the
term's relative covariance factor; a GLMM has no residual scale), the linear predictor
``eta = offset + X beta + sum_t Z_t b_t``, and the outcome from the family at ``mu =
linkinv(eta)``: ``Binomial(trials, mu)`` successes (R's ``binomial()$simulate``) or
``Poisson(mu)`` counts (``poisson()$simulate``). A refit builds the GLMM problem for the new
outcome on the same design and optimises it from lme4's start, as :func:`mlm.glmer` does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlm.errors import FitError, MLMError
from mlm.simulation.replicates import RefitTemplate, _picklable_design

__all__ = ["GLMMRefitTemplate", "template_for"]


def template_for(fit):
    """The replicate template of a fit: :class:`GLMMRefitTemplate` for glmer fits, else
    :class:`~mlm.simulation.replicates.RefitTemplate`.

    Examples
    --------
    >>> import mlm, numpy as np
    >>> from mlm.simulation.glmm_replicates import template_for
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> template = template_for(fit)
    >>> y = template.simulate(np.random.default_rng(1))   # proportions of successes
    >>> refit = template.refit(y)
    >>> type(refit).__name__, refit.nobs
    ('GLMMResult', 56)
    """
    from mlm.glmm.results import GLMMResult

    if isinstance(fit, GLMMResult):
        return GLMMRefitTemplate.from_fit(fit)
    return RefitTemplate.from_fit(fit)


def _check_simulable(gdesign):
    """R's rules for simulating a family with prior weights, as errors that say why."""
    w = gdesign.weights
    if gdesign.family.name == "binomial":
        if np.any(np.abs(w - np.round(w)) > 1e-8 * np.maximum(1.0, w)):
            raise MLMError("Cannot simulate binomial outcomes: the weights (numbers of trials) are "
                           "not whole numbers in every row (R: 'cannot simulate from non-integer "
                           "prior.weights'). Give the trials as whole numbers, e.g. with "
                           "cbind(successes, failures).")
    elif np.any(w != 1):
        raise MLMError("Cannot simulate Poisson outcomes of a fit with prior weights= (R's "
                       "simulate ignores them, which would not be this model). Refit without "
                       "weights=, or put exposures in an offset: offset(log(exposure)).")


class GLMMRefitTemplate:
    """Everything a glmer replicate needs, built once: design, family and generating values.

    Parameters
    ----------
    gdesign : mlm.glmm.design.GLMMDesign
        The rows to simulate and refit (without patsy objects when pickled).
    theta, beta : ndarray
        The fit's relative covariance factors and fixed effects, the model simulated from.
    nagq : int
        The refits' approximation (the fit's).
    """

    def __init__(self, gdesign, theta, beta, nagq=1):
        _check_simulable(gdesign)
        self.gdesign = gdesign
        self.theta = np.asarray(theta, dtype=float)
        self.beta = np.asarray(beta, dtype=float)
        self.nagq = int(nagq)
        self.terms = gdesign.design.pls_terms()
        self.trials = np.round(gdesign.weights).astype(np.int64) \
            if gdesign.family.name == "binomial" else None

    @classmethod
    def from_fit(cls, fit):
        """From a :class:`mlm.GLMMResult`."""
        return cls(fit.gdesign, fit.theta, np.asarray(fit.fixef, dtype=float), fit.nagq)

    def __getstate__(self):
        state = dict(self.__dict__)
        gd = self.gdesign
        state["gdesign"] = dataclasses.replace(gd, design=_picklable_design(gd.design))
        return state

    # --- simulation -------------------------------------------------------------------------
    def linear_predictor(self, rng) -> np.ndarray:
        """``offset + X beta + sum_t Z_t b_t`` with every term's ``b_t`` drawn anew (formula order)."""
        from mlm.engine.pls import _template, theta_layout

        gd = self.gdesign
        eta = gd.offset + gd.design.X @ self.beta
        start = 0
        for block, idx in zip(gd.design.blocks, theta_layout([b.k for b in gd.design.blocks])):
            T = _template(self.theta[start:start + len(idx)], block.k, idx)
            start += len(idx)
            b = rng.standard_normal((block.n_levels, block.k)) @ T.T
            eta = eta + np.sum(block.Z * b[block.codes], axis=1)
        return eta

    def simulate(self, rng) -> np.ndarray:
        """A new outcome on the scale the fit stores it: the proportion of successes out of
        the trials (binomial; 0/1 for one trial) or the count (Poisson)."""
        gd = self.gdesign
        mu = gd.family.linkinv(self.linear_predictor(rng))
        if self.trials is None:
            return rng.poisson(mu).astype(float)
        k = rng.binomial(self.trials, mu)
        return np.divide(k, self.trials, out=np.zeros(len(k)), where=self.trials > 0)

    def response_scale(self, y) -> np.ndarray:
        """A simulated outcome as the formula's response was given: successes for ``cbind``,
        proportions with ``weights=`` trials, 0/1 for a binary outcome, counts for Poisson."""
        gd = self.gdesign
        if self.trials is None:
            return np.round(y).astype(np.int64)
        if gd.cbind is not None:
            return np.round(y * self.trials).astype(np.int64)
        if np.all(self.trials == 1):
            return np.round(y).astype(np.int64)
        return y

    # --- refits ---------------------------------------------------------------------------
    def refit(self, y):
        """The model refitted to outcome ``y`` (on the fit's scale): a :class:`mlm.GLMMResult`."""
        from mlm.glmm.engine import GLMMProblem
        from mlm.glmm.results import GLMMResult

        gd = dataclasses.replace(self.gdesign, y=np.asarray(y, dtype=float))
        problem = GLMMProblem(gd.y, gd.design.X, self.terms, gd.family, gd.weights, gd.offset,
                              nagq=self.nagq)
        with np.errstate(all="ignore"):
            theta, beta, info = problem.optimize()
        if not np.isfinite(info["deviance"]):
            raise FitError("A simulated outcome could not be fitted (the likelihood is not finite).")
        info["notes"] = []
        return GLMMResult(gd, problem, theta, beta, info, data=None)
