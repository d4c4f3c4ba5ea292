"""A generalized linear mixed model beside the single-level GLM that ignores the grouping.

:func:`mlm.compare_ols` hands :func:`mlm.glmer` fits to :func:`compare_glm`: the GLM with the
same family, link, prior weights (binomial trials) and offset, fitted by statsmodels to the
same rows, with the coefficients and standard errors side by side, and the likelihood-ratio
test of the random part against the GLM. The test follows :func:`mlm.compare_ols` for linear
fits: with one variance parameter its null value is on the boundary and the statistic
follows the 50:50 mixture of chi2(0) and chi2(1) (Stata's ``chibar2(01)``, as
``melogit``/``mepoisson`` print ``LR test vs. logistic/Poisson model``); with more it is
referred to chi2(k), which is conservative. R has no test for this (``anova(glmer, glm)``
fails), so the reference computes it from the two ``logLik()``\\ s
(``tests/reference/glmm_compare.R``).

The coefficients of the two models answer different questions (Zeger, Liang & Albert 1988,
Biometrics 44, 1049-1060): the GLMM's are *conditional* on the group (the effect within one
district), the GLM's *population-averaged*. With a logit link and a random intercept of
variance tau^2 the population-averaged slopes are smaller by about ``sqrt(1 + 0.346 tau^2)``
(exactly ``sqrt(1 + tau^2)`` with a probit link; with a log link only the intercept moves,
by ``tau^2 / 2``): a GLM coefficient closer to zero is expected and is not a discrepancy.
"""

from __future__ import annotations

import html
import textwrap
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlm.toolkit.comparison import (ComparisonError, _first_intercept_block, _group_level_columns,
                                    _lr_result, _lr_sentence, _se_sentences, _side_by_side,
                                    boundary_lr_test)

__all__ = ["GLMComparison", "compare_glm"]

#: (16 sqrt(3) / (15 pi))^2: the logit-probit scaling of Zeger, Liang & Albert (1988), eq. 2.
LOGIT_ATTENUATION = (16 * np.sqrt(3) / (15 * np.pi)) ** 2


@dataclass(frozen=True)
class GLMComparison:
    """A glmer fit beside the single-level GLM: returned by :func:`mlm.compare_ols` for glmer fits.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by term: ``glm_estimate, glm_std_error, mlm_estimate, mlm_std_error,
        se_ratio`` (GLMM SE / GLM SE; above 1 means the GLM understated the uncertainty).
        Estimates on the link scale (log odds, log rates).
    lr_test : dict
        Likelihood-ratio test of the GLMM against the GLM: ``statistic, df, p_value,
        distribution, conservative, mlm_loglik, glm_loglik``.
    attenuation : float
        The expected ratio of conditional (GLMM) to population-averaged (GLM) slopes for a
        random-intercept model (``sqrt(1 + 0.346 tau^2)`` logit, ``sqrt(1 + tau^2)``
        probit); NaN otherwise (log link, random slopes, several factors).
    verdict : str
        The numbers in plain sentences.
    factor : str
        The grouping factor whose intercept variance is used.
    group_level : tuple of str
        Fixed-effect columns constant within groups of ``factor``.
    family : str
        The family and link, lme4's words (``binomial  ( logit )``).
    """

    table: pd.DataFrame = field(repr=False)
    lr_test: dict
    attenuation: float
    verdict: str = field(repr=False)
    factor: str = ""
    group_level: tuple = ()
    formula: str = ""
    family: str = ""

    def __str__(self) -> str:
        lr = self.lr_test
        return "\n".join([
            f"Generalized linear mixed model versus the single-level GLM ({self.family}): "
            f"{self.formula}", "",
            self.table.to_string(float_format=lambda v: f"{v:.4f}"), "",
            f"LR test vs. GLM: {_lr_result(lr, '  (conservative)')}"
            f"   [logLik GLMM {lr['mlm_loglik']:.3f}, GLM {lr['glm_loglik']:.3f}]",
            "", textwrap.fill(self.verdict, width=88)])

    def _repr_html_(self) -> str:
        lr = self.lr_test
        return (f"<p><b>GLMM versus the single-level GLM</b> ({html.escape(self.family)}): "
                f"<code>{html.escape(self.formula)}</code></p>"
                + self.table.to_html(float_format="%.4f")
                + f"<ul><li>LR test vs. GLM: {html.escape(_lr_result(lr, ' (conservative)'))}</li></ul>"
                + f"<p>{html.escape(self.verdict)}</p>")


_LINKS = {"logit": "Logit", "probit": "Probit", "cloglog": "CLogLog", "log": "Log"}


def _glm(fit):
    """The single-level GLM by statsmodels: (estimates, SEs, logLik)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    g = fit.gdesign
    fam = fit.family
    link = getattr(sm.families.links, _LINKS[fam.link])()
    keep = g.weights > 0  # rows without trials carry no likelihood (R's glm drops them too)
    X, w, off = g.design.X[keep], g.weights[keep], g.offset[keep]
    if fam.name == "binomial":
        k = w * g.y[keep]
        model = sm.GLM(np.column_stack([k, w - k]), X, family=sm.families.Binomial(link), offset=off)
    else:
        model = sm.GLM(g.y[keep], X, family=sm.families.Poisson(link), offset=off, var_weights=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            res = model.fit(maxiter=100, tol=1e-12)
        except (PerfectSeparationWarning, np.linalg.LinAlgError, ValueError) as exc:
            raise ComparisonError(f"The single-level GLM of '{fit.formula}' could not be fitted "
                                  f"({exc}): a predictor separates the outcome perfectly, so "
                                  "some coefficient is infinite. Drop that predictor (or merge "
                                  "its categories) before comparing.") from None
    if not res.converged:
        raise ComparisonError(f"The single-level GLM of '{fit.formula}' did not converge in 100 "
                              "iterations; the comparison would not be trustworthy.")
    return np.asarray(res.params), np.asarray(res.bse), float(res.llf)


def _single_intercept(fit, block):
    """Whether the random part is one random intercept (where the GLM's meaning is known)."""
    return block is not None and len(fit.design.blocks) == 1 and block.k == 1


def _attenuation(fit, block_index, block):
    """sqrt(1 + c tau^2) for a single random intercept (logit, probit); NaN otherwise."""
    if not _single_intercept(fit, block):
        return float("nan")
    tau2 = float(fit._covariances()[block_index][0, 0])
    c = {"logit": LOGIT_ATTENUATION, "probit": 1.0}.get(fit.family.link)
    return float(np.sqrt(1.0 + c * tau2)) if c is not None else float("nan")


def compare_glm(fit) -> GLMComparison:
    """The GLMM of a :func:`mlm.glmer` fit beside the single-level GLM (statsmodels).

    Called by :func:`mlm.compare_ols` for glmer fits. The GLM has the fit's family, link,
    prior weights (the trials of binomial counts) and offset, and is fitted to the same
    rows by statsmodels; its standard errors are R's ``glm`` ones (dispersion 1).

    Parameters
    ----------
    fit : GLMMResult

    Returns
    -------
    GLMComparison

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> cmp = mlm.compare_ols(fit)
    >>> cmp.table["se_ratio"].round(2).tolist()
    [1.6, 1.05, 1.04, 1.03]
    >>> cmp.lr_test["distribution"], round(cmp.lr_test["statistic"], 2)
    ('chibar2(01)', 14.01)
    """
    beta, se, ll_glm = _glm(fit)
    d = fit.design
    table = _side_by_side(fit, "glm", beta, se)
    i, block = _first_intercept_block(d)
    factor_block = block if block is not None else d.blocks[0]
    lr = boundary_lr_test(float(fit.loglik), ll_glm, int(fit.problem.n_theta))
    lr["mlm_loglik"], lr["glm_loglik"] = lr.pop("ml_loglik"), lr.pop("ols_loglik")
    group_level = _group_level_columns(d, factor_block.codes, factor_block.n_levels)
    att = _attenuation(fit, i, block)
    verdict = _verdict(table, lr, factor_block.group_name, group_level, att, fit.family,
                       _single_intercept(fit, block))
    if any(str(n).startswith("Separation") for n in fit.notes):
        verdict = ("Warning: the outcome is separated (see the fit's notes), so the estimates "
                   "of the separating terms, their standard errors and ratios are meaningless "
                   "in both models. " + verdict)
    return GLMComparison(table=table, lr_test=lr, attenuation=att, verdict=verdict,
                         factor=factor_block.group_name, group_level=tuple(group_level),
                         formula=fit.formula, family=fit.family.label)


def _verdict(table, lr, factor, group_level, attenuation, family, single_intercept):
    s = _se_sentences(table, factor, group_level, "GLM",
                      "The GLM understates the standard errors of the {factor}-level predictors: "
                      "the multilevel ones are larger ({parts}), so the GLM's p-values for them "
                      "are too small and its intervals too narrow.")
    s.append(_lr_sentence(lr, "the GLM",
                          "; half the chi2(1) tail, because a variance of 0 is on the boundary"))
    if np.isfinite(attenuation):
        s.append(f"The multilevel coefficients are conditional on the {factor} (the effect within "
                 f"one {factor}), the GLM's population-averaged: with a {family.link} link and "
                 f"this {factor} intercept variance the GLM's slopes are expected to be about "
                 f"{attenuation:.2f} times closer to zero (Zeger, Liang & Albert 1988), which is "
                 "not a discrepancy.")
    elif family.link == "log" and single_intercept:
        s.append(f"With a log link and a random intercept the slopes mean the same in both "
                 f"models, so a difference between them is a difference of estimates (the GLM "
                 f"weights the rows as if independent); only the intercept differs in meaning "
                 f"(the GLM's is larger by about half the {factor} variance).")
    else:
        s.append(f"The multilevel coefficients are conditional on the {factor}, the GLM's "
                 "population-averaged, and the two differ in meaning with random slopes or "
                 "several factors.")
    return " ".join(s)
