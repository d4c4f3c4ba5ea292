"""lme4's glmer summary layout and the plain-language notes of a GLMM fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .results import _format_p

__all__ = ["summary_text", "messages"]


def _method(fit) -> str:
    if fit.nagq > 1:
        return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nagq}"
    return "Laplace Approximation"


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def summary_text(fit) -> str:
    """The summary of a :class:`mlm.glmm_results.GLMMResult`, laid out like lme4's."""
    lines = [f"Generalized linear mixed model fit by maximum likelihood ({_method(fit)})  [mlm]",
             f" Family: {fit.family.label}", f"Formula: {fit.formula}",
             f"   Data: {fit._data_text()}", ""]
    lines.append(f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10} {'df.resid':>9}")
    lines.append(f"{fit.aic:10.1f} {fit.bic:10.1f} {fit.loglik:10.1f} {fit.deviance:10.1f} "
                 f"{fit.df_resid:9d}")
    lines.append("")
    q = np.quantile(fit.residuals("pearson").to_numpy(), [0, 0.25, 0.5, 0.75, 1])
    lines.append("Scaled residuals:")
    lines.append("".join(f"{h:>9}" for h in ("Min", "1Q", "Median", "3Q", "Max")))
    lines.append("".join(f"{v:9.4f}" for v in q))
    lines.append("")
    lines.append("Random effects:")
    lines.extend(fit._random_effects_lines())
    groups = "; ".join(f"{g}, {n}" for g, n in sorted(fit.ngroups.items(), key=lambda kv: -kv[1]))
    lines.append(f"Number of obs: {fit.nobs}, groups:  {groups}")
    lines.append("")
    lines.append("Fixed effects:")
    co = fit.coefficients
    table = pd.DataFrame({"Estimate": co["estimate"].map(lambda v: f"{v:.4f}"),
                          "Std. Error": co["std_error"].map(lambda v: f"{v:.4f}"),
                          "z value": co["statistic"].map(lambda v: f"{v:.3f}"),
                          "Pr(>|z|)": co["p_value"].map(_format_p),
                          "": co["p_value"].map(_stars)}, index=list(co.index))
    lines.append(table.to_string())
    lines.append("---")
    lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    ratio = {"logit": ("Odds ratios", "odds_ratios"), "log": ("Rate ratios", "rate_ratios")}.get(fit.family.link)
    if ratio:
        lines.append("")
        lines.append(f"{ratio[0]} (exp of the estimates) with 95% Wald intervals:")
        lines.append(getattr(fit, ratio[1]).round(4).to_string())
    notes = messages(fit)
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines)


def messages(fit) -> list:
    """Plain-language notes: dropped rows, singular fit, convergence, lme4 conventions."""
    out = list(getattr(fit, "notes", []))
    if fit.nobs_dropped:
        out.append(f"{fit.nobs_dropped} row(s) with missing values were dropped; {fit.nobs} used.")
    if fit.singular:
        out.append("Singular fit: a variance is estimated as (nearly) zero or a correlation as "
                   "(nearly) +-1. The data do not support this random-effects structure; consider "
                   "dropping the term or correlation concerned (see varcorr).")
    if not fit.converged:
        from .glmm_fitting import _shortfall

        out.append(f"The optimizer did not reach the optimum: {_shortfall(fit.fit_info)} Treat the "
                   "estimates with caution; rescale predictors with very different ranges or "
                   "simplify the random part.")
    if fit.vcov.isna().all().all():
        out.append("The Hessian of the deviance is not positive definite at the answer, so no "
                   "standard errors could be computed: the model is probably over-parameterised.")
    counts = fit.family.name == "poisson" or bool(np.any(fit.gdesign.weights > 1))
    if fit.nagq > 1 and counts:
        out.append("The log-likelihood includes the normalising constants (binomial coefficients, "
                   "log y!); lme4 leaves them out with nAGQ > 1 on counts, so its logLik (and AIC, "
                   "BIC) differ from these by a constant. Estimates are unaffected.")
    if fit.success is not None:
        out.append(f"Outcome '{fit.gdesign.response}': modelled as the probability of "
                   f"'{fit.success}' (the second level, as R).")
    return out
