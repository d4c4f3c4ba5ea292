"""The fit stage and :func:`lmer`, which chains parse -> design -> fit -> results.

Each stage can be called on its own: :func:`mlm.parse_formula`, :func:`mlm.build_design`,
:func:`fit_design`. ``lmer`` only chains them.

Engines. Both optimise lme4's criterion; they differ in who does the optimising.

* ``"statsmodels"``: statsmodels MixedLM, started at the optimum of our profiled deviance
  so that it confirms it in a step or two (its own optimizers stop short on textbook
  models; field notes). Its answer is compared with that optimum and the better one is
  kept, so the result never depends on statsmodels' optimizer lottery.
* ``"pls"``: the package's own estimator (:mod:`mlm.pls`), needed where MixedLM cannot
  express the model (correlated slopes at an inner nesting level, crossed factors with
  slopes) or cannot fit it in reasonable time or memory (large crossed designs).
* ``"auto"`` (default): statsmodels where it can express the model and fit it quickly;
  otherwise pls, saying why in the result's notes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .design import Design, build_design
from .errors import FitError, MLMError
from .formula import parse_formula
from .mixedlm import fit_statsmodels, statsmodels_layout
from .pls import PLSProblem
from .results import MixedResult

__all__ = ["lmer", "fit_design", "ConvergenceWarning"]

ENGINES = ("auto", "statsmodels", "pls")
# Above these sizes "auto" prefers the pls engine: MixedLM loops over groups in Python
# and would take many seconds for the same answer (issue 3 benchmarks).
AUTO_MAX_ROWS = 200_000
AUTO_MAX_GROUPS = 5_000


class ConvergenceWarning(UserWarning):
    """The fit did not reach a point where the criterion is flat; estimates are suspect."""


def fit_design(design: Design, *, reml: bool = True, engine: str = "auto") -> MixedResult:
    """Fit a built design.

    Parameters
    ----------
    design : Design
        From :func:`mlm.build_design`.
    reml : bool, default True
        REML (lme4's default) or maximum likelihood (Stata's default; needed to
        compare models with different fixed effects).
    engine : {"auto", "statsmodels", "pls"}
        Who optimises; see the module notes. Results agree to optimizer tolerance.

    Returns
    -------
    MixedResult
    """
    if engine not in ENGINES:
        raise MLMError(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}.")
    problem = PLSProblem(design.y, design.X, design.pls_terms(), reml=reml)
    theta, info = problem.optimize()
    notes = []
    used = "pls"
    if engine in ("auto", "statsmodels"):
        layout, reason = statsmodels_layout(design)
        too_big = (design.nobs > AUTO_MAX_ROWS
                   or sum(len(v) for v in design.grouping_factors.values()) > AUTO_MAX_GROUPS)
        if layout is None and engine == "statsmodels":
            raise FitError(f"engine='statsmodels' cannot fit this model: {reason}. "
                           "Use engine='pls' (the package's own estimator of the same criterion).")
        if layout is None:
            notes.append(f"Fitted with the package's own estimator (engine 'pls') because {reason}.")
        elif too_big and engine == "auto":
            notes.append("Fitted with the package's own estimator (engine 'pls'): statsmodels "
                         "MixedLM would take much longer on a design this large "
                         "(pass engine='statsmodels' to use it anyway).")
        else:
            sol = problem.solve(theta)
            sm = fit_statsmodels(design, layout, reml=reml, start=(sol.covariances(), sol.sigma2))
            theta_sm = problem.theta_from_covariances(sm.covariances, sm.sigma2)
            dev_sm = problem.deviance(theta_sm)
            info["statsmodels_loglik"] = sm.loglik
            info["statsmodels_method"] = sm.method
            info["statsmodels_messages"] = sm.messages
            if dev_sm <= info["deviance"] + 1e-6:
                theta, info["deviance"] = theta_sm, dev_sm
                used = "statsmodels"
            else:
                used = "statsmodels"
                notes.append(f"statsmodels MixedLM stopped {0.5 * (dev_sm - info['deviance']):.3g} "
                             "log-likelihood units short of the optimum it was started at; "
                             "the optimum is reported.")
    # Convergence is judged by us: the gradient of the criterion at the answer.
    grad = problem.gradient(theta)
    lower = problem.theta_lower()
    free = ~((theta <= lower + 1e-6) & (grad > 0))
    gmax = float(np.max(np.abs(grad[free]))) if free.any() else 0.0
    info["gradient"] = gmax
    converged = gmax < 2e-2 * max(1.0, 1e-4 * abs(info["deviance"]))
    solution = problem.solve(theta, cond_var=True)
    result = MixedResult(design, problem, solution, reml=reml, engine=used, converged=converged,
                         fit_info=info, notes=notes)
    if not converged:
        warnings.warn(f"The fit of '{design.formula.formula}' did not converge: the criterion is "
                      f"not flat at the answer (largest gradient {gmax:.3g}). Treat the estimates "
                      "with caution; rescale predictors or simplify the random part.",
                      ConvergenceWarning, stacklevel=3)
    return result


def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, engine: str = "auto") -> MixedResult:
    """Fit a linear mixed model from an lme4-style formula.

    Parameters
    ----------
    formula : str
        lme4 syntax, e.g. ``"mathach ~ ses + (ses | school)"``. Random terms:
        ``(1 | g)``, ``(x | g)`` (correlated intercept and slope), ``(0 + x | g)``,
        ``(x || g)`` (uncorrelated), ``(1 | a/b)`` (b nested in a), ``(1 | a:b)``,
        crossed ``(1 | a) + (1 | b)``. Fixed part: patsy syntax (``C(x)``,
        ``I(x**2)``, ``np.log(x)``, ``x*z``, ``cwc(x, g)``, ``gm(x, g)``).
    data : pandas.DataFrame
        Not modified. Rows with a missing model variable are dropped, counted in
        ``nobs_dropped`` and reported.
    reml : bool, default True
        REML (lme4's default) or ML (Stata's default).
    engine : {"auto", "statsmodels", "pls"}, default "auto"
        See :mod:`mlm.fitting`.

    Returns
    -------
    MixedResult

    Raises
    ------
    MLMError
        With the culprit named, for malformed formulas, unknown columns, unusable data
        or a model that cannot be fitted.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("mathach ~ ses + (ses | school)", mlm.load_dataset("hsb"))
    >>> round(fit.fixef["ses"], 3)
    2.395
    >>> fit.ngroups
    {'school': 160}
    """
    if not isinstance(data, pd.DataFrame):
        build_design(formula, data)  # raises the data-type error
    parsed = parse_formula(formula, columns=[str(c) for c in data.columns])
    design = build_design(parsed, data)
    return fit_design(design, reml=reml, engine=engine)
