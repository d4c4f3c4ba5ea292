"""Parametric bootstrap of any statistic of a fit, reusing its design.

Like lme4's ``bootMer(fit, FUN, nsim, use.u = FALSE, type = "parametric")``: each
replicate draws new random effects and residuals from the fitted model, refits it and
applies the statistic. The design is built once; a refit only recomputes the sums that
involve the outcome (:meth:`mlm.engine.pls.PLSProblem.with_response`) and starts the optimizer
at the original estimate, so a replicate costs a few milliseconds on data the size of
High School and Beyond. For :func:`mlm.glmer` fits a replicate draws new random effects and
a new binomial or Poisson outcome (:mod:`mlm.simulation.glmm_replicates`) and refits the
GLMM in full, so it costs about as much as the original fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlm.errors import MLMError
from mlm.simulation.glmm_replicates import template_for
from mlm.simulation.replicates import (RefitTemplate, check_n_jobs, check_nsim, draw_response, replicate_seeds,
                                       run_replicates)
from mlm.results.linear import MixedResult, require_fit

__all__ = ["bootstrap", "BootstrapResult", "simulate_response"]


@dataclass(frozen=True)
class BootstrapResult:
    """Replicates of a statistic from a parametric bootstrap.

    Attributes
    ----------
    original : pandas.Series
        The statistic on the fitted model.
    replicates : pandas.DataFrame
        One row per successful replicate, one column per component of the statistic.
    nsim : int
        Replicates asked for.
    seed : int or None
        Seed of the random generator.
    failures : int
        Replicates whose refit raised an error (left out of ``replicates``).
    """

    original: pd.Series
    replicates: pd.DataFrame
    nsim: int
    seed: int | None
    failures: int

    def percentile_interval(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals (R's ``quantile(type = 7)``, as ``boot.ci(type = "perc")`` approximately).

        Parameters
        ----------
        level : float, default 0.95
            Coverage of the intervals.

        Returns
        -------
        pandas.DataFrame
            Indexed like :attr:`original`, columns ``estimate, conf_low, conf_high``.
        """
        if not 0 < level < 1:
            raise MLMError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}.")
        a = (1 - level) / 2
        q = self.replicates.quantile([a, 1 - a])
        return pd.DataFrame({"estimate": self.original, "conf_low": q.iloc[0],
                             "conf_high": q.iloc[1]})

    def __str__(self) -> str:
        ci = self.percentile_interval()
        return (f"Parametric bootstrap: {len(self.replicates)} replicates"
                f"{f' ({self.failures} failed)' if self.failures else ''}, seed {self.seed}\n"
                f"95% percentile intervals:\n{ci.to_string()}")


def _as_series(value) -> pd.Series:
    """The statistic's value as a Series of floats, or an MLMError saying what it returned."""
    try:
        if isinstance(value, pd.Series):
            return value.astype(float)
        if isinstance(value, dict):
            return pd.Series(value, dtype=float)
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        what = type(value).__name__
        if isinstance(value, pd.DataFrame):
            what += f" with columns {list(value.columns)}"
        raise MLMError(f"statistic must return numbers (a number, a sequence, a dict or a pandas "
                       f"Series of numbers); it returned a {what}. Select the numbers, e.g. "
                       f"lambda f: f.varcorr['vcov'] or lambda f: f.fixef.") from None
    if arr.ndim > 1:
        raise MLMError(f"statistic must return one number or a flat sequence of numbers; it "
                       f"returned an array of shape {arr.shape}. Return e.g. a pandas Series.")
    if arr.size == 1:
        return pd.Series([float(arr[0])], index=["statistic"])
    return pd.Series(arr, index=[f"statistic{i}" for i in range(arr.size)])


def simulate_response(fit: MixedResult, rng: np.random.Generator) -> np.ndarray:
    """One outcome vector drawn from the fitted model (new random effects and residuals).

    ``y* = X beta + sum_t Z_t b_t* + e*``, with each level's ``b_t*`` drawn from the
    term's estimated covariance and ``e*`` from N(0, sigma^2): lme4's ``simulate()``
    with ``use.u = FALSE``.
    """
    sol = fit.solution
    return draw_response(fit.design, sol.beta, sol.templates, sol.sigma2, rng)


def refit(fit: MixedResult, y: np.ndarray) -> MixedResult:
    """The same model fitted to a new outcome vector, reusing the design (engine pls)."""
    return RefitTemplate.from_fit(fit).refit(y)


# What a failed refit raises; anything else is a bug or an error in the statistic and
# reaches the caller.
REFIT_ERRORS = (MLMError, np.linalg.LinAlgError, ValueError, FloatingPointError)


def _as_values(value) -> np.ndarray:
    """A replicate's statistic as a float array (a plain number without a Series: a
    thousand refits take about a millisecond each, and a Series costs a tenth of one)."""
    if isinstance(value, (float, int, np.floating, np.integer)):
        return np.array([float(value)])
    return _as_series(value).to_numpy()


def _one_replicate(payload, rng):
    template, statistic = payload
    y = template.simulate(rng)
    try:
        return _as_values(statistic(template.refit(y)))
    except REFIT_ERRORS:
        return None


def bootstrap(fit, statistic, nsim: int = 1000, seed: int | None = None, *,
              n_jobs: int | None = 1, progress: bool = True) -> BootstrapResult:
    """Parametric bootstrap of ``statistic(fit)``.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        The fitted model to simulate from and refit: from :func:`mlm.lmer` or
        :func:`mlm.glmer` (new random effects, then a binomial or Poisson outcome at the
        fitted mean: lme4's ``bootMer`` for glmer fits).
    statistic : callable
        Takes a fitted model, returns a number, a sequence of numbers, a dict or a
        pandas Series (e.g. ``lambda f: f.fixef``). With ``n_jobs != 1`` it is sent to
        the workers (joblib pickles lambdas too) and receives refits whose design has no
        patsy information, so it cannot call ``predict(newdata)``.
    nsim : int, default 1000
        Number of replicates.
    seed : int, optional
        For reproducible draws. Replicate ``i`` uses the ``i``-th child of
        ``numpy.random.SeedSequence(seed)``: its outcome is column ``sim_{i+1}`` of
        ``fit.simulate(nsim, seed)``, and the result is the same for any ``n_jobs``.
    n_jobs : int or None, default 1
        Worker processes (joblib): 1 runs here, -1 uses every core, None follows
        joblib's active configuration (``joblib.parallel_config``, e.g. a Dask cluster
        with ``backend="dask"``).
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    >>> def icc(f):
    ...     v = f.varcorr["vcov"]
    ...     return v.iloc[0] / v.sum()
    >>> boot = mlm.bootstrap(fit, icc, nsim=50, seed=1, progress=False)
    >>> len(boot.replicates)
    50
    """
    require_fit(fit, glmm=True)
    if not callable(statistic):
        raise MLMError("statistic must be a function of a fitted model, e.g. lambda f: f.fixef.")
    nsim = check_nsim(nsim)
    n_jobs = check_n_jobs(n_jobs)
    try:
        value = statistic(fit)
    except MLMError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function: name it, do not crash
        raise MLMError(f"statistic(fit) failed on the fitted model itself ({type(exc).__name__}: "
                       f"{exc}). Check the function, e.g. lambda f: f.fixef['ses'].") from None
    original = _as_series(value)
    seeds = replicate_seeds(seed, nsim)
    payload = (template_for(fit), statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_replicates(_one_replicate, payload, seeds, n_jobs=n_jobs,
                                 progress=progress, desc="bootstrap")
    rows = [r for r in results if r is not None]
    replicates = pd.DataFrame(rows, columns=original.index)
    replicates.index.name = "replicate"
    return BootstrapResult(original=original, replicates=replicates, nsim=nsim,
                           seed=seed, failures=len(results) - len(rows))
