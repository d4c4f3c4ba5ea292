"""Confidence intervals for every parameter of a fit: profile, Wald and parametric bootstrap.

:func:`confint` follows lme4's ``confint.merMod(fit, oldNames = FALSE)``: one row per
random-effect standard deviation and correlation (lme4's order and names,
``sd_(Intercept)|school``, ``cor_ses.(Intercept)|school``), then ``sigma``, then the
fixed effects. The profile method is :mod:`mlm.inference.profile`; the bootstrap is
:func:`mlm.bootstrap` with boot's percentile rule (``boot.ci(type = "perc")``, which
lme4's ``confint(method = "boot")`` calls).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.formula import match_term
from mlm.toolkit.bootstrap import bootstrap
from mlm.errors import MLMError
from mlm.engine.pls import single_threaded_blas
from mlm.simulation.replicates import check_nsim
from mlm.results.linear import MixedResult, require_fit
from mlm.inference import glmm_confint
from mlm.inference.profile import Profiler, theta_to_sdcor, varpar_names

__all__ = ["confint", "BoundaryWarning", "percentile_interval", "icc_bootstrap"]

METHODS = ("profile", "wald", "bootstrap")
_ALIASES = {"profile": "profile", "wald": "wald", "bootstrap": "bootstrap", "boot": "bootstrap"}


class BoundaryWarning(UserWarning):
    """A variance parameter sits on its bound (a singular fit); what was done is said in words."""


def _check_level(level) -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        lv = np.nan
    if not 0.0 < lv < 1.0:
        raise MLMError(f"level must be a number between 0 and 1 (e.g. 0.95 for 95% intervals), "
                       f"not {level!r}.")
    return lv


def _layout(fit):
    """Names of the variance parameters in lme4's order, and their positions in theta."""
    problem, blocks = fit.problem, fit.design.blocks
    names = varpar_names(problem, [b.columns for b in blocks], [b.group_name for b in blocks])
    order = []
    for i in fit._lme4_order():
        order.extend(range(problem._slices[i].start, problem._slices[i].stop))
    return [names[k] for k in order] + ["sigma"], order + [problem.n_theta]


def _parameter_names(fit):
    vnames, _ = _layout(fit)
    return vnames, list(fit.design.fixed_names)


def _select(parm, vnames, fnames):
    """lme4's ``parm``: None (all), ``"beta_"``, ``"theta_"``, a name or a list of names."""
    every = vnames + fnames
    if parm is None:
        return every
    if isinstance(parm, str):
        if parm == "beta_":
            return list(fnames)
        if parm == "theta_":
            return list(vnames)
        parm = [parm]
    try:
        wanted = [str(p) if isinstance(p, str) else p for p in parm]
    except TypeError:
        wanted = [parm]
    # the model's spelling, whatever the spacing (issue 11)
    wanted = [match_term(p, every) or p if isinstance(p, str) else p for p in wanted]
    unknown = [p for p in wanted if not isinstance(p, str) or p not in every]
    if unknown:
        raise MLMError(f"parm names unknown parameter(s) {', '.join(map(repr, unknown))}. "
                       f"This model's parameters are: {', '.join(every)}; or use 'beta_' (fixed "
                       "effects) or 'theta_' (random-effect SDs, correlations and sigma).")
    return list(dict.fromkeys(wanted))


def _frame(rows, names):
    out = pd.DataFrame(rows, index=pd.Index(names, name="parameter"),
                       columns=["conf_low", "conf_high"], dtype=float)
    return out


# --- Wald ----------------------------------------------------------------------------------------
def _wald(fit, level, vnames, fnames):
    z = stats.norm.ppf(0.5 + level / 2)
    rows = {n: (np.nan, np.nan) for n in vnames}
    se = np.sqrt(np.diag(fit.solution.vcov_beta))
    for name, b, s in zip(fnames, fit.solution.beta, se):
        rows[name] = (b - z * s, b + z * s)
    return rows


# --- profile -------------------------------------------------------------------------------------
def _profile(fit, level, vnames, fnames, wanted):
    z = stats.norm.ppf(0.5 + level / 2)
    _, order = _layout(fit)
    rows, notes = {}, []
    with single_threaded_blas():
        prof = Profiler(fit.problem, fit.theta, fit.sigma)
        for name, w in zip(vnames, order):
            if name not in wanted:
                continue
            low, high, flag = prof.varpar_interval(w, z)
            rows[name] = (low, high)
            if flag == "lower":
                what = "0" if prof.kinds[w] != "cor" else "-1"
                notes.append(f"{name} is estimated at {what}, on its bound (a singular fit): its "
                             f"lower limit is set to {what}, as lme4 does, and only its upper limit "
                             "is profiled.")
            elif flag == "upper":
                notes.append(f"{name} is estimated at 1, on its bound (a singular fit): its upper "
                             "limit is set to 1, as lme4 does, and only its lower limit is profiled.")
            elif flag == "undefined":
                notes.append(f"{name} is undefined (an SD of its term is estimated at 0): no "
                             "interval (NaN).")
        for j, name in enumerate(fnames):
            if name in wanted:
                rows[name] = prof.fixed_interval(j, z)
    return rows, notes


# --- bootstrap -------------------------------------------------------------------------------------
def percentile_interval(values, level: float) -> tuple[float, float]:
    """boot's percentile interval (``boot.ci(type = "perc")``, its ``norm.inter`` rule).

    The ``(R + 1) a``-th order statistic of the R finite replicates, interpolated on the
    normal-quantile scale between neighbouring order statistics when it is not an
    integer (Davison & Hinkley 1997, eq. 5.8) - the rule lme4's
    ``confint(method = "boot", boot.type = "perc")`` uses.
    """
    t = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    R = t.size
    if R == 0:
        return np.nan, np.nan
    out = []
    for a in ((1 - level) / 2, (1 + level) / 2):
        rk = (R + 1) * a
        k = int(np.floor(rk))
        if k == rk and 0 < k <= R:
            out.append(t[k - 1])
        elif k <= 0:
            out.append(t[0])
        elif k >= R:
            out.append(t[-1])
        else:
            z1, z2, z3 = stats.norm.ppf([a, k / (R + 1), (k + 1) / (R + 1)])
            out.append(t[k - 1] + (z1 - z2) / (z3 - z2) * (t[k] - t[k - 1]))
    return float(out[0]), float(out[1])


def _sdcor_statistic(fit):
    _, order = _layout(fit)

    def statistic(f):
        sd = theta_to_sdcor(f.problem, f.theta, f.sigma)
        return np.concatenate([sd[order], f.solution.beta])

    return statistic


def _bootstrap(fit, level, vnames, fnames, nsim, seed, n_jobs=1, progress=True):
    boot = bootstrap(fit, _sdcor_statistic(fit), nsim=nsim, seed=seed, n_jobs=n_jobs,
                     progress=progress)
    reps = boot.replicates.to_numpy()
    rows = {}
    for k, name in enumerate(vnames + fnames):
        rows[name] = percentile_interval(reps[:, k], level)
    notes = []
    if boot.failures:
        notes.append(f"{boot.failures} of {nsim} bootstrap refits failed and were left out.")
    return rows, notes, boot


# --- the public function ---------------------------------------------------------------------------
def confint(fit, method: str = "profile", level: float = 0.95, parm=None, nsim: int = 1000,
            seed: int | None = None, *, n_jobs: int | None = 1,
            progress: bool = True) -> pd.DataFrame:
    """Confidence intervals for the random-effect SDs and correlations, sigma and fixed effects.

    As lme4's ``confint(fit, method, level, parm, oldNames = FALSE)``.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        From :func:`mlm.lmer` or :func:`mlm.glmer` (no ``sigma`` row for a glmer fit;
        :mod:`mlm.inference.glmm_confint`).
    method : {"profile", "wald", "bootstrap"}, default "profile"
        ``"profile"``: profile-likelihood intervals (lme4's default): each parameter is
        held at a value while the deviance is minimised over the others, and the
        interval is where the signed root of the deviance increase equals
        ``-+ qnorm((1 + level) / 2)``. As in lme4 the ML deviance is profiled, also for
        REML fits (the intervals are centred on the ML estimates); an SD whose profile
        reaches 0 gets the lower limit 0, a correlation is bounded by -1 and 1, and a
        profile that never reaches the crossing gives the bound (``inf`` for an SD).
        The crossings are found by root-finding on the profile (lme4 interpolates a
        spline through a grid). For a glmer fit the fit's own deviance (Laplace, or
        AGQ with its ``nagq``) is profiled over each SD, correlation and fixed effect
        with all the other parameters, fixed effects included, optimised, as lme4's
        ``profile.merMod`` (:mod:`mlm.inference.glmm_profile`). ``"wald"``: estimate -+ z SE for the fixed effects
        (``vcov``); NaN for the variance parameters, as lme4. ``"bootstrap"``: a
        parametric bootstrap (:func:`mlm.bootstrap`, like ``bootMer``) with boot's
        percentile intervals, as ``confint(method = "boot", boot.type = "perc")``.
    level : float, default 0.95
        Confidence level, between 0 and 1.
    parm : str or list of str, optional
        Rows to compute: names as in the result, ``"beta_"`` (the fixed effects) or
        ``"theta_"`` (the SDs, correlations and sigma). Default: all. Profiling only the
        rows asked for saves time.
    nsim : int, default 1000
        Bootstrap replicates (``method="bootstrap"`` only).
    seed : int, optional
        Seed of the bootstrap's random numbers, for reproducible intervals (the same for
        any ``n_jobs``).
    n_jobs : int or None, default 1
        Bootstrap workers (joblib; ``method="bootstrap"`` only), as in :func:`mlm.bootstrap`.
    progress : bool, default True
        Progress bar of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Index ``parameter`` (lme4's ``oldNames = FALSE`` names: ``sd_(Intercept)|school``,
        ``cor_ses.(Intercept)|school``, ``sd_ses|school``, ..., ``sigma``, then the
        fixed effects), columns ``conf_low, conf_high``. ``attrs``: ``method``,
        ``level`` and ``notes`` (what was done at a bound; failed bootstrap refits).

    Raises
    ------
    MLMError
        For an unknown ``method``, a ``level`` outside (0, 1), a ``parm`` naming an
        unknown parameter, or ``nsim`` below 1.

    Warns
    -----
    BoundaryWarning
        With ``method="profile"``, when a parameter is estimated on its bound (an SD at 0,
        a correlation at -+1: a singular fit); the message says which limit was set to
        the bound.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> ci = mlm.confint(fit)
    >>> ci.round(2).loc[["sd_(Intercept)|Subject", "sigma", "Days"]]
                            conf_low  conf_high
    parameter
    sd_(Intercept)|Subject     14.38      37.72
    sigma                      22.90      28.86
    Days                        7.36      13.58
    >>> mlm.confint(fit, method="wald", parm="beta_").round(2)
                 conf_low  conf_high
    parameter
    (Intercept)    238.03     264.78
    Days             7.44      13.50
    >>> gfit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                  mlm.load_dataset("cbpp"))
    >>> mlm.confint(gfit, parm=["sd_(Intercept)|herd", "period2"]).round(2)
                         conf_low  conf_high
    parameter
    sd_(Intercept)|herd      0.35       1.10
    period2                 -1.62      -0.41
    """
    require_fit(fit, glmm=True)
    key = _ALIASES.get(method.lower() if isinstance(method, str) else None)
    if key is None:
        raise MLMError(f"Unknown method {method!r} for confint: use 'profile' (profile "
                       "likelihood, lme4's default), 'wald' or 'bootstrap'.")
    level = _check_level(level)
    glmm = not isinstance(fit, MixedResult)
    vnames, fnames = glmm_confint.parameter_names(fit) if glmm else _parameter_names(fit)
    wanted = _select(parm, vnames, fnames)
    notes = []
    if glmm:  # mlm/inference/glmm_confint.py: profile, Wald and bootstrap (no sigma)
        if key == "bootstrap":
            nsim = check_nsim(nsim)
        rows, notes = glmm_confint.glmm_confint(fit, key, level, wanted, vnames, fnames, nsim,
                                                seed, n_jobs, progress)
        if key == "profile":
            for n in notes:
                warnings.warn(n, BoundaryWarning, stacklevel=2)
    elif key == "wald":
        rows = _wald(fit, level, vnames, fnames)
    elif key == "profile":
        rows, notes = _profile(fit, level, vnames, fnames, set(wanted))
        for n in notes:
            warnings.warn(n, BoundaryWarning, stacklevel=2)
    else:
        nsim = check_nsim(nsim)
        rows, notes, _ = _bootstrap(fit, level, vnames, fnames, nsim, seed, n_jobs, progress)
    out = _frame([rows[n] for n in wanted], wanted)
    out.attrs.update({"method": key, "level": level, "notes": notes})
    return out


def icc_bootstrap(fit, factors, ancestors, level, nsim, seed):
    """Parametric bootstrap percentile intervals of each factor's ICC and cumulative ICC.

    Used by :func:`mlm.icc` with ``ci="bootstrap"``; ``ancestors`` maps each factor to the
    factors it is nested in (fixed by the design, so computed once).
    """
    from mlm.toolkit.variance import _factor_variances

    nsim = check_nsim(nsim)

    def statistic(f):
        V = _factor_variances(f)
        total = sum(V.values()) + f.solution.sigma2
        own = [V[g] / total for g in factors]
        cum = [(V[g] + sum(V[a] for a in ancestors[g])) / total for g in factors]
        return np.array(own + cum)

    boot = bootstrap(fit, statistic, nsim=nsim, seed=seed)
    reps = boot.replicates.to_numpy()
    m = len(factors)
    own = [percentile_interval(reps[:, i], level) for i in range(m)]
    cum = [percentile_interval(reps[:, m + i], level) for i in range(m)]
    frame = pd.DataFrame({"boot_conf_low": [o[0] for o in own], "boot_conf_high": [o[1] for o in own],
                          "cumulative_boot_conf_low": [c[0] for c in cum],
                          "cumulative_boot_conf_high": [c[1] for c in cum]},
                         index=pd.Index(factors, name="group"))
    return frame, {"nsim": nsim, "seed": seed, "failures": boot.failures,
                   "method": "parametric bootstrap, percentile intervals (boot.ci type 'perc')"}
