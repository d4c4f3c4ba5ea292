"""A two-level glmer fit printed the way HLM2 prints a generalised model (HGLM).

HLM (Raudenbush, Bryk, Cheong, Congdon & du Toit 2019, *HLM 8*, ch. 6; Raudenbush & Bryk
2002, ch. 10) writes a Bernoulli model as a sampling model and a link at level 1,
``Prob(Y=1|B) = P`` and ``log[P/(1-P)] = B0 + B1*(X) + ...``, a Poisson model as
``E(Y|B) = L`` (``m*L`` with an exposure ``m``) and ``log[L] = ...``, then the level-2
equations as for a linear model. Its results for the "unit-specific model" are the
fixed-effects table (coefficient, standard error, t-ratio, approximate d.f., p-value),
then the odds ratios (Bernoulli, binomial) or event-rate ratios (Poisson) with their
confidence intervals, and the variance components.

This module reuses :mod:`mlm.report.hlm_style` (the coefficients and gamma labels, the
level-2 equations, the fixed-effects and variance tables) and adds what only an HGLM has.

* Estimation: lme4's Laplace approximation (or adaptive quadrature), i.e. maximum
  likelihood. HLM's default for these models is PQL, whose estimates differ (variance
  components and coefficients somewhat closer to zero); HLM's LAPLACE option for
  Bernoulli models is the method used here.
* t-ratio = coefficient / SE, as lme4's z; approximate d.f. as HLM: ``J - F_q`` for the
  effects predicting a random coefficient, ``N - p`` for a level-1 coefficient that does
  not vary. p-values and the ratio intervals ``exp(b +- t_{0.975, df} SE)`` use t with
  those d.f., as HLM prints them (lme4's summary uses the normal distribution:
  ``fit.coefficients``).
* Variance components: standard deviations and variances, without HLM's chi-square
  tests, which :func:`mlm.variance_tests` computes for linear fits only (HLM builds them
  for an HGLM from each unit's regression on the linearised outcome of PQL's last
  iteration, which a Laplace fit does not have), and without reliabilities, for the same
  reason.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.report.hlm_style import (_RULE, HLMStyleError, _equations, _fixed_lines, _hlm_df,
                                  _tau_matrix_lines, _tests, _variance_lines)

__all__ = ["hglm_summary"]

_WHY = ("HLM's chi-square test of a variance component is built from each unit's own "
        "regression on the linearised outcome of PQL's last iteration; a Laplace fit has no such "
        "outcome, and mlm.variance_tests covers linear fits only. Test a variance component by a "
        "likelihood-ratio test of the model without it (halve its p-value: the null value lies on "
        "the boundary).")
_LINKS = {"logit": "log[P/(1 - P)] = ", "probit": "probit[P] = ", "cloglog": "log[-log(1 - P)] = ",
          "log": "log[L] = "}
_LINK_TITLE = {"logit": "Logit", "probit": "Probit", "cloglog": "Complementary log-log",
               "log": "Log"}


def _exposure(fit):
    """The m of HLM's E(Y|B) = m*L when the offset is log(m), else None."""
    for o in fit.gdesign.offsets:
        m = re.fullmatch(r"\s*log\((.+)\)\s*", o)
        if m:
            return m.group(1).strip().upper()
    return None


def _level1(fit):
    g, fam = fit.gdesign, fit.family
    y = g.response.upper()
    if fam.name == "poisson":
        m = _exposure(fit)
        first = f"E({y}|B) = {m}*L" if m else f"E({y}|B) = L"
        off = (f"  (offset: {', '.join(g.offsets)})" if g.offsets and not m
               else "")
        return [first + off, _LINKS["log"]]
    if np.all(g.weights == 1):
        success = g.success if g.success is not None else "1"
        return [f"Prob({y}={success}|B) = P", _LINKS[fam.link]]
    return [f"E({y}|B) = m*P, m the number of trials", _LINKS[fam.link]]


def _hlm_table(fit, hlm_df):
    """The coefficient table with HLM's d.f. and the p-values of t with those d.f."""
    co = fit.coefficients.copy()
    df = np.array([hlm_df[c] for c in range(len(co))], dtype=float)
    co["df"] = df
    co["p_value"] = 2 * stats.t.sf(np.abs(co["statistic"].to_numpy()), df)
    q = stats.t.ppf(0.975, df)
    co["conf_low"] = co["estimate"] - q * co["std_error"]
    co["conf_high"] = co["estimate"] + q * co["std_error"]
    return co


def _ratio_lines(fit, coefs, table):
    """HLM's table of odds ratios (or event-rate ratios) with 95% confidence intervals."""
    name = "Event Rate Ratio" if fit.family.link == "log" else "Odds Ratio"
    head = f"{'Fixed Effect':<24}{'Coefficient':>13}{name:>18}{'Confidence Interval':>26}"
    out = [_RULE, head, _RULE]
    for k in coefs:
        out.append(f"For {k.title}, {k.label}")
        for c, w, g in k.preds:
            r = table.iloc[c]
            label = f"    {'INTRCPT2' if w is None else w.upper()}, {g}"
            ci = f"({np.exp(r['conf_low']):.6f},{np.exp(r['conf_high']):.6f})"
            out.append(f"{label:<24}{r['estimate']:13.6f}{np.exp(r['estimate']):18.6f}{ci:>26}")
    out.append(_RULE)
    return out


def hglm_summary(fit, coefs, robust=None) -> str:
    """The HGLM layout of a :func:`mlm.glmer` fit with one grouping factor (``coefs`` from
    :func:`mlm.report.hlm_style._structure`); see the module's notes."""
    from mlm.glmm.display import method

    if robust is not None:
        raise HLMStyleError(f"robust={robust!r}: robust standard errors (mlm.robust, HLM's "
                            "population-average model) are for linear fits; a glmer fit's HLM "
                            "layout shows the unit-specific model only.")
    fam = fit.family
    J = fit.design.blocks[0].n_levels
    hlm_df = _hlm_df(fit, coefs)
    table = _hlm_table(fit, hlm_df)
    vt = _tests(fit, why=_WHY)
    kind = {"poisson": "Poisson", "binomial": "Bernoulli" if np.all(fit.gdesign.weights == 1)
            else "Binomial"}[fam.name]
    lines = [f"Two-level {kind} model as HLM2 lays it out  [mlm; ML, {method(fit)}]",
             f"Formula: {fit.formula}",
             f"Method of estimation: maximum likelihood, {method(fit)} (HLM's default is PQL, whose "
             "estimates differ; its LAPLACE option is this method)",
             f"Number of level-1 units = {fit.nobs}; level-2 units ({vt.attrs['factor']}) = {J}", ""]
    lines += _equations(fit, coefs, level1=_level1(fit), outcome="ETA", residual=None)
    lines += _tau_matrix_lines(fit, coefs, vt)
    lines += [f"Results for Non-linear Model with the {_LINK_TITLE[fam.link]} Link Function",
              "Unit-Specific Model (conditional on the random effects)", ""]
    lines += _fixed_lines(coefs, table, None, "Final estimation of fixed effects\n(Unit-specific model)")
    lines += textwrap.wrap("t-ratio = coefficient / standard error (lme4's z); 'Approx. d.f.' as "
                           "HLM: J - F_q, N - p for a coefficient that does not vary; p-values "
                           "from t with those d.f., as HLM prints them (lme4's normal p-values: "
                           "fit.coefficients).", 78)
    if fam.link in ("logit", "log"):
        lines += [""] + _ratio_lines(fit, coefs, table)
        lines.append("Intervals: exp(coefficient -+ t(0.975, d.f.) x standard error), as HLM.")
    else:
        lines += textwrap.wrap(f"No odds ratios: with the {fam.link} link exp(coefficient) is not "
                               "an odds ratio (HLM fits Bernoulli models with the logit link).", 78)
    var_lines = _variance_lines(fit, coefs, vt)
    lines += [""] + var_lines[:-1] + textwrap.wrap(var_lines[-1], 78)
    lines += ["", "Statistics for current covariance components model", "-" * 50,
              f"Deviance = {fit.deviance:.6f}  (-2 log-likelihood, {method(fit)})",
              f"Number of estimated parameters = {fit.npar}"]
    notes = fit.messages()
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def hlm_fixed_table(fit) -> pd.DataFrame:
    """HLM's fixed-effects numbers for a glmer fit: ``fit.coefficients`` with HLM's d.f., the
    p-values of t with those d.f. and the intervals ``b +- t_{0.975, df} SE``."""
    from mlm.report.hlm_style import _structure

    return _hlm_table(fit, _hlm_df(fit, _structure(fit)))
