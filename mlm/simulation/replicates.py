"""Replicates of a fitted model, serially or in parallel (bootstrap refits, power simulations).

Every replicate gets its own random generator, seeded by a child of
``numpy.random.SeedSequence(seed)`` (:func:`replicate_seeds`), so that replicate ``i``
draws the same numbers whichever worker runs it: the answer is identical serially, on
all cores (joblib's ``n_jobs``) and on a Dask cluster (joblib's Dask backend), for the
same ``seed`` (issue 15).

The design is built once. A replicate only needs :class:`RefitTemplate`: the design, the
profiled-deviance problem (whose sums that involve the outcome are swapped by
:meth:`mlm.engine.pls.PLSProblem.with_response`) and the parameters to simulate from. The
template is pickled once per batch of replicates sent to a worker, without the patsy
objects of the design (patsy cannot pickle them): in a worker, refits have everything
but the ability to rebuild columns for new data (``predict(newdata)``).
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral

import numpy as np

from mlm.errors import MLMError

__all__ = ["replicate_seeds", "run_replicates", "RefitTemplate", "draw_response", "check_nsim",
           "check_n_jobs"]


def check_nsim(nsim, what: str = "nsim") -> int:
    """``nsim`` as a positive int, or an MLMError naming it."""
    if isinstance(nsim, bool) or not isinstance(nsim, Integral) or nsim < 1:
        raise MLMError(f"{what} must be a positive whole number of replicates, not {nsim!r}.")
    return int(nsim)


def check_n_jobs(n_jobs):
    """joblib's convention: a positive int, -1 (all cores), -2 (all but one), ... or None."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0:
        raise MLMError(f"n_jobs must be a whole number other than 0 (1 = serial, -1 = all cores) "
                       f"or None (joblib's active configuration), not {n_jobs!r}.")
    return int(n_jobs)


def replicate_seeds(seed, n: int) -> list:
    """One :class:`numpy.random.SeedSequence` per replicate, spawned from ``seed``.

    ``seed`` may be None (fresh entropy), a non-negative int or a SeedSequence.

    Examples
    --------
    >>> from mlm.simulation.replicates import replicate_seeds
    >>> import numpy as np
    >>> a, b = replicate_seeds(1, 2)
    >>> float(np.random.default_rng(b).random()) == float(np.random.default_rng(replicate_seeds(1, 5)[1]).random())
    True
    """
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif seed is None or (isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0):
        root = np.random.SeedSequence(seed)
    else:
        raise MLMError(f"seed must be None or a non-negative whole number, not {seed!r}.")
    return root.spawn(int(n))


def draw_response(design, beta, templates, sigma2, rng, mean=None) -> np.ndarray:
    """One outcome vector from the model: ``X beta + sum_t Z_t b_t + e``.

    Each term's ``b_t`` is drawn anew from its covariance ``sigma2 T T'`` (``T`` the
    term's relative covariance factor) and ``e`` from N(0, sigma2): lme4's
    ``simulate(use.u = FALSE)``. The terms are drawn in formula order, then the residuals.
    ``mean`` is ``X beta`` when the caller has it already (a template drawing many).
    """
    y = design.X @ beta if mean is None else mean.copy()
    s = np.sqrt(sigma2)
    for block, T in zip(design.blocks, templates):
        u = rng.standard_normal((block.n_levels, block.k))
        if block.k == 1:  # one column: a scaled draw per level, no (n, k) temporaries
            y += block.Z[:, 0] * (s * T[0, 0] * u[:, 0])[block.codes]
        else:
            b = s * u @ T.T
            y += np.einsum("ik,ik->i", block.Z, b[block.codes])
    y += s * rng.standard_normal(design.nobs)
    return y


def _picklable_design(design):
    """The design without its patsy objects (patsy refuses to pickle them)."""
    blocks = tuple(dataclasses.replace(b, design_info=None) for b in design.blocks)
    return dataclasses.replace(design, x_info=None, blocks=blocks)


class RefitTemplate:
    """Everything a replicate needs, built once: design, problem and generating values.

    Parameters
    ----------
    design : Design
        The rows to simulate and refit (the fit's own, or a resized copy for power).
    problem : PLSProblem
        Built once on ``design``; refits swap its outcome (``with_response``).
    reml : bool
    beta, templates, sigma2
        The model to simulate from: fixed effects, each term's relative covariance
        factor, residual variance.
    theta0 : ndarray
        Where refits start the optimizer (the fit's estimate).
    ddf : str
        The df method of the refits' tests (the fit's :attr:`mlm.MixedResult.ddf`).
    """

    def __init__(self, design, problem, *, reml, beta, templates, sigma2, theta0,
                 ddf="satterthwaite"):
        self.design = design
        self.problem = problem
        self.reml = bool(reml)
        self.beta = np.asarray(beta, dtype=float)
        self.templates = [np.asarray(T, dtype=float) for T in templates]
        self.sigma2 = float(sigma2)
        self.theta0 = np.asarray(theta0, dtype=float)
        self.ddf = ddf
        self._mean = design.X @ self.beta  # X beta, the same for every draw

    @classmethod
    def from_fit(cls, fit, design=None, beta=None):
        """From a fitted model; ``design`` (default the fit's) and ``beta`` may be replaced."""
        from mlm.engine.pls import PLSProblem

        if design is None:
            design, problem = fit.design, fit.problem
        else:
            problem = PLSProblem(design.y, design.X, design.pls_terms(), reml=fit.reml)
        sol = fit.solution
        return cls(design, problem, reml=fit.reml, beta=sol.beta if beta is None else beta,
                   templates=sol.templates, sigma2=sol.sigma2, theta0=fit.theta,
                   ddf=getattr(fit, "ddf", "satterthwaite"))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["design"] = _picklable_design(self.design)
        return state

    def simulate(self, rng) -> np.ndarray:
        """A new outcome vector drawn from the template's model."""
        return draw_response(self.design, self.beta, self.templates, self.sigma2, rng, self._mean)

    def refit(self, y):
        """The model refitted to outcome ``y``: a :class:`mlm.MixedResult` (engine pls)."""
        from mlm.results.linear import MixedResult

        problem = self.problem.with_response(y)
        with np.errstate(all="ignore"):
            theta, info = problem.optimize(theta0=self.theta0)
            solution = problem.solve(theta, cond_var=False)
        design = dataclasses.replace(self.design, y=np.asarray(y, dtype=float))
        return MixedResult(design, problem, solution, reml=self.reml, engine="pls",
                           converged=info["converged"], fit_info=info, ddf=self.ddf)


def _run_chunk(func, payload, seeds):
    return [func(payload, np.random.default_rng(s)) for s in seeds]


def _progress_bar(total, progress, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, desc=desc, unit="rep", leave=False)


def run_replicates(func, payload, seeds, *, n_jobs=1, progress=True, desc="replicates") -> list:
    """``[func(payload, numpy.random.default_rng(s)) for s in seeds]``, possibly in parallel.

    With ``n_jobs == 1`` the loop runs here; otherwise through ``joblib.Parallel`` in
    batches (a few per worker, so that the template is sent a few times, not once per
    replicate). ``n_jobs=None`` takes joblib's active configuration, e.g. inside
    ``joblib.parallel_config(backend="dask")``. Results come back in replicate order.
    """
    n = len(seeds)
    bar = _progress_bar(n, progress, desc)
    try:
        if n_jobs == 1:
            from mlm.engine.pls import single_threaded_blas

            out = []
            with single_threaded_blas():  # once for the loop, not twice per refit
                for s in seeds:
                    out.append(func(payload, np.random.default_rng(s)))
                    bar.update(1)
            return out
        import joblib

        workers = max(1, joblib.effective_n_jobs(n_jobs))
        size = max(1, math.ceil(n / (4 * workers)))
        chunks = [seeds[i:i + size] for i in range(0, n, size)]
        parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
        out = []
        for part in parallel(joblib.delayed(_run_chunk)(func, payload, c) for c in chunks):
            out.extend(part)
            bar.update(len(part))
        return out
    finally:
        bar.close()
