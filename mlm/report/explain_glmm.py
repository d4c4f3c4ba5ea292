"""A fitted generalised linear mixed model in words (issue 13, item 1, for :func:`mlm.glmer`).

The linear reading (:mod:`mlm.report.explain`) is kept where it applies: the columns are
described by the same code (reference categories, group-mean centering, the level of each
predictor, cross-level interactions and simple slopes), and the sentences are the ones an
applied text on logistic and Poisson multilevel models uses (Snijders & Bosker 2012,
ch. 17; Hox, Moerbeek & van de Schoot 2018, ch. 6-7; Rabe-Hesketh & Skrondal 2012,
ch. 10 and 13):

* logit link: each effect as an odds ratio, ``exp(b)``, "the odds of <success> are 2.01
  times as high (101% higher)" or "35% lower", with its 95% Wald interval;
* log link (Poisson): a rate ratio, "the expected count (rate) is ... times as high";
* probit and complementary log-log links: no odds ratios; the coefficient is read on its
  own scale (a probit coefficient moves the z-score of the probability; a cloglog
  coefficient moves ``log(-log(1 - p))``, and ``exp(b)`` is a ratio of discrete-time
  hazards, not of odds);
* the random effects: standard deviations on the link scale, the median odds ratio
  (Merlo et al. 2006, J Epidemiol Community Health 60: 290-297), or median rate ratio for
  counts, ``exp(sqrt(2 tau2) * qnorm(0.75))``, and the latent-scale ICC with the residual
  variance of the link's latent distribution (``pi^2/3`` logit, 1 probit, ``pi^2/6``
  cloglog), as performance's ``icc()`` computes it (random slopes by Johnson 2014: the
  random-effect variance averaged over the rows).

Effects are conditional on the random effects ("unit-specific", as HLM calls them):
they compare observations within the same group; the population-averaged effects of a
marginal model are closer to 0 (Snijders & Bosker 2012, sec. 17.2.3).
"""

from __future__ import annotations

import math
import re

import numpy as np
from mlm._lazy import stats

from mlm.errors import MLMError
from mlm.toolkit.glmm_variance import latent_icc
from mlm.report.explain import (Explanation, _binary, _binary_words, _cap, _columns,
                                _components, _contextual_contrasts, _direction, _effect_lines,
                                _few_groups, _fit_state, _groups, _hl, _intercept_condition, _level1_within,
                                _observations, _p, _roles, _sections, _sign_changes,
                                _simple_slopes_text, _slope_correlations, _slope_labels,
                                _slope_moderators)

__all__ = ["explain_glmm", "median_ratio"]

def median_ratio(tau2: float) -> float:
    """Median odds (or rate) ratio of a random-intercept variance: exp(sqrt(2 tau2) z_0.75)."""
    return float(np.exp(np.sqrt(2.0 * tau2) * stats.norm.ppf(0.75)))


# --------------------------------------------------------------------------- formatting
def _r(x: float) -> str:
    """A ratio: 2 decimals between 0.01 and 1000, else 3 significant digits."""
    if not np.isfinite(x):
        return "infinite" if x > 0 else "not available"
    return f"{x:.2f}" if 0.01 <= x < 1000 else f"{x:.3g}"


def _c(x: float) -> str:
    """A coefficient on the link scale (3 decimals; 2 significant digits when tiny)."""
    if x != 0 and abs(x) < 0.0005:
        return f"{x:.2g}"
    s = f"{x:.3f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def _pct(x: float) -> str:
    """A share as a percentage: whole percents, 2 significant digits below 1%."""
    v = 100 * x
    return f"{v:.0f}%" if v >= 0.995 else f"{v:.2g}%"


class _Scale:
    """The words of one link: what a coefficient changes and how to say by how much."""

    def __init__(self, fit):
        self.fit = fit
        self.link = fit.family.link
        self.outcome = _outcome(fit)
        self.ratio = {"logit": "odds ratio", "log": "rate ratio"}.get(self.link)
        self.link_name = {"logit": "log-odds", "log": "log", "probit": "probit",
                          "cloglog": "complementary log-log"}[self.link]
        #: what a group's random intercept shifts: 'log-odds of use = Y'
        self.level_noun = {"logit": f"log-odds of {self.outcome}",
                           "probit": f"probit (z-score) of the probability of {self.outcome}",
                           "cloglog": f"complementary log-log of the probability of {self.outcome}",
                           "log": f"log expected {_count_noun(fit)}"}[self.link]
        if self.link == "logit":
            self.subject, self.verb = f"the odds of {self.outcome}", "are"
        elif self.link == "log":
            self.subject, self.verb = f"the expected {_count_noun(fit)}", "is"
        elif self.link == "probit":
            self.subject, self.verb = f"the probit (z-score) of the probability of {self.outcome}", "is"
        else:
            self.subject, self.verb = (f"the complementary log-log of the probability of "
                                       f"{self.outcome}, log(-log(1 - p)),", "is")

    def change(self, b: float) -> str:
        """'the odds of use = Y are 2.01 times as high (101% higher)' and the like."""
        if self.ratio is None:
            return f"{self.subject} {self.verb} {_c(abs(b))} {_hl(b)}"
        r = math.exp(b)
        if b > 0:
            pct = f"{_pct(r - 1)} higher" if r < 10 else "higher"
            return f"{self.subject} {self.verb} {_r(r)} times as high ({pct})"
        if b < 0:
            return f"{self.subject} {self.verb} {_pct(1 - r)} lower ({_r(r)} times as high)"
        return f"{self.subject} {self.verb} no different"

    def test(self, row, ratio: str | None = None) -> str:
        """'(odds ratio 2.01, 95% CI 1.58 to 2.55; log-odds 0.697, z = 5.70, p < 0.0001, significant)'."""
        sig = "significant" if row["p_value"] < 0.05 else "not significant"
        tail = f"z = {row['statistic']:.2f}, {_p(row['p_value'])}, {sig}"
        ratio = ratio or self.ratio
        if self.ratio is None:
            return (f"({self.link_name} scale, 95% CI {_c(row['conf_low'])} to "
                    f"{_c(row['conf_high'])}; {tail})")
        return (f"({ratio} {_r(math.exp(row['estimate']))}, 95% CI {_r(math.exp(row['conf_low']))} "
                f"to {_r(math.exp(row['conf_high']))}; {self.link_name} {_c(row['estimate'])}, {tail})")


def _outcome(fit) -> str:
    """How the success is named: 'use = Y', 'y = 1', 'incidence' (cbind), or the count."""
    g = fit.gdesign
    lhs = fit.formula.split("~")[0].strip()
    if fit.family.name == "poisson":
        return lhs
    if g.success is not None:
        return f"{g.response} = {g.success}"
    if lhs.startswith("cbind("):
        return f"{g.response} (the successes of {lhs})"
    if np.all(g.weights == 1):
        return f"{lhs} = 1"
    return f"success in {lhs}"


def lhs_is_cbind(fit) -> bool:
    return fit.formula.split("~")[0].strip().startswith("cbind(")


def _count_noun(fit) -> str:
    """'count of y', or 'rate of y per size' with an offset(log(size))."""
    lhs = fit.formula.split("~")[0].strip()
    offs = list(fit.gdesign.offsets)
    if fit.gdesign.offset_arg is not None:
        offs.append(str(fit.gdesign.offset_arg))
    for o in offs:
        m = re.fullmatch(r"\s*log\((.+)\)\s*", o)
        if m:
            return f"rate of {lhs} (per unit of {m.group(1).strip()})"
    if offs:
        return f"count of {lhs} (given the offset {', '.join(offs)})"
    return f"count of {lhs}"


# --------------------------------------------------------------------------- sections
_FAMILY = {"logit": "logistic", "probit": "probit", "cloglog": "complementary log-log",
           "log": "Poisson"}


def _outcome_facts(fit, sc) -> str:
    g = fit.gdesign
    if fit.family.name == "poisson":
        y = g.y
        return (f"The counts of {sc.outcome} run from {y.min():g} to {y.max():g} "
                f"(mean {y.mean():.2f}).")
    k = g.y * g.weights
    if np.all(g.weights == 1):
        level = ("" if g.success is None else
                 ", the level modelled as the success (TRUE, as in R)" if str(g.success) == "True" else
                 f", the level modelled as the success (the second level of {g.response}, as in R)")
        return (f"{int(round(k.sum()))} of {fit.nobs} observations ({100 * k.mean():.1f}%) have "
                f"{sc.outcome}{level}.")
    how = ("" if lhs_is_cbind(fit) else
           f"; the outcome is the proportion {fit.formula.split('~')[0].strip()} with the weights as trials")
    return (f"{k.sum():g} successes in {g.weights.sum():g} trials "
            f"({100 * k.sum() / g.weights.sum():.1f}%{how}).")


def _sample(fit, sc):
    from mlm.glmm.display import method

    factors = list(dict.fromkeys(x.group_name for x in fit.design.blocks))
    groups = " and ".join(_groups(f) for f in factors)
    first = (f"A {_FAMILY[sc.link]} mixed model ({fit.family.name} family, {sc.link} link) of "
             f"{fit.formula.split('~')[0].strip()}, fitted by maximum likelihood "
             f"({method(fit).replace('Approximation', 'approximation')}), on "
             f"{_observations(fit)}. " + _outcome_facts(fit, sc))
    if sc.link == "logit":
        how = ("Effects are odds ratios, exp(coefficient): how many times as high the odds of "
               f"{sc.outcome} are (odds = p / (1 - p))")
    elif sc.link == "log":
        how = f"Effects are rate ratios, exp(coefficient): how many times as high the expected {_count_noun(fit)} is"
    elif sc.link == "probit":
        how = ("Effects are probit coefficients: how much the z-score of the probability of "
               f"{sc.outcome} (the standard-normal quantile of p; a latent outcome in units of "
               "its residual SD) rises or falls. Probit coefficients are not odds ratios")
    else:
        how = ("Effects are complementary log-log coefficients: how much log(-log(1 - p)) rises "
               f"or falls for p the probability of {sc.outcome}; exp(coefficient) is a ratio of "
               "hazards when the outcome records whether an event happened within a period, not "
               "an odds ratio")
    second = (f"{how}. Each effect controls for the other predictors and has its 95% Wald "
              "confidence interval (CI) and z-test (as lme4's summary); significant: p < 0.05. "
              "Effects are unit-specific "
              f"(conditional on the random effects): they compare observations in the same "
              f"{' and '.join(factors)}, or in {groups} with equal random "
              "effects; effects averaged over the population (a marginal model's) are closer to "
              "zero.")
    return [first, second]


def _intercept(fit, cols, co, sc):
    if "(Intercept)" not in co.index:
        return []
    row = co.loc["(Intercept)"]
    b = float(row["estimate"])
    cond = _intercept_condition(cols)
    typical = " and " + " and ".join(
        f"in a {g} with a random effect of 0 (a typical {g})"
        for g in dict.fromkeys(x.group_name for x in fit.design.blocks))
    p = float(fit.family.linkinv(np.array([b]))[0])
    if sc.link == "logit":
        what = f"the odds of {sc.outcome} are {_r(math.exp(b))} (a probability of {p:.3f})"
        return [f"Intercept: {what}{cond}{typical} {sc.test(row, 'odds')}."]
    if sc.link == "log":
        return [f"Intercept: the expected {_count_noun(fit)} is {_r(math.exp(b))}{cond}{typical} "
                f"{sc.test(row, 'expected value')}."]
    return [f"Intercept: {sc.subject} is {_c(b)} (a probability of {p:.3f}){cond}{typical} "
            f"{sc.test(row)}."]


def _main_effect(fit, c, row, sc, within, moderated_by):
    part = c.parts[0]
    eff = sc.change(float(row["estimate"]))
    if part["kind"] == "dummy":
        ref = part["reference"] or "the reference category"
        text = (f"{c.name}: {eff} for {part['var']} = {part['category']} than for "
                f"{part['var']} = {ref} (the reference category)")
    elif part["kind"] == "cwc":
        text = (f"{c.name}, the within-{part['group']} effect of {part['var']}: within the same "
                f"{part['group']}, {eff} for each 1 unit of {part['var']} above the "
                f"{part['group']}'s mean")
    elif part["kind"] == "gm":
        text = (f"{c.name}, the between-{part['group']} effect of {part['var']}: in "
                f"{_groups(part['group'])} whose mean {part['var']} is 1 unit higher, {eff}")
    elif _binary(fit, c.name):
        who = f"{_groups(c.level)} " if c.level != "1" else "observations "
        text = f"{c.name}: for {who}with {c.name} = 1 rather than 0, {eff}"
    elif c.level != "1":
        text = f"{c.name} ({c.level}-level): in {_groups(c.level)} whose {c.name} is 1 unit higher, {eff}"
    else:
        text = f"{c.name}: {eff} for each 1 unit higher {c.name}" + _level1_within(c, within)
    if moderated_by:
        text += " when " + " and ".join(moderated_by)
    return f"{text} {sc.test(row)}."


def _interaction(fit, c, row, sc, cross, cols):
    from mlm.toolkit.interactions import simple_slopes

    b = float(row["estimate"])
    r = _roles(fit, c, cross)
    if r.focal is None:
        return (f"{c.name} (interaction of {', '.join(r.names)}): {sc.link_name} {_c(b)} "
                f"{sc.test(row)}; read it through predictions at chosen values.")
    if r.focal not in fit.fixef.index:
        return f"{c.name} ({r.kind}): {sc.link_name} {_c(b)} {sc.test(row)}."
    direction = _direction(b, float(fit.fixef[r.focal]))
    if sc.ratio:
        size = (f"its {sc.ratio} is multiplied by {_r(math.exp(b))} {r.per} "
                f"({sc.link_name} {_c(abs(b))} {_hl(b)})")
    else:
        size = f"its coefficient is {_c(abs(b))} {_hl(b)} {r.per} on the {sc.link_name} scale"
    fpart = dict(zip(r.names, c.parts)).get(r.focal, {"kind": "numeric", "var": r.focal})
    f_one, f_zero = _binary_words(fit, fpart, r.focal)
    effect = (f"the effect of {f_one} (against {f_zero.split(' = ')[-1]})" if f_one is not None
              else f"the effect of {r.focal}")
    text = f"{c.name} ({r.kind}): {effect} is {direction} {r.where}{r.than}; {size} {sc.test(row)}."
    try:
        ss = simple_slopes(fit, r.focal, r.mod)
    except MLMError:
        return text
    labels = _slope_labels(ss.index.to_numpy(), r, lambda v: f"{v:g}", lambda v: f"{v:.2f}")
    vals = [_r(math.exp(v)) if sc.ratio else _c(v) for v in ss["slope"]]
    held_txt, slopes, end = _simple_slopes_text(fit, c, cols, r, ss, labels, vals)
    if _sign_changes(ss):
        text += f" The effect of {r.focal} changes direction over this range."
    noun = f"{_cap(sc.ratio)}s of {r.focal}" if sc.ratio else f"Coefficients of {r.focal} ({sc.link_name})"
    return text + f" {noun}{held_txt}: {slopes}" + end


def _contextual(fit, cols, sc):
    """cwc(x, g) with gm(x, g): contextual effect = between - within, on the link scale."""
    out = []
    V = fit.vcov.to_numpy()
    for var, g, L in _contextual_contrasts(fit, cols):
        est = float(L @ fit.fixef.to_numpy())
        se = float(np.sqrt(L @ V @ L))
        q = stats.norm.ppf(0.975)
        z = est / se
        row = {"estimate": est, "statistic": z, "p_value": float(2 * stats.norm.sf(abs(z))),
               "conf_low": est - q * se, "conf_high": est + q * se}
        out.append(f"Contextual effect of {var} (between minus within): of two observations with "
                   f"the same {var}, for the one in a {g} whose mean {var} is 1 unit higher "
                   f"{sc.change(est)} {sc.test(row)}.")
    return out


def _fixed(fit, cols, levels_table, cross, sc):
    lines = _intercept(fit, cols, fit.coefficients, sc)
    lines += _effect_lines(
        fit, cols, levels_table,
        lambda c, row, within, mods: _main_effect(fit, c, row, sc, within, mods),
        lambda c, row: _interaction(fit, c, row, sc, cross, cols))
    return lines + _contextual(fit, cols, sc)


def _intercept_words(fit, g, sd, tau2, share, sc, n_fixed):
    scale = f"on the {sc.link_name} scale"
    text = (f"{_cap(_groups(g))} differ in their {sc.level_noun}: standard deviation {_c(sd)} "
            f"{scale} (variance {_c(tau2)}).")
    if sc.link == "logit":
        text += (f" Median odds ratio (MOR, Merlo et al. 2006) {_r(median_ratio(tau2))}: of two "
                 f"observations with the same predictors in two {_groups(g)} drawn at random, the "
                 f"one in the {g} with the higher propensity has odds of {sc.outcome} "
                 f"{_r(median_ratio(tau2))} times as high, in the median.")
    elif sc.link == "log":
        text += (f" Median rate ratio {_r(median_ratio(tau2))}: of two observations with the same "
                 f"predictors in two {_groups(g)} drawn at random, the expected count in the {g} "
                 f"with the higher rate is {_r(median_ratio(tau2))} times as high, in the median "
                 "(the median odds ratio of Merlo et al. 2006 for rates).")
    if share is not None and np.isfinite(share):
        resid = {"logit": "pi^2/3 = 3.29, the logistic distribution's",
                 "probit": "1, the standard normal's",
                 "cloglog": "pi^2/6 = 1.64, the extreme-value distribution's"}[sc.link]
        text += (f" Latent-scale ICC: {100 * share:.1f}% of the variation in the latent propensity"
                 + (" not explained by the predictors" if n_fixed > 1 else "")
                 + f" lies between {_groups(g)} (residual variance {resid}, as performance's icc()).")
    elif sc.link == "log":
        text += (" No ICC is given: on a count's latent scale the residual variance depends on "
                 "the mean count (performance approximates it from a null model).")
    return text


def _random(fit, cross, sc):
    lines = []
    shares = latent_icc(fit)
    slopes = any(c != "(Intercept)" for b in fit.design.blocks for c in b.columns)
    for g, corr, rows in _components(fit):
        for r in rows:
            sd = float(r["sdcor"])
            if r["var1"] == "(Intercept)":
                lines.append(_intercept_words(fit, g, sd, float(r["vcov"]), shares.get(g), sc,
                                              len(fit.fixef)))
            else:
                lines.append(_slope_words(fit, g, str(r["var1"]), sd, corr, sc, cross))
        lines += _slope_correlations(g, corr, "coefficients")
    if slopes and shares:
        lines.append("With random slopes the latent ICC is that of performance's 'adjusted ICC': the "
                     "random-effect variance averaged over the observations (Johnson 2014).")
    return lines


def _slope_words(fit, g, x, sd, corr, sc, cross):
    fixed = float(fit.fixef[x]) if x in fit.fixef.index else 0.0
    lo, hi = fixed - 1.96 * sd, fixed + 1.96 * sd
    beyond, among = _slope_moderators(cross, x, g)
    rng = (f"the middle 95% of {_groups(g)}' {sc.ratio}s for {x} lie between {_r(math.exp(lo))} "
           f"and {_r(math.exp(hi))}" if sc.ratio else
           f"the middle 95% of {_groups(g)}' coefficients of {x} lie between {_c(lo)} and {_c(hi)}")
    text = (f"The effect of {x} varies between {_groups(g)}{beyond}"
            f": standard deviation {_c(sd)} on the {sc.link_name} scale (variance "
            f"{_c(sd ** 2)}), so {among}{rng} (the fixed coefficient {_c(fixed)} +- 1.96 SD).")
    rho = corr.get(("(Intercept)", x))
    if rho is not None and np.isfinite(rho):
        text += (f" {_cap(_groups(g))} with a higher {sc.level_noun} tend to "
                 f"have {_hl(rho)} {x} coefficients (correlation {rho:.2f}).").replace(
                     " no different ", " unrelated ")
    return text


def _warnings(fit):
    out = _few_groups(fit.ngroups.items(), lambda g: " (and the Laplace approximation is least "
                                                     "accurate with few, small groups)")
    for note in fit.notes:
        if note.startswith("Separation"):
            out.append(note + " The odds ratio of that predictor (and its interval) should not be "
                       "reported as estimated.")
    if fit.vcov.isna().all().all():
        out.append("No standard errors: the curvature of the likelihood could not be computed at "
                   "the estimates (the model is probably over-parameterised), so the intervals and "
                   "tests above are not available.")
    return out + _fit_state(fit, "Rescale predictors with very different ranges, simplify the "
                                 "random part, or look for separation")


def explain_glmm(fit) -> Explanation:
    """A fitted generalised linear mixed model (:func:`mlm.glmer`) in plain language.

    Parameters
    ----------
    fit : GLMMResult

    Returns
    -------
    Explanation
        Sections: the data and method (the success level of a binary outcome named),
        each fixed effect (an odds ratio for the logit link, a rate ratio for the log
        link, the coefficient on its own scale for probit and cloglog, each with its 95%
        Wald interval and z-test, reference categories, centering and cross-level
        interactions read as for linear fits), the random effects (SD on the link scale,
        the median odds or rate ratio, the latent-scale ICC) and warnings (few groups,
        separation, no standard errors, singular fit, no convergence).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("use ~ age + urban + (1 | district)", mlm.load_dataset("contraception"))
    >>> fixed = dict(fit.explain().sections)["Fixed effects"]
    >>> print(next(p for p in fixed if p.startswith("urbanY"))[:63])
    urbanY: the odds of use = Y are 1.92 times as high (92% higher)
    >>> print(str(fit.explain()).splitlines()[0][:46])
    A logistic mixed model (binomial family, logit
    """
    from mlm.toolkit.interactions import cross_level
    from mlm.toolkit.nesting import levels

    sc = _Scale(fit)
    lev = levels(fit)
    cross = cross_level(fit)
    cols = _columns(fit, lev)
    return _sections(_sample(fit, sc), _fixed(fit, cols, lev, cross, sc), _random(fit, cross, sc),
                     _warnings(fit))
