"""How the variance divides between levels: intraclass correlations and R².

:func:`icc` gives, for each grouping factor of a fitted model, the share of the total
variance at that level, the correlation of two rows sharing the group (Stata's
cumulative convention for nested factors), a confidence interval by Stata's method,
the design effect and HLM's reliability. :func:`r2` gives Nakagawa's marginal and
conditional R² (as ``performance::r2_nakagawa``) and, against a baseline model,
Raudenbush & Bryk's proportional reduction in variance and Snijders & Bosker's R².

Random-effect variance of a factor. For a random-intercept term it is ``tau00``. With
random slopes the variance a row receives depends on its covariates, ``z_i' T z_i``;
here (as in performance's "adjusted ICC" and Nakagawa's R²) it is averaged over the
rows used: ``V = mean_i z_i' T z_i`` (Johnson 2014, Methods Ecol. Evol. 5, 944-946),
summed over the terms on the factor. Stata instead evaluates the ICC at covariates = 0.

Every function takes a :class:`mlm.MixedResult` (``mlm.lmer(...)``) or a
:class:`mlm.GLMMResult` (``mlm.glmer(...)``: latent-scale ICC and R², in
:mod:`mlm.toolkit.glmm_variance`) and names the convention it follows in ``attrs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.checks import level as check_level
from mlm.errors import DataError
from mlm.results.linear import require_fit

__all__ = ["icc", "r2"]


# --- helpers -------------------------------------------------------------------------------
def _check_fit(fit, what="fit", glmm=False):
    require_fit(fit, what, glmm=glmm)


def _is_glmm(fit) -> bool:
    from mlm.glmm.results import GLMMResult
    return isinstance(fit, GLMMResult)


def _linear_only(what, **options):
    """A glmer-only option given for a linear fit: say so (issue 14)."""
    given = [k for k, (value, default) in options.items() if value != default]
    if given:
        raise DataError(f"{what}: {', '.join(given)} apply to glmer fits only (the latent scale of a "
                        "binomial or Poisson model); a linear model has its own residual variance. "
                        "Drop the argument.")


def _factor_names(fit):
    """Grouping factors once each, in lme4's order (most levels first, as varcorr)."""
    out = []
    for i in fit._lme4_order():
        g = fit.design.blocks[i].group_name
        if g not in out:
            out.append(g)
    return out


def _has_slopes(fit) -> bool:
    return any(c != "(Intercept)" for b in fit.design.blocks for c in b.columns)


def _factor_variances(fit, theta=None, sigma=None) -> dict:
    """Random-effect variance of each factor: sum over its terms of mean_i z_i' C z_i.

    ``C = sigma^2 T T'`` for the templates ``T`` of ``theta``; by default the estimates.
    For a random-intercept term this is the intercept variance ``tau00``.
    """
    if theta is None:
        covs = fit.solution.covariances()
    else:
        covs = [sigma * sigma * T @ T.T for T in fit.problem.templates(theta)]
    out = {}
    for b, C in zip(fit.design.blocks, covs):
        v = float(np.mean(np.einsum("ij,jk,ik->i", b.Z, C, b.Z)))
        out[b.group_name] = out.get(b.group_name, 0.0) + v
    return out


def _intercept_variances(fit) -> dict:
    """The random-intercept variance ``tau00`` of every factor that has one."""
    out = {}
    for b, C in zip(fit.design.blocks, fit.solution.covariances()):
        if "(Intercept)" in b.columns:
            j = b.columns.index("(Intercept)")
            out[b.group_name] = out.get(b.group_name, 0.0) + float(C[j, j])
    return out


def _codes(fit) -> dict:
    out = {}
    for b in fit.design.blocks:
        out.setdefault(b.group_name, (b.codes, b.n_levels))
    return out


def _nested_in(codes_a, n_a, codes_b) -> bool:
    """Every level of a occurs within a single level of b."""
    pairs = np.unique(np.stack([codes_a, codes_b]), axis=1).shape[1]
    return pairs == n_a


def _enclosing(fit) -> dict:
    """For each factor, the factors it is nested in (its ancestors)."""
    codes = _codes(fit)
    out = {}
    for a, (ca, na) in codes.items():
        out[a] = [b for b, (cb, nb) in codes.items()
                  if b != a and nb < na and _nested_in(ca, na, cb)]
    return out


def _fixed_variance(fit) -> float:
    """Sample variance (n - 1) of the fixed-effect linear predictor X beta."""
    eta = fit.design.X @ fit.solution.beta
    return float(np.var(eta, ddof=1)) if eta.size > 1 else 0.0


def _reliability(fit, factor, tau00, sigma2) -> tuple[float, int]:
    """HLM's mean reliability of the random intercept of ``factor``.

    lambda_j = tau00 / (tau00 + v_j), v_j = sigma2 [(Z_j' Z_j)^-1]_00 with Z_j the
    factor's random-effect columns in group j; for a random-intercept term v_j =
    sigma2 / n_j. Groups where Z_j' Z_j is singular are left out (returned count).
    """
    blocks = [b for b in fit.design.blocks if b.group_name == factor]
    Z = np.hstack([b.Z for b in blocks])
    names = [c for b in blocks for c in b.columns]
    if "(Intercept)" not in names:
        return np.nan, 0
    j0 = names.index("(Intercept)")
    codes, G = blocks[0].codes, blocks[0].n_levels
    k = Z.shape[1]
    if k == 1:
        n_j = np.bincount(codes, minlength=G).astype(float)
        v = sigma2 / n_j
        return float(np.mean(tau00 / (tau00 + v))), 0
    ZtZ = np.zeros((G, k, k))
    np.add.at(ZtZ, codes, Z[:, :, None] * Z[:, None, :])
    ok = np.linalg.matrix_rank(ZtZ, tol=None) == k
    inv = np.linalg.inv(ZtZ[ok])
    v = sigma2 * inv[:, j0, j0]
    return float(np.mean(tau00 / (tau00 + v))), int((~ok).sum())


def _delta_ci(fit, rho_fun, level):
    """Stata's interval: logit(rho) +- z SE / (rho (1 - rho)), SE by the delta method.

    ``rho_fun`` maps (theta..., sigma) to the ICC; its gradient is taken by central
    differences and combined with ``fit.problem.varpar_covariance`` (lmerTest's
    asymptotic covariance of (theta, sigma)).
    """
    x0 = np.append(fit.solution.theta, np.sqrt(fit.solution.sigma2))
    rho = rho_fun(x0)
    if not (0.0 < rho < 1.0):
        return np.nan, np.nan, np.nan
    try:
        A = fit.problem.varpar_covariance(x0[:-1], x0[-1])
    except np.linalg.LinAlgError:
        return np.nan, np.nan, np.nan
    g = np.empty_like(x0)
    for i in range(x0.size):
        h = 1e-6 * max(abs(x0[i]), 1e-2)
        e = np.zeros_like(x0)
        e[i] = h
        g[i] = (rho_fun(x0 + e) - rho_fun(x0 - e)) / (2 * h)
    var = float(g @ A @ g)
    if not np.isfinite(var) or var < 0:
        return np.nan, np.nan, np.nan
    se = np.sqrt(var)
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * se / (rho * (1 - rho))
    lg = np.log(rho / (1 - rho))
    return se, float(1 / (1 + np.exp(-(lg - half)))), float(1 / (1 + np.exp(-(lg + half))))


# --- ICC -----------------------------------------------------------------------------------
def icc(fit_or_formula, data=None, *, level=0.95, ci="delta", nsim=1000, seed=None,
        approximation="lognormal", poisson_lambda="intercept") -> pd.DataFrame:
    """Intraclass correlations of every grouping factor, with Stata-style intervals.

    Parameters
    ----------
    fit_or_formula : MixedResult, GLMMResult or str
        A fitted model (:func:`mlm.lmer` or :func:`mlm.glmer`), or an lme4-style formula
        to fit (REML, linear) on ``data`` — usually the null model ``"y ~ 1 + (1 | g)"``,
        but any model is fitted as given.
    data : pandas.DataFrame or another data frame, optional
        Required with a formula (converted and checked as :func:`mlm.lmer` does); not
        allowed with a fitted model.
    level : float, default 0.95
        Confidence level of the intervals.
    ci : {"delta", "bootstrap"}, default "delta"
        ``"delta"``: Stata's interval only. ``"bootstrap"``: also a parametric bootstrap
        percentile interval (:func:`mlm.bootstrap`, like lme4's ``bootMer``, boot's
        ``perc`` rule, as performance's ``icc(ci = ...)``), in extra columns.
    nsim : int, default 1000
        Bootstrap replicates (``ci="bootstrap"`` only).
    seed : int, optional
        Seed of the bootstrap, for reproducible intervals.
    approximation : {"lognormal", "delta", "trigamma"}, default "lognormal"
        glmer Poisson fits only: the approximation of the distribution-specific variance
        on the latent scale, ln(1 + 1/lambda), 1/lambda or trigamma(lambda) (Nakagawa et
        al. 2017; performance's default is the lognormal one).
    poisson_lambda : {"intercept", "expected"}, default "intercept"
        glmer Poisson fits only: lambda = exp(beta0) of the null model ``y ~ 1 + <the
        random terms>`` refitted with the same offset (performance 0.10 / insight 0.19),
        or exp(beta0 + V0/2) with V0 its random-intercept variance (Nakagawa et al.'s
        Supplement 2, insight >= 0.20).

    Returns
    -------
    pandas.DataFrame
        For a glmer fit, see "Generalized linear mixed models" below. For a linear fit,
        one row per grouping factor (index ``group``, lme4's names, e.g. ``school:lea``
        for ``(1 | lea/school)``), in lme4's order (most levels first), with columns

        ``icc``
            The factor's share of the total variance, V_g / (sum of V + sigma2)
            (performance's ``icc(by_group = TRUE)``).
        ``icc_cumulative``
            Stata's ``estat icc``: the correlation of two rows that share this group and
            therefore every group it is nested in, (V_g + V of its ancestors) / total.
            For a two-level model and for crossed factors it equals ``icc``.
        ``std_error``, ``conf_low``, ``conf_high``
            Delta-method standard error of ``icc`` and Stata's interval: logit(icc) +-
            z SE / (icc (1 - icc)), transformed back. The gradient is taken with
            respect to (theta, sigma) and combined with their asymptotic covariance
            (:meth:`mlm.engine.pls.PLSProblem.varpar_covariance`, lmerTest's
            parametrisation); under REML this uses the REML information (Stata's
            ``mixed`` defaults to ML). NaN when the ICC is 0 (a variance on its bound).
        ``cumulative_conf_low``, ``cumulative_conf_high``
            The same interval for ``icc_cumulative`` (the one ``estat icc`` prints).
        ``boot_conf_low``, ``boot_conf_high``, ``cumulative_boot_conf_low``, ``cumulative_boot_conf_high``
            With ``ci="bootstrap"`` only: parametric bootstrap percentile intervals of
            ``icc`` and ``icc_cumulative`` (``attrs["bootstrap"]`` holds nsim, seed and
            failed refits).
        ``design_effect``
            Kish's 1 + (n_bar - 1) * ``icc_cumulative``, n_bar = rows / groups: the
            variance inflation of a mean from data clustered in this factor (for two
            levels 1 + (n_bar - 1) * ICC).
        ``reliability``
            HLM's mean reliability of the group means (random intercepts):
            mean over groups of tau00 / (tau00 + v_j), v_j = sigma2 / n_j with n_j the
            group's number of rows (for a factor above the lowest grouping level too,
            where n_j counts rows, not sub-groups); with random slopes v_j =
            sigma2 [(Z_j'Z_j)^-1]_00 as in HLM, leaving out groups where Z_j'Z_j is
            singular. NaN for a factor without a random intercept.

        ``attrs``: ``method`` (variance shares, or performance's adjusted ICC when there
        are random slopes), ``convention`` (text), ``adjusted`` and ``unadjusted``
        (performance's overall ICCs), ``variances`` (V of each factor and the residual),
        ``level``.

    Raises
    ------
    MLMError
        When given something other than a fitted model or a formula with data, or a
        level outside (0, 1).

    Notes
    -----
    **Generalized linear mixed models** (:func:`mlm.glmer`) have no residual variance of
    their own: the ICC is taken on the latent scale, as ``performance::icc`` (Nakagawa,
    Johnson & Schielzeth 2017), with the distribution-specific variance as residual:
    pi²/3 (logit), 1 (probit), pi²/6 (cloglog) for binomial fits (whatever the number of
    trials), and ln(1 + 1/lambda) for Poisson fits (see ``approximation`` and
    ``poisson_lambda``); an observation-level random effect (a factor with one level per
    row) adds its variance to the residual. The table has one row per grouping factor
    with ``variance`` (V_g, averaged over rows with random slopes), ``icc`` (V_g / (V_r +
    residual)) and ``icc_cumulative`` (with the factors it is nested in); ``attrs`` holds
    performance's ``adjusted`` (V_r / (V_r + residual)) and ``unadjusted`` (V_r / (V_f +
    V_r + residual)) ICCs, the ``convention`` in words, the ``variances``, ``lambda``
    (Poisson) and ``notes``; printing the table prints them too. No interval is given for
    glmer fits. Where performance differs: a singular fit gives NA there (a number here,
    with a note); performance >= 0.12 divides pi²/3 by the mean number of trials of a
    ``cbind`` outcome and uses ``poisson_lambda="expected"``.

    With random slopes the ICC depends on the covariates. Here, as in performance's
    "adjusted ICC", V_g is the mean over rows of z_i' T_g z_i (Nakagawa, Johnson &
    Schielzeth 2017); Stata evaluates at covariates = 0 (tau00 only), so its numbers
    differ. An uncorrelated ``(x || g)`` term is treated the same way (Johnson's
    formula), where performance 0.10.2 leaves the slope variance out.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.variance import icc
    >>> tab = icc("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    >>> tab.loc["school", ["icc", "conf_low", "conf_high", "design_effect", "reliability"]].round(3).to_dict()
    {'icc': 0.18, 'conf_low': 0.147, 'conf_high': 0.22, 'design_effect': 8.919, 'reliability': 0.901}

    A logistic model, on the latent scale:

    >>> fit = mlm.glmer("use ~ age + urban + (1 | district)", mlm.load_dataset("contraception"))
    >>> tab = icc(fit)
    >>> float(round(tab.loc["district", "icc"], 3)), round(tab.attrs["unadjusted"], 3)
    (0.055, 0.054)
    """
    if isinstance(fit_or_formula, str):
        if data is None:
            raise DataError("icc() was given a formula but no data: pass the data too, e.g. "
                            "icc('y ~ 1 + (1 | g)', data).")
        from mlm.fitting import lmer
        fit = lmer(fit_or_formula, data)
    else:
        _check_fit(fit_or_formula, "icc()'s first argument", glmm=True)
        if data is not None:
            raise DataError("icc() was given a fitted model and data: data is used only with a "
                            "formula. Drop the data argument (the model's own rows are used).")
        fit = fit_or_formula
    level = check_level(level, DataError)
    if not isinstance(ci, str) or ci not in ("delta", "bootstrap"):
        raise DataError(f"Unknown ci {ci!r} for icc: use 'delta' (Stata's logit delta method, the "
                        "default) or 'bootstrap' (adds a parametric bootstrap interval).")
    if _is_glmm(fit):
        from mlm.toolkit.glmm_variance import glmm_icc
        if ci != "delta":
            raise DataError("icc(ci='bootstrap') is not available for glmer fits yet: the latent-scale "
                            "ICC is given without an interval. Drop ci=.")
        return glmm_icc(fit, approximation, poisson_lambda)
    from mlm.toolkit.glmm_variance import check_options
    check_options(approximation, poisson_lambda)
    _linear_only("icc()", approximation=(approximation, "lognormal"),
                 poisson_lambda=(poisson_lambda, "intercept"))

    factors = _factor_names(fit)
    V = _factor_variances(fit)
    s2 = float(fit.solution.sigma2)
    total = sum(V.values()) + s2
    anc = _enclosing(fit)
    taus = _intercept_variances(fit)
    slopes = _has_slopes(fit)

    def rho_fun(factors_in):
        def f(x):
            sig = x[-1]
            v = _factor_variances(fit, x[:-1], sig)
            return sum(v[g] for g in factors_in) / (sum(v.values()) + sig * sig)
        return f

    rows = []
    for g in factors:
        icc_g = V[g] / total
        cum = (V[g] + sum(V[a] for a in anc[g])) / total
        se, lo, hi = _delta_ci(fit, rho_fun([g]), level)
        if anc[g]:
            _, clo, chi = _delta_ci(fit, rho_fun([g] + anc[g]), level)
        else:
            clo, chi = lo, hi
        n_levels = fit.ngroups[g]
        deff = 1.0 + (fit.nobs / n_levels - 1.0) * cum
        rel = _reliability(fit, g, taus[g], s2)[0] if g in taus else np.nan
        rows.append({"icc": icc_g, "icc_cumulative": cum, "std_error": se, "conf_low": lo,
                     "conf_high": hi, "cumulative_conf_low": clo, "cumulative_conf_high": chi,
                     "design_effect": deff, "reliability": rel})
    out = pd.DataFrame(rows, index=pd.Index(factors, name="group"))
    if ci == "bootstrap":  # issue 12: a bootstrap interval beside Stata's
        from mlm.inference.confint import icc_bootstrap
        boot, info = icc_bootstrap(fit, factors, anc, level, nsim, seed)
        out = out.join(boot)
        out.attrs["bootstrap"] = info
    vf = _fixed_variance(fit)
    vr = sum(V.values())
    method = ("adjusted ICC (Nakagawa; V_g = mean over rows of z_i' T_g z_i, as performance)"
              if slopes else "variance shares of random intercepts")
    out.attrs.update({
        "method": method,
        "convention": (
            "icc: the factor's share of the total variance (performance's by_group). "
            "icc_cumulative: Stata's estat icc, the correlation of two rows sharing this group "
            "and every group it is nested in. Interval: Stata's logit-scale delta method "
            f"({level:.0%}). design_effect: 1 + (mean group size - 1) * icc_cumulative. "
            "reliability: HLM's mean tau00 / (tau00 + sigma2 / n_j)."
            + (" With random slopes the variances are averaged over the rows (Johnson 2014); "
               "Stata evaluates them at covariates = 0." if slopes else "")),
        "adjusted": vr / (vr + s2),
        "unadjusted": vr / (vf + vr + s2),
        "variances": {**V, "Residual": s2},
        "level": float(level),
        "formula": fit.formula,
    })
    return out


# --- R² --------------------------------------------------------------------------------------
def r2(fit, baseline=None, *, approximation="lognormal", poisson_lambda="intercept") -> pd.Series:
    """Nakagawa's R² and, against a baseline model, explained variance by level.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        The model (:func:`mlm.lmer` or :func:`mlm.glmer`).
    baseline : MixedResult, optional
        A reference model fitted to the same rows with the same grouping factors,
        usually the null model ``y ~ 1 + (1 | g)``. Linear fits only.
    approximation, poisson_lambda
        glmer Poisson fits only: how the distribution-specific variance is taken, as in
        :func:`mlm.icc`.

    Returns
    -------
    pandas.Series
        ``marginal``
            V_f / (V_f + V_r + sigma2): variance explained by the fixed effects.
        ``conditional``
            (V_f + V_r) / (V_f + V_r + sigma2): by fixed and random effects together.

        V_f is the sample variance (n - 1) of the fixed-effect linear predictor X beta;
        V_r the sum over random-effect terms of the mean over rows of z_i' T z_i
        (Johnson 2014; tau00 for a random intercept), as ``performance::r2_nakagawa``.
        With a baseline, also

        ``prv_level1``
            Raudenbush & Bryk's proportional reduction of the level-1 variance,
            1 - sigma2_model / sigma2_baseline.
        ``prv_<factor>``
            The same for the random-intercept variance of each factor with one in both
            models, 1 - tau00_model / tau00_baseline.
        ``sb_level1``, ``sb_level2``
            Snijders & Bosker's R²: 1 - (sigma2_m + tau_m) / (sigma2_b + tau_b) and
            1 - (sigma2_m / n_h + tau_m) / (sigma2_b / n_h + tau_b), with tau the
            random-intercept variance of the first grouping factor of the formula and
            n_h the harmonic mean of its group sizes.

        All can be negative for the baseline comparisons. ``attrs`` holds the
        components (``fixed_variance``, ``random_variance``, ``residual_variance``),
        ``method`` and ``notes``.

    Raises
    ------
    MLMError
        When ``fit`` or ``baseline`` is not a fitted model, or the baseline was fitted to
        different rows (number of rows or outcome values differ) or has different
        grouping factors.

    Notes
    -----
    For a glmer fit (:func:`mlm.glmer`) the R² are taken on the latent scale, as
    ``performance::r2_nakagawa`` (Nakagawa, Johnson & Schielzeth 2017): sigma2 is replaced
    by the distribution-specific variance (pi²/3 logit, 1 probit, pi²/6 cloglog;
    ln(1 + 1/lambda) Poisson) plus the variance of any observation-level random effect;
    ``attrs`` adds ``distribution_variance``, ``dispersion_variance``, ``lambda``,
    ``convention`` and ``notes``, and printing the Series prints them.

    An uncorrelated ``(x || g)`` term contributes its slope variance, tau11 mean(x²),
    by Johnson's formula; performance 0.10.2 leaves it out (sleepstudy
    ``Reaction ~ Days + (Days || Subject)``: performance prints marginal 0.415, the
    formula gives 0.283). The R&B and S&B measures are defined for random-intercept
    models; with random slopes tau00 depends on where the predictors are centred, and a
    note says so.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.variance import r2
    >>> hsb = mlm.load_dataset("hsb")
    >>> m0 = mlm.lmer("mathach ~ 1 + (1 | school)", hsb)
    >>> m1 = mlm.lmer("mathach ~ ses + (1 | school)", hsb)
    >>> r2(m1, baseline=m0).round(3).to_dict()
    {'marginal': 0.077, 'conditional': 0.182, 'prv_level1': 0.054, 'prv_school': 0.446, 'sb_level1': 0.125, 'sb_level2': 0.407}
    """
    _check_fit(fit, "r2()'s first argument", glmm=True)
    from mlm.toolkit.glmm_variance import check_options
    check_options(approximation, poisson_lambda)
    if _is_glmm(fit):
        if baseline is not None:
            raise DataError("r2(baseline=...) is for linear fits (R&B's and S&B's explained variance "
                            "by level); a glmer fit has no residual variance to reduce. Drop baseline=.")
        from mlm.toolkit.glmm_variance import glmm_r2
        return glmm_r2(fit, approximation, poisson_lambda)
    _linear_only("r2()", approximation=(approximation, "lognormal"),
                 poisson_lambda=(poisson_lambda, "intercept"))
    vf = _fixed_variance(fit)
    V = _factor_variances(fit)
    vr = sum(V.values())
    s2 = float(fit.solution.sigma2)
    total = vf + vr + s2
    values = {"marginal": vf / total, "conditional": (vf + vr) / total}
    notes = []
    if _has_slopes(fit):
        notes.append("Random slopes: V_r averages z_i' T z_i over the rows (Johnson 2014).")
    if baseline is not None:
        _check_fit(baseline, "baseline")
        if baseline.nobs != fit.nobs or not np.allclose(baseline.design.y, fit.design.y):
            raise DataError(
                f"The baseline was fitted to different rows ({baseline.nobs} rows) than the "
                f"model ({fit.nobs} rows{', same count but other outcome values' if baseline.nobs == fit.nobs else ''}). "
                "Explained variance compares two models of the same data: drop the rows with "
                "missing values in any variable of the larger model before fitting both.")
        gf, gb = list(fit.ngroups), list(baseline.ngroups)
        if set(gf) != set(gb):
            raise DataError(
                f"The baseline's grouping factors ({', '.join(gb)}) differ from the model's "
                f"({', '.join(gf)}). Use a baseline with the same random-effects grouping, e.g. "
                f"'{fit.design.formula.response} ~ 1 + "
                + " + ".join(f"(1 | {g})" for g in gf) + "'.")
        s2b = float(baseline.solution.sigma2)
        tm, tb = _intercept_variances(fit), _intercept_variances(baseline)
        values["prv_level1"] = 1 - s2 / s2b
        for g in _factor_names(fit):
            if g in tm and g in tb:
                values[f"prv_{g}"] = 1 - tm[g] / tb[g] if tb[g] > 0 else np.nan
        first = fit.design.blocks[0]
        g1 = first.group_name
        if g1 in tm and g1 in tb:
            n_j = np.bincount(first.codes, minlength=first.n_levels)
            n_h = len(n_j) / np.sum(1.0 / n_j)
            values["sb_level1"] = 1 - (s2 + tm[g1]) / (s2b + tb[g1])
            values["sb_level2"] = 1 - (s2 / n_h + tm[g1]) / (s2b / n_h + tb[g1])
        if _has_slopes(fit) or _has_slopes(baseline):
            notes.append("R&B's and S&B's measures are defined for random-intercept models; "
                         "with random slopes tau00 depends on where the predictors are centred.")
        if len(gf) > 1:
            notes.append(f"S&B's R² uses the first grouping factor of the formula, '{g1}'.")
        if fit.reml != baseline.reml:
            notes.append("The model and the baseline were fitted by different criteria (REML/ML).")
    out = pd.Series(values, name="r2", dtype=float)
    out.attrs.update({
        "method": ("Nakagawa & Schielzeth (2013) R², random slopes by Johnson (2014), as "
                   "performance::r2_nakagawa; R&B proportional reduction in variance; "
                   "Snijders & Bosker (2012) R²"),
        "fixed_variance": vf, "random_variance": vr, "residual_variance": s2,
        "notes": notes,
    })
    return out
