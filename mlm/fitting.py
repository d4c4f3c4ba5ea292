"""The fit stage and :func:`lmer`, which chains parse -> design -> fit -> results.

Each stage can be called on its own: :func:`mlm.parse_formula`, :func:`mlm.build_design`,
:func:`fit_design`. ``lmer`` only chains them.

Engines. Both optimise lme4's criterion (the profiled REML or ML deviance); they differ
in who does the optimising. Results agree to optimizer tolerance, which the reference
tests check on every lme4 case for both.

* ``"pls"``: the package's own estimator (:mod:`mlm.pls`): lme4's penalised least squares
  on per-group sums. It fits every model the grammar allows, crossed and large ones
  included.
* ``"statsmodels"``: statsmodels MixedLM, started at the pls optimum so that it confirms
  it in a step or two (its own optimizers stop short on textbook models; field notes).
  Its answer is compared with that optimum and the better one kept. It cannot express
  correlated slopes at an inner nesting level or multi-column terms of crossed factors
  (it says so), and large crossed designs would need a dense matrix of rows x levels.
* ``"auto"`` (default): the package's choice; today ``"pls"``, because on every benchmark
  model (benchmarks/) statsmodels takes longer for a single likelihood evaluation
  than pls takes for the whole fit, and that would make fits slower than lme4's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlm.checks import flag
from mlm.design import Design, _check_frame, build_design
from mlm.errors import FitError, MLMError
from mlm.formula import parse_formula
from mlm.inference.ddf import check_ddf
from mlm.inference.kenward_roger import check_kr_size
from mlm.engine.mixedlm import fit_statsmodels, statsmodels_layout
from mlm.engine.pls import PLSProblem
from mlm.results.linear import MixedResult

__all__ = ["lmer", "fit_design", "ConvergenceWarning"]

ENGINES = ("auto", "pls", "statsmodels")


class ConvergenceWarning(UserWarning):
    """The fit did not reach a point where the criterion is flat; estimates are suspect."""


def fit_design(design: Design, *, reml: bool = True, engine: str = "auto",
               ddf: str = "satterthwaite") -> MixedResult:
    """Fit a built design.

    Parameters
    ----------
    design : Design
        From :func:`mlm.build_design`.
    reml : bool, default True
        REML (lme4's default) or maximum likelihood (Stata's default; needed to
        compare models with different fixed effects).
    engine : {"auto", "pls", "statsmodels"}
        Who optimises; see the module notes. Results agree to optimizer tolerance.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, default "satterthwaite"
        Degrees of freedom of the tests of fixed effects (:mod:`mlm.inference.ddf`).

    Returns
    -------
    MixedResult
    """
    if not isinstance(engine, str) or engine not in ENGINES:
        raise MLMError(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}.")
    reml = flag(reml, "reml")
    if not isinstance(design, Design):
        raise MLMError(f"fit_design needs a Design from mlm.build_design(formula, data), not "
                       f"{type(design).__name__}; or fit in one step with mlm.lmer(formula, data).")
    if design.X.shape[1] == 0:
        raise FitError(f"'{design.formula.formula}' has no fixed effects ('0 +' or '- 1' removed the "
                       "intercept and no other fixed term is left). mlm needs at least one; keep the "
                       "intercept (drop '0 +') or add a predictor.")
    if engine == "auto":
        engine = "pls"
    ddf = check_ddf(ddf)
    if ddf == "kenward-roger":  # say so before fitting, not after
        if not reml:
            raise MLMError("ddf='kenward-roger' needs a REML fit (as in lmerTest and pbkrtest): drop "
                           "reml=False, or use ddf='satterthwaite', which works for ML fits too.")
        check_kr_size(design)
    if engine == "statsmodels":
        layout, reason = statsmodels_layout(design)
        if layout is None:
            raise FitError(f"engine='statsmodels' cannot fit this model: {reason}. "
                           "Use engine='pls' (the package's own estimator of the same criterion).")
    problem = PLSProblem(design.y, design.X, design.pls_terms(), reml=reml)
    with np.errstate(all="ignore"):
        # Trial points far from the optimum (badly scaled predictors) overflow; the
        # optimizer steps back from them, and the user hears of the scales from
        # mlm.frames' check, not as numpy's RuntimeWarnings (issue 11).
        theta, info = problem.optimize()
    notes = []
    if engine == "statsmodels":
        sol = problem.solve(theta)
        sm = fit_statsmodels(design, layout, reml=reml, start=(sol.covariances(), sol.sigma2))
        theta_sm = problem.theta_from_covariances(sm.covariances, sm.sigma2)
        dev_sm = problem.deviance(theta_sm)
        info["statsmodels_loglik"] = sm.loglik
        info["statsmodels_method"] = sm.method
        info["statsmodels_messages"] = sm.messages
        if dev_sm <= info["deviance"] + 1e-6:
            theta, info["deviance"] = theta_sm, dev_sm
        else:
            notes.append(f"statsmodels MixedLM stopped {0.5 * (dev_sm - info['deviance']):.3g} "
                         "log-likelihood units short of the optimum it was started at; "
                         "the optimum is reported.")
    # Convergence is judged by us, on the criterion at the answer (mlm.pls).
    with np.errstate(all="ignore"):
        info.update(problem.check_convergence(theta))
    converged = info["converged"]
    with np.errstate(all="ignore"):
        solution = problem.solve(theta)  # postVar on first use (MixedResult._cond_var)
    result = MixedResult(design, problem, solution, reml=reml, engine=engine, converged=converged,
                         fit_info=info, notes=notes, ddf=ddf)
    if not converged:
        warnings.warn(f"The fit of '{design.formula.formula}' did not converge: at the answer the "
                      f"-2 log-likelihood could still drop by about {info['decrement']:.3g} (largest "
                      f"gradient {info['gradient']:.3g}). Treat the estimates with caution; rescale "
                      "predictors with very different ranges or simplify the random part.",
                      ConvergenceWarning, stacklevel=3)
    return result


def lmer(formula: str, data: pd.DataFrame, *, reml: bool = True, engine: str = "auto",
         ddf: str = "satterthwaite") -> MixedResult:
    """Fit a linear mixed model from an lme4-style formula.

    Parameters
    ----------
    formula : str
        lme4 syntax, e.g. ``"mathach ~ ses + (ses | school)"``. Random terms:
        ``(1 | g)``, ``(x | g)`` (correlated intercept and slope), ``(0 + x | g)``,
        ``(x || g)`` (uncorrelated), ``(1 | a/b)`` (b nested in a), ``(1 | a:b)``,
        crossed ``(1 | a) + (1 | b)``. Fixed part: patsy syntax (``C(x)``,
        ``I(x**2)``, ``np.log(x)``, ``x*z``, ``cwc(x, g)``, ``gm(x, g)``).
    data : pandas.DataFrame or another data frame
        Not modified. polars, pyarrow and other frames are converted by
        :func:`mlm.frames.as_pandas`; nullable and pyarrow-backed columns count as their
        numpy twins. Rows with a missing model variable (NaN, None, ``pd.NA``) are
        dropped, counted in ``nobs_dropped`` and reported.
    reml : bool, default True
        REML (lme4's default) or ML (Stata's default).
    engine : {"auto", "pls", "statsmodels"}, default "auto"
        Who finds the optimum of lme4's criterion: the package's own estimator
        (``"pls"``, what ``"auto"`` picks today) or statsmodels MixedLM. Same results;
        see :mod:`mlm.fitting`.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, default "satterthwaite"
        Degrees of freedom of the t-tests in ``coefficients`` and the summary:
        lmerTest's Satterthwaite method, pbkrtest's Kenward-Roger (REML only; it also
        adjusts the standard errors), the residual ``n - p``, or z-tests. ``fit.ddf``
        records it; ``fit.coef_table(ddf=...)`` gives another without refitting.

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
    >>> round(float(fit.fixef["ses"]), 3)
    2.394
    >>> fit.ngroups
    {'school': 160}
    """
    data = _check_frame(data)  # type, emptiness, duplicate names first: parsing needs the columns
    parsed = parse_formula(formula, columns=[str(c) for c in data.columns],
                           index_names=[str(n) for n in data.index.names if n is not None])
    design = build_design(parsed, data)
    result = fit_design(design, reml=reml, engine=engine, ddf=ddf)
    result.data = data
    return result
