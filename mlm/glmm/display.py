"""lme4's glmer summary layout and the plain-language notes only a GLMM fit has.

The sections both families print alike (header, fit criteria, scaled residuals, random
effects, fixed-effects table, notes) are :class:`mlm.results.base.ModelResult`'s.
"""

from __future__ import annotations

import numpy as np

from mlm.results.base import _format_p, _stars  # noqa: F401  (kept importable from here)

__all__ = ["summary_text", "messages", "family_messages", "method"]


def method(fit) -> str:
    """How the likelihood was approximated, in lme4's words."""
    if fit.nagq > 1:
        return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nagq}"
    return "Laplace Approximation"


_method = method


def summary_text(fit) -> str:
    """The summary of a :class:`mlm.glmm.results.GLMMResult`, laid out like lme4's."""
    title = f"Generalized linear mixed model fit by maximum likelihood ({method(fit)})  [mlm]"
    lines = fit._head_lines(title, f" Family: {fit.family.label}")
    lines.extend(fit._criteria_lines())
    lines.append("")
    lines.extend(fit._scaled_residual_lines(fit.residuals("pearson").to_numpy()))
    lines.extend(fit._random_section_lines())
    lines.append("Fixed effects:")
    lines.append(fit._fixed_table_text("z", 3, stars=True))
    lines.append("---")
    lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    ratio = {"logit": ("Odds ratios", "odds_ratios"), "log": ("Rate ratios", "rate_ratios")}.get(fit.family.link)
    if ratio:
        lines.append("")
        lines.append(f"{ratio[0]} (exp of the estimates) with 95% Wald intervals:")
        lines.append(getattr(fit, ratio[1]).round(4).to_string())
    lines.extend(fit._notes_lines())
    return "\n".join(lines)


def messages(fit) -> list:
    """Plain-language notes about a GLMM fit: the same as ``fit.messages()``."""
    return fit.messages()


def family_messages(fit) -> list:
    """The notes only a GLMM has: no standard errors, AGQ constants, the success level."""
    out = []
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
