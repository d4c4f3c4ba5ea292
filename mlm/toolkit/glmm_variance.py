"""Latent-scale ICC and Nakagawa R² of :func:`mlm.glmer` fits, as R's performance computes them.

:func:`mlm.icc` and :func:`mlm.r2` hand a GLMM fit to :func:`glmm_icc` and :func:`glmm_r2`.
A GLMM has no residual variance of its own; on the latent (link) scale the residual is
the *distribution-specific variance* (Nakagawa, Johnson & Schielzeth 2017, J. R. Soc.
Interface 14: 20170213), plus the variance of any observation-level random effect:

* binomial: pi²/3 (logit), 1 (probit), pi²/6 (cloglog), whatever the number of trials;
* Poisson (log link): the observation-level variance ln(1 + 1/lambda) (the lognormal
  approximation; ``approximation="delta"`` gives 1/lambda, ``"trigamma"`` trigamma(lambda)),
  with lambda from the null model ``y ~ 1 + <the same random terms>`` refitted with the
  same offset: exp(beta0) as performance 0.10 (insight 0.19) computes it, or
  exp(beta0 + V0/2) (``poisson_lambda="expected"``, Nakagawa et al.'s Supplement 2 and
  insight >= 0.20, V0 the null model's random-intercept variance).

The other components follow performance (``insight::get_variance``): V_f the sample
variance (n - 1) of X beta (offset left out); V_r the sum over random-effect terms of
mean_i z_i' Sigma z_i (Johnson 2014); a term whose factor has as many levels as rows
(an observation-level random effect, for overdispersion) counts as residual, not random.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from scipy import special

from mlm.errors import DataError

__all__ = ["glmm_icc", "glmm_r2", "latent_icc", "latent_variances"]

APPROXIMATIONS = ("lognormal", "delta", "trigamma")
LAMBDAS = ("intercept", "expected")
#: performance 0.10.2 (insight 0.19.0) calls a fit singular when a relative covariance
#: factor on its lower bound is below this, and then returns NA for the ICC.
PERFORMANCE_SINGULAR_TOL = 1e-5
_NULL_FITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Printed(pd.DataFrame):
    """A DataFrame that prints its ``attrs["text"]`` (the convention) under the table.

    Anything derived from it (a column, a slice, ``round``) is a plain DataFrame.
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    def __repr__(self) -> str:
        return super().__repr__() + "\n\n" + self.attrs.get("text", "")

    def _repr_html_(self) -> str:
        import html
        lines = "<br>".join(html.escape(x) for x in self.attrs.get("text", "").splitlines())
        return (super()._repr_html_() or "") + f"<p>{lines}</p>"


class _PrintedSeries(pd.Series):
    """A Series that prints its ``attrs["text"]`` under the values (derived objects are plain)."""

    @property
    def _constructor(self):
        return pd.Series

    @property
    def _constructor_expanddim(self):
        return pd.DataFrame

    def __repr__(self) -> str:
        return super().__repr__() + "\n\n" + self.attrs.get("text", "")


def check_options(approximation, poisson_lambda):
    """Validate the two latent-scale options (both are strings from a short list)."""
    if not isinstance(approximation, str) or approximation not in APPROXIMATIONS:
        raise DataError(f"Unknown approximation {approximation!r}: use 'lognormal' (performance's "
                        "default), 'delta' or 'trigamma' (Nakagawa et al. 2017).")
    if not isinstance(poisson_lambda, str) or poisson_lambda not in LAMBDAS:
        raise DataError(f"Unknown poisson_lambda {poisson_lambda!r}: use 'intercept' (exp(beta0) of "
                        "the null model, performance 0.10) or 'expected' (exp(beta0 + V0/2), "
                        "Nakagawa et al. 2017 and insight >= 0.20).")


# --- the null model (Poisson) ------------------------------------------------------------
def _null_fit(fit):
    """(beta0, random-intercept variance) of ``y ~ 1 + <random terms>``, same offset and nagq.

    As insight's ``null_model``: the same outcome, weights, offset and random part, fitted
    again by the same engine; cached per fit.
    """
    cached = _NULL_FITS.get(fit)
    if cached is not None:
        return cached
    from mlm.glmm.engine import GLMMProblem

    gd = fit.gdesign
    ones = np.ones((fit.nobs, 1))
    problem = GLMMProblem(gd.y, ones, gd.design.pls_terms(), fit.family, gd.weights, gd.offset,
                          nagq=fit.nagq)
    theta, beta, _ = problem.optimize()
    v0 = 0.0
    for b, T in zip(fit.design.blocks, problem.rs.templates(theta)):
        # insight >= 0.20 takes the null model's V_r from its X (the intercept) only
        if b.n_levels != fit.nobs and "(Intercept)" in b.columns:
            j = b.columns.index("(Intercept)")
            v0 += float((T @ T.T)[j, j])
    out = (float(beta[0]), v0)
    _NULL_FITS[fit] = out
    return out


_APPROX_WORDS = {"lognormal": "ln(1 + 1/lambda)", "delta": "1/lambda", "trigamma": "trigamma(lambda)"}


def _distribution_variance(fit, approximation, poisson_lambda):
    """(distribution-specific variance, lambda or None, text naming it)."""
    fam = fit.family
    if fam.name == "binomial":
        value, words = {"logit": (np.pi ** 2 / 3, "pi^2/3"), "probit": (1.0, "1"),
                        "cloglog": (np.pi ** 2 / 6, "pi^2/6")}[fam.link]
        return value, None, f"{words} = {value:.4g} (binomial, {fam.link} link)"
    beta0, v0 = _null_fit(fit)
    lam = float(np.exp(beta0 + (0.5 * v0 if poisson_lambda == "expected" else 0.0)))
    value = {"lognormal": np.log1p(1.0 / lam), "delta": 1.0 / lam,
             "trigamma": float(special.polygamma(1, lam))}[approximation]
    source = ("exp(beta0 + V0/2) of the null model" if poisson_lambda == "expected"
              else "exp(beta0) of the null model")
    return float(value), lam, (f"{_APPROX_WORDS[approximation]} = {value:.4g} (Poisson, "
                               f"{approximation} approximation; lambda = {source} = {lam:.4g})")


# --- the components ------------------------------------------------------------------------
def latent_variances(fit, approximation="lognormal", poisson_lambda="intercept") -> dict:
    """The variance components of a GLMM on the latent scale.

    Returns a dict: ``fixed`` (V_f), ``random`` (V of each grouping factor, observation-
    level factors excluded), ``dispersion`` (V of each observation-level factor),
    ``distribution`` (the distribution-specific variance), ``lambda`` (Poisson, else
    None), ``distribution_text``, ``approximation`` and ``singular_for_performance``
    (performance 0.10.2 would return NA).

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.glmm_variance import latent_variances
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> v = latent_variances(fit)
    >>> round(v["distribution"], 4), round(v["random"]["herd"], 4)
    (3.2899, 0.4125)
    """
    check_options(approximation, poisson_lambda)
    eta = fit.design.X @ np.asarray(fit.fixef, dtype=float)
    fixed = float(np.var(eta, ddof=1)) if eta.size > 1 else 0.0
    random, dispersion = {}, {}
    for b, C in zip(fit.design.blocks, fit._covariances()):
        v = float(np.mean(np.einsum("ij,jk,ik->i", b.Z, C, b.Z)))
        target = dispersion if b.n_levels == fit.nobs else random
        target[b.group_name] = target.get(b.group_name, 0.0) + v
    dist, lam, text = _distribution_variance(fit, approximation, poisson_lambda)
    lower = fit._theta_lower()
    on_bound = np.isfinite(lower)
    return {"fixed": fixed, "random": random, "dispersion": dispersion, "distribution": dist,
            "lambda": lam, "distribution_text": text, "approximation": approximation,
            "singular_for_performance": bool(np.any(np.abs(fit.theta[on_bound]) < PERFORMANCE_SINGULAR_TOL))}


def latent_icc(fit) -> dict:
    """Each grouping factor's share of the latent variance, as performance's ``icc()``.

    The components are :func:`latent_variances`' (the ones :func:`mlm.icc` reports); an
    observation-level random effect counts as residual. Empty for a count model, whose latent
    residual variance needs a refit of the null model: ``explain()`` and ``mlm.table`` say
    so rather than refit (:func:`mlm.icc` does refit).
    """
    if fit.family.name != "binomial":
        return {}
    v = latent_variances(fit)
    total = sum(v["random"].values()) + v["distribution"] + sum(v["dispersion"].values())
    return {g: r / total for g, r in v["random"].items()}


def _notes(fit, v) -> list:
    notes = []
    if v["lambda"] is not None and v["lambda"] < 6:
        how = _APPROX_WORDS[v["approximation"]]
        notes.append(f"lambda = {v['lambda']:.3g} is small (below 6): the {how} approximation"
                     " of the Poisson variance on the latent scale is unreliable "
                     "(Nakagawa et al. 2017; performance warns the same).")
    if v["dispersion"]:
        names = ", ".join(v["dispersion"])
        notes.append(f"The observation-level random effect ({names}) counts as residual "
                     "(overdispersion) variance, as in performance.")
    if v["singular_for_performance"]:
        notes.append("Singular fit (a variance at zero): performance returns NA for the ICC and the "
                     "conditional R² here; mlm reports the value the formulas give.")
    if any(b.k > 1 for b in fit.design.blocks) or _split_terms(fit):
        notes.append("Random slopes: a factor's variance is the mean over rows of z_i' Sigma z_i "
                     "(Johnson 2014), as performance's adjusted ICC."
                     + (" An uncorrelated (x || g) slope counts too; performance 0.10.2 leaves it out."
                        if _split_terms(fit) else ""))
    return notes


def _split_terms(fit) -> bool:
    """Some factor carries several terms, one without an intercept: an (x || g) slope."""
    seen = {}
    for b in fit.design.blocks:
        seen.setdefault(b.group_name, []).append(b)
    return any(len(bs) > 1 and any("(Intercept)" not in b.columns for b in bs) for bs in seen.values())


def _convention(fit, v) -> str:
    return ("Latent scale (Nakagawa, Johnson & Schielzeth 2017), as R's performance: residual "
            f"variance = distribution-specific variance {v['distribution_text']}"
            + (" + observation-level random effect" if v["dispersion"] else "") + ".")


# --- ICC -------------------------------------------------------------------------------------
def glmm_icc(fit, approximation="lognormal", poisson_lambda="intercept") -> pd.DataFrame:
    """Latent-scale ICC of a glmer fit (called by :func:`mlm.icc`; see its docstring).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("use ~ age + I(age**2) + urban + livch + (1 | district)",
    ...                 mlm.load_dataset("contraception"))
    >>> tab = mlm.icc(fit)
    >>> round(tab.attrs["adjusted"], 3), round(tab.attrs["unadjusted"], 3)
    (0.064, 0.057)
    """
    from mlm.toolkit.variance import _enclosing, _factor_names

    v = latent_variances(fit, approximation, poisson_lambda)
    random, dispersion = v["random"], v["dispersion"]
    vr = sum(random.values())
    residual = v["distribution"] + sum(dispersion.values())
    total = vr + residual
    anc = _enclosing(fit)
    factors = [g for g in _factor_names(fit) if g in random]
    rows = []
    for g in factors:
        up = [a for a in anc[g] if a in random]
        rows.append({"variance": random[g], "icc": random[g] / total,
                     "icc_cumulative": (random[g] + sum(random[a] for a in up)) / total})
    out = _Printed(rows, index=pd.Index(factors, name="group"),
                   columns=["variance", "icc", "icc_cumulative"])
    adjusted = vr / total
    unadjusted = vr / (v["fixed"] + total)
    notes = _notes(fit, v)
    convention = _convention(fit, v)
    text = "\n".join([
        "# Intraclass correlation (latent scale)",
        f"    Adjusted ICC: {adjusted:.3f}",
        f"  Unadjusted ICC: {unadjusted:.3f}",
        convention,
        "icc: the factor's share of the latent variance; icc_cumulative: with the factors it is "
        "nested in. Adjusted: V_r / (V_r + residual); unadjusted: V_r / (V_f + V_r + residual).",
        *notes])
    out.attrs.update({
        "method": "latent-scale ICC (Nakagawa et al. 2017), as performance::icc",
        "scale": "latent",
        "convention": convention,
        "adjusted": adjusted, "unadjusted": unadjusted,
        "variances": {**random, **{f"{g} (observation level)": d for g, d in dispersion.items()},
                      "Distribution": v["distribution"]},
        "fixed_variance": v["fixed"],
        "distribution_variance": v["distribution"],
        "approximation": approximation if fit.family.name == "poisson" else None,
        "lambda": v["lambda"],
        "notes": notes,
        "formula": fit.formula,
        "text": text,
    })
    return out


# --- R² ----------------------------------------------------------------------------------------
def glmm_r2(fit, approximation="lognormal", poisson_lambda="intercept") -> pd.Series:
    """Nakagawa's marginal and conditional R² of a glmer fit (called by :func:`mlm.r2`).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("use ~ age + I(age**2) + urban + livch + (1 | district)",
    ...                 mlm.load_dataset("contraception"))
    >>> mlm.r2(fit).round(3).to_dict()
    {'marginal': 0.115, 'conditional': 0.172}
    """
    v = latent_variances(fit, approximation, poisson_lambda)
    vr = sum(v["random"].values())
    vd = sum(v["dispersion"].values())
    residual = v["distribution"] + vd
    total = v["fixed"] + vr + residual
    values = {"marginal": v["fixed"] / total, "conditional": (v["fixed"] + vr) / total}
    notes = _notes(fit, v)
    convention = _convention(fit, v)
    out = _PrintedSeries(values, name="r2", dtype=float)
    out.attrs.update({
        "method": ("Nakagawa & Schielzeth (2013) R² on the latent scale (Nakagawa, Johnson & "
                   "Schielzeth 2017), random slopes by Johnson (2014), as performance::r2_nakagawa"),
        "scale": "latent",
        "convention": convention,
        "fixed_variance": v["fixed"], "random_variance": vr, "residual_variance": residual,
        "distribution_variance": v["distribution"], "dispersion_variance": vd,
        "approximation": approximation if fit.family.name == "poisson" else None,
        "lambda": v["lambda"],
        "notes": notes,
        "text": "\n".join(["# R² for a generalized linear mixed model (latent scale)",
                           f"  Conditional R²: {values['conditional']:.3f}",
                           f"     Marginal R²: {values['marginal']:.3f}", convention, *notes]),
    })
    return out
