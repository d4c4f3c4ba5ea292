""":func:`glmer`: generalized linear mixed models, chaining parse -> design -> fit -> results.

Stages: :func:`mlm.glmm.design.build_glmm_design` (the formula, the outcome coded for the
family), :class:`mlm.glmm.engine.GLMMProblem` (lme4's Laplace / AGQ criterion and its
optimisation), :class:`mlm.glmm.results.GLMMResult`.
"""

from __future__ import annotations

import warnings

import numpy as np

from mlm.errors import FitError, MLMError
from mlm.fitting import ConvergenceWarning
from mlm.frames import as_pandas
from mlm.glmm.engine import GLMMProblem
from mlm.glmm.design import build_glmm_design
from mlm.glmm.family import make_family
from mlm.glmm.results import GLMMResult

__all__ = ["glmer", "SeparationWarning"]


class SeparationWarning(UserWarning):
    """A predictor (or combination) predicts a binary outcome perfectly: some odds ratio is infinite."""


def _check_nagq(nagq, design):
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or nagq < 1:
        raise MLMError(f"nagq must be a whole number of quadrature nodes, 1 (Laplace) or more, "
                       f"not {nagq!r}.")
    if nagq > 1:
        blocks = design.blocks
        if len(blocks) != 1 or blocks[0].k != 1:
            terms = " + ".join(str(b.term) for b in blocks)
            raise MLMError(f"nagq={nagq} (adaptive Gauss-Hermite quadrature) needs a single scalar "
                           f"random-effects term such as (1 | g), as in lme4; this model has {terms} "
                           f"({sum(b.k for b in blocks)} random effects per group). Use nagq=1 "
                           "(the Laplace approximation).")


def _separation(gd) -> list:
    """Predictors whose two values split a binomial outcome perfectly (in words)."""
    if gd.family.name != "binomial":
        return []
    X, y, w = gd.design.X, gd.y, gd.weights
    out = []
    for j, name in enumerate(gd.design.fixed_names):
        values = np.unique(X[:, j])
        if len(values) != 2:
            continue
        for v in values:
            rows = (X[:, j] == v) & (w > 0)
            if rows.any() and (np.all(y[rows] == 0) or np.all(y[rows] == 1)):
                outcome = "failures" if np.all(y[rows] == 0) else "successes"
                out.append(f"every row with {name} = {v:g} is one of the {outcome}")
                break
    return out


def _shortfall(info) -> str:
    """Why a fit is not converged, in words."""
    if np.isfinite(info.get("decrement", np.inf)):
        return f"the -2 log-likelihood could still drop by about {info['decrement']:.3g}."
    return ("the likelihood is not curved upwards in every direction at the answer (some "
            "estimate can drift without changing the fit: separation or too many parameters).")


def glmer(formula: str, data, family: str = "binomial", link: str | None = None, nagq: int = 1,
          weights=None, offset=None) -> GLMMResult:
    """Fit a generalized linear mixed model (binary, binomial or count outcome) as lme4's glmer.

    Parameters
    ----------
    formula : str
        lme4 syntax. Binomial outcomes: 0/1, logical, a two-level factor (its second level
        is the success, as in R), a proportion with ``weights=`` the trials, or
        ``cbind(successes, failures)`` on the left. Offsets: ``offset(log(t))`` terms.
    data : data frame
        Not modified; pandas, polars, pyarrow (see :func:`mlm.frames.as_pandas`).
    family : {"binomial", "poisson"}
    link : str, optional
        binomial: ``"logit"`` (default), ``"probit"``, ``"cloglog"``; poisson: ``"log"``.
    nagq : int, default 1
        1: the Laplace approximation (any random structure). More: adaptive
        Gauss-Hermite quadrature with that many nodes (one scalar random-effects term).
    weights : column name or numbers, optional
        Prior weights; the number of trials of a binomial proportion.
    offset : column name or numbers, optional
        Added to the linear predictor (with formula offsets, if any).

    Returns
    -------
    GLMMResult

    Raises
    ------
    MLMError
        Unknown family or link, an outcome the family cannot take (not 0/1, a proportion
        without trials, negative or fractional counts), ``nagq > 1`` with more than one
        random effect, and every error of :func:`mlm.lmer`'s design stage.

    Warns
    -----
    SeparationWarning
        A predictor splits the outcome perfectly (its odds ratio is infinite).
    ConvergenceWarning
        The optimum was not reached.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> round(fit.loglik, 2)
    -92.03
    >>> fit.fixef.round(3).tolist()
    [-1.399, -0.992, -1.129, -1.58]
    """
    fam = make_family(family, link)
    data = as_pandas(data)
    gd = build_glmm_design(formula, data, fam, weights=weights, offset=offset)
    if gd.design.X.shape[1] == 0:  # as lmer (mlm.fitting.fit_design); was numpy's ValueError
        raise FitError(f"'{formula}' has no fixed effects ('0 +' or '- 1' removed the intercept "
                       "and no other fixed term is left). mlm needs at least one; keep the "
                       "intercept (drop '0 +') or add a predictor.")
    _check_nagq(nagq, gd.design)
    problem = GLMMProblem(gd.y, gd.design.X, gd.design.pls_terms(), fam, gd.weights, gd.offset,
                          nagq=int(nagq))
    theta, beta, info = problem.optimize()
    if not np.isfinite(info["deviance"]):
        raise FitError(f"The model '{formula}' could not be fitted: the likelihood is not finite at "
                       "any point tried. Check the outcome and predictors for extreme values.")
    notes = []
    split = _separation(gd)
    if split:
        text = ("Separation: " + "; ".join(split) + ". The odds of the outcome there are 0 or "
                "infinite, so the estimate of that coefficient runs off towards +-infinity and its "
                "standard error and test are meaningless. Drop or merge the predictor's categories, "
                "or use a penalised (bias-reduced) model.")
        notes.append(text)
        warnings.warn(text, SeparationWarning, stacklevel=2)
    info["notes"] = notes
    result = GLMMResult(gd, problem, theta, beta, info, data=data)
    if not result.converged and not split:  # separation explains it, in words, above
        warnings.warn(f"The fit of '{formula}' did not converge: {_shortfall(info)} Treat the "
                      "estimates with caution.", ConvergenceWarning, stacklevel=2)
    return result
