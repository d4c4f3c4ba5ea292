"""A two-level linear fit printed the way the HLM program (HLM2) prints it.

Raudenbush & Bryk (2002, *Hierarchical Linear Models*, 2nd ed.) and the courses built on
their HLM program present a model as a level-1 equation and one level-2 equation per
level-1 coefficient, and its results as "Final estimation of fixed effects" (with gamma
labels, and again with robust standard errors), "Final estimation of variance
components" (chi-square tests) and the reliability of each random coefficient. This
module lays out an :func:`mlm.lmer` fit in that form (``fit.summary(style="hlm")``) so a
student can put it beside the textbook.

Which fixed effect predicts which level-1 coefficient is read by
:mod:`mlm.inference.hlm` (the mapping its variance tests use): a group-level column
predicts the intercept, a cross-level interaction ``x:w`` predicts the slope of ``x``,
a level-1 column without a random slope is a coefficient that does not vary.

Degrees of freedom: the p-values use the fit's own method (Satterthwaite by default, as
lmerTest). HLM's own df are printed beside them ("HLM d.f."): ``J - F_q`` for the
effects predicting a randomly varying coefficient ``q`` (``F_q`` fixed effects predict
it, its intercept included; R&B 2002, p. 58), and ``N - p`` for the effects of a
coefficient that does not vary (as in HLM's printed outputs, where it is N - 2 with
two fixed effects). Robust standard errors are :func:`mlm.robust`'s, with
clubSandwich's Satterthwaite df for the chosen type; HLM's robust table keeps its
model df.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg import block_diag

from mlm.errors import MLMError
from mlm.inference.ddf import method_line
from mlm.inference.hlm import VarianceTestError, _level1_model, variance_tests
from mlm.inference.robust import robust as _robust
from mlm.toolkit.interactions import _split_name
from mlm.results.linear import require_fit

__all__ = ["HLMStyleError", "hlm_summary", "styled_summary", "STYLES"]

#: Layouts ``fit.summary(style=...)`` knows.
STYLES = ("lme4", "hlm")

_RULE = "-" * 78


class HLMStyleError(MLMError, ValueError):
    """A model or option HLM's layout cannot show (the message says what to use instead)."""


@dataclass
class _Coef:
    """One level-1 coefficient (B_q) and the fixed effects (gammas) that predict it."""
    name: str            # lme4's column name: "(Intercept)", "cses"
    random: bool
    label: str = ""      # "B0"
    preds: list = field(default_factory=list)  # (fixed index, level-2 name or None, "G01")

    @property
    def title(self):
        """HLM's name of the coefficient: 'INTRCPT1' or 'CSES slope'."""
        return "INTRCPT1" if self.name == "(Intercept)" else f"{self.name.upper()} slope"


def _check(fit):
    require_fit(fit, "summary(style='hlm')'s model", HLMStyleError, glmm=True)
    factors = list(dict.fromkeys(b.group_name for b in fit.design.blocks))
    if len(factors) != 1:
        raise HLMStyleError(
            f"style='hlm' lays out two-level models (HLM2: one grouping factor); this model has "
            f"{len(factors)} grouping factors ({', '.join(factors)}), which HLM2 cannot express "
            "(three-level and cross-classified models are HLM3's and HCM2's). Use the default "
            "layout: fit.summary().")


def _level2_name(fname, coef):
    """The level-2 variable in fixed effect ``fname`` predicting ``coef`` (None: its intercept)."""
    if fname == coef:
        return None
    if coef == "(Intercept)":
        return fname
    parts = _split_name(fname)
    if coef in parts and len(parts) > 1:
        return ":".join(p for p in parts if p != coef)
    return fname


def _structure(fit):
    """The level-1 coefficients in HLM's order, each with its gammas labelled."""
    d = fit.design
    codes, J = d.blocks[0].codes, d.blocks[0].n_levels
    names, _, n_random, assign = _level1_model(fit, codes, J)
    coefs = [_Coef(n, q < n_random) for q, n in enumerate(names)]
    for c, q, _w in assign:
        coefs[q].preds.append((c, _level2_name(d.fixed_names[c], names[q])))
    # the intercept first, then the others in the order their effects enter the formula
    first = {id(k): min((c for c, _ in k.preds), default=len(d.fixed_names) + q)
             for q, k in enumerate(coefs)}
    coefs.sort(key=lambda k: (k.name != "(Intercept)", first[id(k)]))
    start = 0 if coefs and coefs[0].name == "(Intercept)" else 1
    for i, k in enumerate(coefs, start):
        k.label = f"B{i}"
        own = [p for p in k.preds if p[1] is None]
        rest = sorted((p for p in k.preds if p[1] is not None), key=lambda p: p[0])
        k.preds = [(c, None, f"G{i}0") for c, _ in own] + \
                  [(c, w, f"G{i}{s}") for s, (c, w) in enumerate(rest, 1)]
    return coefs


def _equations(fit, coefs, level1=None, outcome=None, residual="R"):
    """HLM's equations; ``level1`` replaces the linear level-1 line (an HGLM's sampling
    model and link), ``outcome`` the left side of the mixed model, ``residual`` its R."""
    outcome = outcome or fit.design.formula.response.upper()
    terms = [k.label if k.name == "(Intercept)" else f"{k.label}*({k.name.upper()})" for k in coefs]
    level1 = level1 or [f"{outcome} = "]
    lines = ["Summary of the model specified (in equation format)", "-" * 51, "",
             "Level-1 Model", *[f"    {x}" for x in level1[:-1]],
             f"    {level1[-1]}" + " + ".join(terms) + (f" + {residual}" if residual else ""), "",
             "Level-2 Model"]
    mixed = []
    for k in coefs:
        x = "" if k.name == "(Intercept)" else f"*{k.name.upper()}"
        rhs = [g if w is None else f"{g}*({w.upper()})" for _, w, g in k.preds]
        mixed += [(g if w is None else f"{g}*{w.upper()}") + x for _, w, g in k.preds]
        if k.random:
            rhs.append(f"U{k.label[1:]}")
        lines.append(f"    {k.label} = " + (" + ".join(rhs) if rhs else "0"))
    mixed += [f"U{k.label[1:]}" + ("" if k.name == "(Intercept)" else f"*{k.name.upper()}")
              for k in coefs if k.random]
    lines += ["", "Mixed Model"] + _wrap(f"    {outcome} = ", mixed + ([residual] if residual else [])) + [""]
    return lines


def _wrap(head, terms, width=78):
    """``head + t1 + t2 + ...`` broken before a ``+`` so no line passes ``width``."""
    lines, cur = [], head + terms[0]
    for t in terms[1:]:
        if len(cur) + 3 + len(t) > width:
            lines.append(cur)
            cur = " " * len(head) + "+ " + t
        else:
            cur += " + " + t
    return lines + [cur]


def _hlm_df(fit, coefs):
    """HLM's df of each fixed effect: J - F_q (random coefficient q) or N - p (fixed one)."""
    J = fit.design.blocks[0].n_levels
    df = {}
    for k in coefs:
        for c, _, _ in k.preds:
            df[c] = J - len(k.preds) if k.random else fit.nobs - len(fit.design.fixed_names)
    return df


def _p_text(p):
    if np.isnan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _num(v, width, digits):
    """``v`` right-aligned in ``width`` with ``digits`` decimals; '-' when not computed."""
    return f"{'-':>{width}}" if np.isnan(v) else f"{v:{width}.{digits}f}"


def _fixed_lines(coefs, table, hlm_df, title):
    """One of HLM's "Final estimation of fixed effects" tables (``hlm_df`` None: no column
    'HLM d.f.', because 'Approx. d.f.' already is HLM's)."""
    extra = hlm_df is not None
    head = (f"{'Fixed Effect':<24}{'Coefficient':>13}{'Standard':>11}{'t-ratio':>10}"
            f"{'Approx.':>9}{'p-value':>9}" + (f"{'HLM':>6}" if extra else ""))
    head2 = f"{'':<24}{'':>13}{'error':>11}{'':>10}{'d.f.':>9}{'':>9}" + (f"{'d.f.':>6}" if extra else "")
    out = [title, _RULE, head, head2, _RULE]
    for k in coefs:
        out.append(f"For {k.title}, {k.label}")
        for c, w, g in k.preds:
            r = table.iloc[c]
            label = f"    {'INTRCPT2' if w is None else w.upper()}, {g}"
            out.append(f"{label:<24}{r['estimate']:13.6f}{r['std_error']:11.6f}"
                       f"{r['statistic']:10.3f}{r['df']:9.1f}{_p_text(r['p_value']):>9}"
                       + (f"{hlm_df[c]:6d}" if extra else ""))
    out.append(_RULE)
    return out


def _tau_lines(fit, coefs, vt):
    by_name = {k.name: k for k in coefs}
    rel_labels = [(f"INTRCPT1, {by_name[n].label}" if n == "(Intercept)"
                   else f"{n.upper()}, {by_name[n].label}") for n in vt.index]
    out = [f"sigma^2 = {fit.sigma ** 2:12.5f}", ""] + _tau_matrix_lines(fit, coefs, vt)
    out += [_RULE[:52], f" {'Random level-1 coefficient':<32}Reliability estimate", _RULE[:52]]
    out += [f" {lab:<32}{_num(vt.loc[n, 'reliability'], 20, 3)}" for lab, n in zip(rel_labels, vt.index)]
    out += [_RULE[:52], ""]
    return out


def _variance_lines(fit, coefs, vt):
    by_name = {k.name: k for k in coefs}
    out = ["Final estimation of variance components", _RULE,
           f"{'Random Effect':<20}{'Standard':>11}{'Variance':>12}{'df':>6}{'Chi-square':>13}"
           f"{'p-value':>9}",
           f"{'':<20}{'Deviation':>11}{'Component':>12}", _RULE]
    for n, r in vt.iterrows():
        k = by_name[n]
        lab = f"{'INTRCPT1' if n == '(Intercept)' else n.upper() + ' slope'}, U{k.label[1:]}"
        out.append(f"{lab:<20}{r['sd']:11.5f}{r['variance']:12.5f}{_num(r['df'], 6, 0)}"
                   f"{_num(r['chi_square'], 13, 5)}{_p_text(r['p_value']):>9}")
    if hasattr(fit, "sigma"):      # a GLMM has no level-1 variance component
        out.append(f"{'level-1, R':<20}{fit.sigma:11.5f}{fit.sigma ** 2:12.5f}")
    out.append(_RULE)
    if "why" in vt.attrs:
        out.append(vt.attrs["why"])
    elif vt.attrs["groups_used"] < vt.attrs["groups"]:
        out.append(f"The chi-square statistics reported above are based on only "
                   f"{vt.attrs['groups_used']} of {vt.attrs['groups']} units that had sufficient "
                   "data for computation.")
    return out


def _tests(fit, why=None):
    """variance_tests(fit), or the variances alone when no group allows its own regression
    (or, with ``why``, when the tests do not apply: a GLMM)."""
    try:
        if why is not None:
            raise VarianceTestError(why)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the left-out groups are said under the table
            return variance_tests(fit)
    except VarianceTestError as exc:
        names = [c for b in fit.design.blocks for c in b.columns]
        var = np.diag(block_diag(*fit._covariances()))
        vt = pd.DataFrame({"sd": np.sqrt(var), "variance": var, "df": np.nan, "chi_square": np.nan,
                           "p_value": np.nan, "reliability": np.nan},
                          index=pd.Index(names, name="coefficient"))
        J = fit.design.blocks[0].n_levels
        vt.attrs.update({"groups": J, "groups_used": 0, "factor": fit.design.blocks[0].group_name,
                         "why": f"Chi-square tests and reliabilities not computed: {exc}"})
        return vt


def _tau_matrix_lines(fit, coefs, vt):
    """tau and tau as correlations, with HLM's row labels."""
    by_name = {k.name: k for k in coefs}
    tau = block_diag(*fit._covariances())
    labels = [(f"INTRCPT1,{by_name[n].label}" if n == "(Intercept)"
               else f"{n.upper()},{by_name[n].label}") for n in vt.index]
    w = max(len(s) for s in labels) + 2
    sd = np.sqrt(np.diag(tau))
    corr = tau / np.outer(np.where(sd > 0, sd, 1), np.where(sd > 0, sd, 1))
    out = ["tau"]
    out += [f" {lab:<{w}}" + "".join(f"{v:12.5f}" for v in tau[i]) for i, lab in enumerate(labels)]
    out += ["", "tau (as correlations)"]
    out += [f" {lab:<{w}}" + "".join(f"{v:7.3f}" for v in corr[i]) for i, lab in enumerate(labels)]
    return out + [""]


def hlm_summary(fit, robust: str | None = None) -> str:
    """A two-level fit laid out as HLM2 prints it (``fit.summary(style="hlm")``).

    The level-1 and level-2 equations with the variable names, the estimates of sigma^2
    and tau with the reliability of each random coefficient, "Final estimation of fixed
    effects" with HLM's gamma labels (and, when ``robust`` is given, the same with
    cluster-robust standard errors), and "Final estimation of variance components"
    with Raudenbush & Bryk's chi-square tests (:func:`mlm.variance_tests`).

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        A two-level model (one grouping factor) from :func:`mlm.lmer`, or from
        :func:`mlm.glmer` (HLM's Bernoulli, binomial or Poisson layout: see
        :mod:`mlm.report.hlm_glmm`).
    robust : {"CR0", "CR1", "CR2"}, optional
        Adds "Final estimation of fixed effects (with robust standard errors)" from
        :func:`mlm.robust`. ``"CR0"`` is the sandwich HLM prints.

    Returns
    -------
    str

    Raises
    ------
    HLMStyleError
        For models with more than one grouping factor (three levels, crossed factors),
        which HLM2 cannot express, or a bad ``robust`` type.

    Notes
    -----
    Variable names are printed in capitals, as HLM does. p-values use the fit's df method
    (Satterthwaite by default); the column "HLM d.f." gives HLM's df, ``J - F_q`` for the
    effects predicting a random coefficient, ``N - p`` for the others. HLM stops iterating
    at a "small change in likelihood function", before the REML optimum reached here, so
    its printed estimates can differ in the last digits for models with random slopes.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    >>> text = fit.summary(style="hlm")
    >>> print(text.splitlines()[0])
    Two-level model as HLM2 lays it out  [mlm; REML]
    >>> "INTRCPT1, U0" in text and "1660.23" in text     # R&B (2002) table 4.2
    True
    """
    _check(fit)
    try:
        coefs = _structure(fit)
    except VarianceTestError as exc:
        raise HLMStyleError(f"style='hlm' cannot lay this model out: {exc} Use the default "
                            "layout: fit.summary().") from None
    if not hasattr(fit, "reml"):     # a glmer fit: HLM's layout of an HGLM
        from mlm.report.hlm_glmm import hglm_summary
        return hglm_summary(fit, coefs, robust)
    vt = _tests(fit)
    rob = None
    if robust is not None:
        try:
            rob = _robust(fit, robust)
        except MLMError as exc:
            raise HLMStyleError(f"robust={robust!r}: {exc}") from None
    hlm_df = _hlm_df(fit, coefs)
    crit = "restricted maximum likelihood" if fit.reml else "full maximum likelihood"
    J = fit.design.blocks[0].n_levels
    lines = ["Two-level model as HLM2 lays it out  [mlm; " + ("REML" if fit.reml else "ML") + "]",
             f"Formula: {fit.formula}", f"Method of estimation: {crit}",
             f"Number of level-1 units = {fit.nobs}; level-2 units ({vt.attrs['factor']}) = {J}", ""]
    lines += _equations(fit, coefs)
    lines += _tau_lines(fit, coefs, vt)
    lines += _fixed_lines(coefs, fit.coefficients, hlm_df, "Final estimation of fixed effects")
    lines += [f"p-values: {method_line(fit.ddf)} (column 'Approx. d.f.').",
              "'HLM d.f.' is HLM's own df (J - F_q; N - p for a coefficient that does not vary), "
              "for comparison."]
    if rob is not None:
        lines += [""] + _fixed_lines(
            coefs, rob, hlm_df, f"Final estimation of fixed effects\n(with robust standard errors, "
            f"{robust}, clustered on {rob.attrs['cluster']})")
        lines.append(f"Robust p-values use clubSandwich's Satterthwaite df for {robust} "
                     "(mlm.robust); HLM prints its model df here.")
    lines += [""] + _variance_lines(fit, coefs, vt)
    npar = fit.npar - (len(fit.design.fixed_names) if fit.reml else 0)
    lines += ["", "Statistics for current covariance components model", "-" * 50,
              f"Deviance = {fit.deviance:.6f}" + ("  (REML)" if fit.reml else ""),
              f"Number of estimated parameters = {npar}"]
    notes = fit.messages()
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def styled_summary(fit, style: str, robust: str | None = None) -> str:
    """The summary in a named layout: ``"hlm"`` (:func:`hlm_summary`)."""
    if isinstance(style, str) and style == "hlm":
        return hlm_summary(fit, robust=robust)
    raise HLMStyleError(f"style={style!r} is not a summary layout; use one of "
                        f"{', '.join(repr(s) for s in STYLES)}.")
