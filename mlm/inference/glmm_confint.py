"""Confidence intervals for :func:`mlm.glmer` fits: profile, Wald and parametric bootstrap.

:func:`mlm.confint` hands glmer fits here. The rows follow lme4's ``confint(fit, oldNames =
FALSE)`` for a glmer fit: each random-effect SD and correlation (``sd_(Intercept)|district``,
``cor_urbanY.(Intercept)|district``; no ``sigma``, a GLMM has none), then the fixed effects
(link scale). ``method="profile"`` (the default, as lme4's) profiles the fit's Laplace or
AGQ deviance over each parameter with all the others optimised
(:mod:`mlm.inference.glmm_profile`); ``method="bootstrap"`` refits the model to outcomes
simulated from it (:func:`mlm.bootstrap`, lme4's ``bootMer``) and takes boot's percentile
intervals, as lme4's ``confint(method = "boot")``; ``"wald"`` gives the fixed effects' Wald
intervals and NaN for the variance parameters, as lme4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.engine.pls import single_threaded_blas

__all__ = ["glmm_confint", "glmm_varpar_names", "glmm_sdcor"]


def glmm_varpar_names(fit) -> list:
    """lme4's ``oldNames = FALSE`` names of the variance parameters, in lme4's term order.

    Examples
    --------
    >>> import mlm
    >>> from mlm.inference.glmm_confint import glmm_sdcor, glmm_varpar_names
    >>> fit = mlm.glmer("use ~ urban + (urban | district)", mlm.load_dataset("contraception"))
    >>> glmm_varpar_names(fit)
    ['sd_(Intercept)|district', 'cor_urbanY.(Intercept)|district', 'sd_urbanY|district']
    >>> glmm_sdcor(fit).round(2).tolist()
    [0.59, -0.82, 0.82]
    """
    rs, blocks = fit.problem.rs, fit.design.blocks
    names = []
    for t in fit._lme4_order():
        cols, g = blocks[t].columns, blocks[t].group_name
        for i, j in rs.idx[t]:
            names.append(f"sd_{cols[i]}|{g}" if i == j else f"cor_{cols[i]}.{cols[j]}|{g}")
    return names


def glmm_sdcor(fit) -> np.ndarray:
    """The SDs and correlations of every term (theta's layout per term), in lme4's term order.

    A correlation beside a zero SD is undefined: NaN (as for linear fits).
    """
    rs = fit.problem.rs
    templates = rs.templates(fit.theta)
    out = []
    for t in fit._lme4_order():
        C = templates[t] @ templates[t].T
        sd = np.sqrt(np.diag(C))
        for i, j in rs.idx[t]:
            if i == j:
                out.append(sd[i])
            else:
                out.append(C[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan)
    return np.asarray(out, dtype=float)


def _statistic(f):
    return np.concatenate([glmm_sdcor(f), np.asarray(f.fixef, dtype=float)])


def glmm_confint(fit, key, level, wanted, vnames, fnames, nsim, seed, n_jobs, progress):
    """Rows ``{name: (low, high)}`` and notes for a glmer fit (see the module notes)."""
    from mlm.inference.confint import percentile_interval
    from mlm.toolkit.bootstrap import bootstrap

    if key == "profile":
        return _profile(fit, level, vnames, fnames, set(wanted))
    if key == "wald":
        z = stats.norm.ppf(0.5 + level / 2)
        co = fit.coefficients
        rows = {n: (np.nan, np.nan) for n in vnames}
        for name in fnames:
            b, s = co.loc[name, "estimate"], co.loc[name, "std_error"]
            rows[name] = (b - z * s, b + z * s)
        return rows, []
    boot = bootstrap(fit, _statistic, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    reps = boot.replicates.to_numpy()
    rows = {name: percentile_interval(reps[:, k], level) for k, name in enumerate(vnames + fnames)}
    notes = []
    if boot.failures:
        notes.append(f"{boot.failures} of {nsim} bootstrap refits failed and were left out.")
    return rows, notes


def _profile(fit, level, vnames, fnames, wanted):
    """Profile rows of a glmer fit (:mod:`mlm.inference.glmm_profile`) and bound notes."""
    from mlm.inference.glmm_profile import GLMMProfiler

    z = stats.norm.ppf(0.5 + level / 2)
    problem = fit.problem
    order = [k for t in fit._lme4_order() for k in range(problem.rs.slices[t].start,
                                                           problem.rs.slices[t].stop)]
    rows, notes = {}, []
    # the profile moves the problem's PIRLS warm start (its modes): put it back after
    u_fit = getattr(problem, "_u", None)
    u_fit = None if u_fit is None else np.array(u_fit, copy=True)
    try:
        with single_threaded_blas():
            prof = GLMMProfiler(problem, fit.theta, np.asarray(fit.fixef, dtype=float),
                                fit.coefficients["std_error"].to_numpy(dtype=float))
            for name, w in zip(vnames, order):
                if name in wanted:
                    low, high, flag = prof.varpar_interval(w, z)
                    rows[name] = (low, high)
                    notes.extend(bound_note(name, flag, prof.kinds[w]))
            for j, name in enumerate(fnames):
                if name in wanted:
                    rows[name] = prof.fixed_interval(j, z)
    finally:
        if u_fit is not None:
            problem._u = u_fit
    if prof.lowest < prof.base - 1e-3:
        notes.append(f"The profile met a deviance {prof.base - prof.lowest:.3g} below the fit's: "
                     "the fit stopped short of the optimum, and limits near the estimate are "
                     "measured from the fit's deviance (refit from other start values).")
    bad = [n for n in wanted if not np.all(np.isfinite(rows[n])) and n in fnames]
    if bad:
        notes.append(f"The profile of {', '.join(bad)} could not be followed to its crossing "
                     "(the deviance could not be evaluated there): NaN.")
    return rows, notes


def bound_note(name, flag, kind):
    """What was done for a parameter estimated on its bound (as for linear fits)."""
    if flag == "lower":
        what = "0" if kind != "cor" else "-1"
        return [f"{name} is estimated at {what}, on its bound (a singular fit): its lower limit "
                f"is set to {what}, as lme4 does, and only its upper limit is profiled."]
    if flag == "upper":
        return [f"{name} is estimated at 1, on its bound (a singular fit): its upper limit is "
                "set to 1, as lme4 does, and only its lower limit is profiled."]
    if flag == "undefined":
        return [f"{name} is undefined (an SD of its term is estimated at 0): no interval (NaN)."]
    return []


def parameter_names(fit):
    """(variance-parameter names, fixed-effect names) of a glmer fit."""
    return glmm_varpar_names(fit), list(pd.Index(fit.design.fixed_names))
