"""Simulation: new outcomes from a fitted model, and teaching data with chosen effects.

:func:`simulate` is lme4's ``simulate.merMod`` (``use.u = FALSE``): new random effects and
residuals drawn from the fitted model. :func:`simulate_dataset` builds two- or
three-level data from a random-intercept model (plus optional random slopes) whose
intraclass correlation, fixed effects and group sizes are chosen by the user.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd

from mlm.errors import MLMError
from mlm.simulation.glmm_replicates import template_for
from mlm.simulation.replicates import check_nsim, replicate_seeds
from mlm.results.linear import require_fit

__all__ = ["simulate", "simulate_dataset"]


def simulate(fit, nsim: int = 1, seed=None) -> pd.DataFrame:
    """New outcomes drawn from a fitted model: lme4's ``simulate(fit, nsim, seed)``.

    Each simulation draws new random effects for every level of every grouping factor
    and new residuals, from the estimated covariances and residual variance, around the
    estimated fixed effects (lme4's default ``use.u = FALSE``). For a :func:`mlm.glmer`
    fit, new random effects and then the outcome from the family at the fitted mean
    (offsets included): binomial successes out of each row's trials, Poisson counts.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
    nsim : int, default 1
        Number of simulated outcome vectors.
    seed : int, optional
        Simulation ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``
        (so it is the outcome of replicate ``i`` of :func:`mlm.bootstrap` with the same
        seed). The numbers differ from R's for the same seed.

    Returns
    -------
    pandas.DataFrame
        One column per simulation, ``sim_1, sim_2, ...`` (lme4's names), indexed like the
        rows the model was fitted to (``fit.fitted.index``). For a glmer fit the outcome
        as the formula gave it: 0/1 for a binary outcome (1 = the success level, as
        ``fit.success``), the number of successes for ``cbind(successes, failures)``, the
        proportion for a proportion with ``weights=`` trials (as lme4), counts for Poisson;
        ``attrs["outcome"]`` says which.

    Raises
    ------
    MLMError
        ``nsim`` not a positive whole number, too many outcomes for memory, binomial
        trials that are not whole numbers, or a Poisson fit with ``weights=``.

    Examples
    --------
    >>> import mlm
    >>> from mlm.simulation.simulate import simulate
    >>> fit = mlm.lmer("mathach ~ ses + (1 | school)", mlm.load_dataset("hsb"))
    >>> sims = simulate(fit, nsim=3, seed=1)
    >>> list(sims.columns), len(sims)
    (['sim_1', 'sim_2', 'sim_3'], 7185)
    >>> g = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...               mlm.load_dataset("cbpp"))
    >>> sims = simulate(g, nsim=2, seed=1)
    >>> bool((sims.le(mlm.load_dataset("cbpp")["size"], axis=0)).all().all())
    True
    >>> sims.attrs["outcome"]
    'numbers of successes (incidence) out of the trials of each row'
    """
    require_fit(fit, glmm=True)
    nsim = check_nsim(nsim)
    cells = nsim * fit.nobs
    if cells > MAX_CELLS:
        raise MLMError(f"simulate(nsim={nsim}) would hold {cells:,} outcomes ({cells * 8 / 2**30:.1f} GiB) "
                       f"in one frame; ask for fewer (at most {MAX_CELLS // fit.nobs:,} for these "
                       f"{fit.nobs:,} rows) and loop, or use mlm.bootstrap / mlm.power, which keep "
                       "one replicate at a time.")
    template = template_for(fit)
    columns = {f"sim_{i + 1}": template.simulate(np.random.default_rng(s))
               for i, s in enumerate(replicate_seeds(seed, nsim))}
    if hasattr(template, "response_scale"):  # a glmer fit: the outcome as its formula gave it
        columns = {k: template.response_scale(v) for k, v in columns.items()}
        out = pd.DataFrame(columns, index=fit.fitted.index)
        out.attrs["outcome"] = _glmm_outcome_words(fit)
        return out
    return pd.DataFrame(columns, index=fit.design.frame.index)


def _glmm_outcome_words(fit) -> str:
    """What the columns of a glmer fit's simulations hold."""
    gd = fit.gdesign
    if gd.family.name == "poisson":
        return f"counts of {gd.response}"
    if gd.cbind is not None:
        return f"numbers of successes ({gd.cbind[0]}) out of the trials of each row"
    if np.all(gd.weights == 1):
        what = f"'{gd.success}'" if gd.success is not None else "a success"
        return f"1 = {what}, 0 = not (the outcome {gd.response})"
    return "proportions of successes out of the trials given by weights="


#: simulate() refuses to build a frame of more outcomes than this (2 GiB of floats)
MAX_CELLS = 2**28

# --- teaching data ------------------------------------------------------------------------
def _count(value, what):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise MLMError(f"{what} must be a positive whole number, not {value!r}.")
    return int(value)


def _layout(n_groups, group_size):
    """Number of clusters (None for two levels), groups and the size of every group."""
    if isinstance(n_groups, (tuple, list)):
        if len(n_groups) != 2:
            raise MLMError("n_groups is a number of groups (two levels) or a pair "
                           f"(clusters, groups per cluster) for three levels, not {n_groups!r}.")
        n_clusters = _count(n_groups[0], "The number of clusters (n_groups[0])")
        per = _count(n_groups[1], "The number of groups per cluster (n_groups[1])")
        total = n_clusters * per
    else:
        n_clusters, total = None, _count(n_groups, "n_groups")
    if isinstance(group_size, (Integral, np.integer)) and not isinstance(group_size, bool):
        sizes = np.full(total, _count(int(group_size), "group_size"))
    else:
        try:
            sizes = np.asarray(list(group_size))
        except TypeError:
            raise MLMError(f"group_size must be a whole number (balanced) or one size per group "
                           f"(unbalanced), not {group_size!r}.") from None
        if len(sizes) != total:
            raise MLMError(f"group_size has {len(sizes)} sizes but there are {total} groups: "
                           "give one size per group, or a single number for equal sizes.")
        for s in sizes:
            _count(s.item() if hasattr(s, "item") else s, "Every group size")
        sizes = sizes.astype(int)
    return n_clusters, total, sizes


def _shares(icc, three):
    if three:
        if not (isinstance(icc, (tuple, list)) and len(icc) == 2):
            raise MLMError("With three levels icc is a pair (cluster share, group share) of the "
                           f"variance, e.g. (0.1, 0.2), not {icc!r}.")
        shares = [float(v) if isinstance(v, Real) and not isinstance(v, bool) else np.nan
                  for v in icc]
    else:
        if isinstance(icc, bool) or not isinstance(icc, Real):
            raise MLMError(f"icc must be a number in [0, 1), not {icc!r}.")
        shares = [float(icc)]
    if any(not np.isfinite(v) or v < 0 for v in shares) or sum(shares) >= 1:
        raise MLMError(f"icc must hold variance shares >= 0 that sum to less than 1 (the rest is "
                       f"the residual variance), not {icc!r}.")
    return shares


def _predictor_specs(fixed, level2, level3, binary, slope_sd, three):
    fixed = dict(fixed or {})
    intercept = float(fixed.pop("(Intercept)", 0.0))
    for name, value in fixed.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise MLMError(f"Predictor names in fixed must be valid column names such as 'x' or "
                           f"'treat', not {name!r}.")
        if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
            raise MLMError(f"The coefficient of {name!r} in fixed must be a finite number, not "
                           f"{value!r}.")
    for what, names in (("level2", level2), ("level3", level3), ("binary", binary)):
        unknown = [n for n in names if n not in fixed]
        if unknown:
            raise MLMError(f"{what} names {unknown} that are not predictors in fixed "
                           f"({', '.join(fixed) or 'none'}); add them to fixed with their effect.")
    if level3 and not three:
        raise MLMError("level3 predictors need three levels: give n_groups as (clusters, groups "
                       "per cluster).")
    both = set(level2) & set(level3)
    if both:
        raise MLMError(f"{sorted(both)} cannot be both level-2 and level-3 predictors.")
    level1 = [n for n in fixed if n not in level2 and n not in level3]
    if slope_sd is None:
        slope_sd = {}
    elif isinstance(slope_sd, Real) and not isinstance(slope_sd, bool):
        if len(level1) != 1:
            raise MLMError(f"slope_sd={slope_sd!r} needs exactly one level-1 predictor to apply to "
                           f"(there are {level1 or 'none'}); give a dict such as {{'x': 0.3}}.")
        slope_sd = {level1[0]: slope_sd}
    if not isinstance(slope_sd, dict):
        raise MLMError(f"slope_sd must be a number or a dict of level-1 predictor -> SD, not "
                       f"{slope_sd!r}.")
    for name, sd in slope_sd.items():
        if name not in level1:
            raise MLMError(f"slope_sd names {name!r}, which is not a level-1 predictor in fixed "
                           f"(level-1 predictors: {level1 or 'none'}); only level-1 slopes vary "
                           "over groups.")
        if isinstance(sd, bool) or not isinstance(sd, Real) or not np.isfinite(sd) or sd < 0:
            raise MLMError(f"slope_sd of {name!r} must be a standard deviation >= 0, not {sd!r}.")
    return intercept, fixed, level1, {k: float(v) for k, v in slope_sd.items()}


def _values(name, unit_index, n_units, binary, rng):
    """Standard-normal values per unit, or 0/1 alternating over units (balanced)."""
    if name in binary:
        per_unit = (np.arange(n_units) % 2 == 0).astype(float)
    else:
        per_unit = rng.standard_normal(n_units)
    return per_unit[unit_index]


def simulate_dataset(n_groups, group_size, icc, fixed=None, slope_sd=None, level2=(),
                     level3=(), binary=(), seed=None) -> pd.DataFrame:
    """Two- or three-level teaching data with chosen ICC, effects and group sizes.

    The outcome follows, for row ``i`` of group ``j`` (of cluster ``k`` with three levels),

    ``y = b0 + sum_x b_x x + u_k + u_j + sum_x s_jx x + e``

    with ``u_j ~ N(0, tau2)``, ``u_k ~ N(0, tau3)`` (three levels), random slopes
    ``s_jx ~ N(0, slope_sd[x]^2)`` and ``e ~ N(0, sigma2)``, all independent, and
    ``tau3 + tau2 + sigma2 = 1``: the shares of that unit variance are the ICCs.

    Parameters
    ----------
    n_groups : int or (int, int)
        Number of groups (two levels), or ``(clusters, groups per cluster)`` for three
        levels (groups nested in clusters).
    group_size : int or sequence of int
        Rows per group: one number (balanced) or one size per group in group order
        (unbalanced; with three levels, groups of cluster 1 first).
    icc : float or (float, float)
        Two levels: ``tau2 / (tau2 + sigma2)``, the intraclass correlation of the
        outcome given the predictors (at ``x = 0`` when slopes vary). Three levels:
        ``(tau3, tau2)``, the variance shares of cluster and group (performance's
        ``by_group`` convention; Stata's ``estat icc`` for the group is ``tau3 + tau2``).
    fixed : dict, optional
        Fixed effects: ``"(Intercept)"`` (default 0) and one entry per predictor to
        create, e.g. ``{"(Intercept)": 50, "ses": 2.0, "treat": 0.3}``. Predictors are
        standard normal and independent unless listed in ``binary``.
    slope_sd : float or dict, optional
        Standard deviation over groups of the slopes of level-1 predictors, e.g.
        ``{"ses": 0.5}``; a number if there is one level-1 predictor. Slopes are
        independent of the intercepts and add ``slope_sd^2 x^2`` to a row's variance.
    level2, level3 : sequence of str
        Predictors constant within a group (level 2) or within a cluster (level 3);
        the others vary over rows (level 1).
    binary : sequence of str
        Predictors coded 0/1 instead of standard normal: 1, 0, 1, 0, ... over the units
        of their level (groups for level 2, clusters for level 3, rows within a group
        for level 1), so the first ``2m`` groups always hold ``m`` of each, as a
        balanced trial with alternating allocation.
    seed : int, optional
        For reproducible data (numpy's default generator).

    Returns
    -------
    pandas.DataFrame
        Columns ``cluster`` (three levels only), ``group`` (ids 1, 2, ... unique over
        clusters), the predictors in the order of ``fixed``, and ``y``. ``attrs`` holds
        ``name`` ("simulated"), ``description`` (the generating model in words) and
        ``parameters`` (the values used).

    Examples
    --------
    >>> import mlm
    >>> d = mlm.simulate_dataset(40, 10, icc=0.2, fixed={"(Intercept)": 0.0, "treat": 0.5},
    ...                          level2=["treat"], binary=["treat"], seed=1)
    >>> d.shape
    (400, 3)
    >>> int(d.groupby("group")["treat"].first().sum())
    20
    """
    n_clusters, total, sizes = _layout(n_groups, group_size)
    three = n_clusters is not None
    shares = _shares(icc, three)
    level2, level3, binary = list(level2), list(level3), list(binary)
    intercept, fixed, level1, slope_sd = _predictor_specs(fixed, level2, level3, binary,
                                                          slope_sd, three)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0):
        raise MLMError(f"seed must be None or a non-negative whole number, not {seed!r}.")
    rng = np.random.default_rng(seed)

    n = int(sizes.sum())
    group = np.repeat(np.arange(total), sizes)
    cluster = group // (total // n_clusters) if three else None
    within = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)   # row number in its group
    columns = {}
    if three:
        columns["cluster"] = cluster + 1
    columns["group"] = group + 1
    for name in fixed:
        if name in level3:
            columns[name] = _values(name, cluster, n_clusters, binary, rng)
        elif name in level2:
            columns[name] = _values(name, group, total, binary, rng)
        elif name in binary:
            columns[name] = (within % 2 == 0).astype(float)
        else:
            columns[name] = rng.standard_normal(n)

    tau3, tau2 = (shares[0], shares[1]) if three else (0.0, shares[0])
    sigma2 = 1.0 - tau3 - tau2
    y = intercept + sum(b * columns[x] for x, b in fixed.items())
    y = y + np.sqrt(tau2) * rng.standard_normal(total)[group]
    if three:
        y = y + np.sqrt(tau3) * rng.standard_normal(n_clusters)[cluster]
    for x, sd in slope_sd.items():
        y = y + sd * rng.standard_normal(total)[group] * columns[x]
    y = y + np.sqrt(sigma2) * rng.standard_normal(n)
    frame = pd.DataFrame(columns)
    frame["y"] = y
    params = {"(Intercept)": intercept, **fixed, "tau2": tau2, "sigma2": sigma2,
              "slope_sd": dict(slope_sd)}
    if three:
        params["tau3"] = tau3
    frame.attrs["name"] = "simulated"
    frame.attrs["parameters"] = params
    frame.attrs["description"] = _describe(n_clusters, total, sizes, params, level1, level2,
                                           level3, binary, seed)
    return frame


def _describe(n_clusters, total, sizes, params, level1, level2, level3, binary, seed) -> str:
    size = (f"{sizes[0]} rows each" if np.all(sizes == sizes[0])
            else f"{sizes.min()} to {sizes.max()} rows (unbalanced)")
    where = f"{total} groups of {size}"
    if n_clusters is not None:
        where = f"{n_clusters} clusters of {total // n_clusters} groups, {where}"
    terms = " + ".join([f"{params['(Intercept)']:g}"]
                       + [f"{params[x]:g} {x}" for x in level1 + level2 + level3])
    lines = [f"Simulated by mlm.simulate_dataset (seed {seed}): {where}.",
             f"y = {terms} + random effects + residual;",
             f"group intercept variance tau2 = {params['tau2']:g}, residual variance sigma2 = "
             f"{params['sigma2']:g}"
             + (f", cluster intercept variance tau3 = {params['tau3']:g}" if "tau3" in params else "")
             + "."]
    if params["slope_sd"]:
        lines.append("Random slopes over groups (SD): "
                     + ", ".join(f"{k} {v:g}" for k, v in params["slope_sd"].items()) + ".")
    for label, names in (("Level-1", level1), ("Level-2", level2), ("Level-3", level3)):
        if names:
            lines.append(f"{label} predictors: " + ", ".join(
                f"{x} ({'0/1 alternating' if x in binary else 'standard normal'})" for x in names)
                + ".")
    return "\n".join(lines)
