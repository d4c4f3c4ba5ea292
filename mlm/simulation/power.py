"""Power of a test of a fixed effect by simulation, over design sizes (R's simr).

For each design size the fitted model's rows are resized along one grouping factor
(:func:`resize_design`, simr's ``powerCurve`` and ``extend``), outcomes are simulated from
the fitted model with the tested coefficient set to the effect of interest, the model is
refitted to each and the effect tested; power is the share of refits whose p-value is
below ``alpha``. The design of each size is built once and reused by every replicate
(:class:`mlm.simulation.replicates.RefitTemplate`).
"""

from __future__ import annotations

import dataclasses
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.errors import MLMError
from mlm.simulation.replicates import (RefitTemplate, check_n_jobs, check_nsim, replicate_seeds,
                                       run_replicates)
from mlm.results.linear import require_fit

__all__ = ["power", "resize_design"]

COLUMNS = ["n_groups", "group_size", "power", "conf_low", "conf_high", "nsim", "failures",
           "singular"]
REFIT_ERRORS = (MLMError, np.linalg.LinAlgError, ValueError, FloatingPointError)


def _default_along(design) -> str:
    """The single grouping factor, or the one every other factor is nested in."""
    factors = list(design.grouping_factors)
    if len(factors) == 1:
        return factors[0]
    codes = {}
    for b in design.blocks:
        codes.setdefault(b.group_name, b.codes)
    for g in sorted(factors, key=lambda f: len(design.grouping_factors[f])):
        if all(_nested_in(codes[h], codes[g]) for h in factors):
            return g
    raise MLMError(f"The model has crossed grouping factors ({', '.join(factors)}): say along which "
                   "one the number of groups changes, e.g. along='" + factors[0] + "'.")


def _nested_in(inner, outer) -> bool:
    """Every level of ``inner`` lies within a single level of ``outer``."""
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(pairs) == len(np.unique(inner))


def resize_design(design, along: str, n_groups: int, group_size: int | None = None):
    """The design with ``n_groups`` levels of ``along`` and ``group_size`` rows in each.

    As simr: fewer groups than the data have take the first ones in level order
    (``powerCurve(along=)``); more repeat them in turn as new groups (``extend(along=)``),
    so group ``j`` copies group ``j mod G``. ``group_size`` (simr's ``extend(within=)``)
    keeps the first rows of each group, or repeats its rows in turn; None keeps them all.
    Factors nested in ``along`` get new levels in every copy; crossed factors keep theirs.

    Examples
    --------
    >>> import mlm
    >>> from mlm.simulation.power import resize_design
    >>> design = mlm.build_design("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> bigger = resize_design(design, "Subject", 30, group_size=5)
    >>> bigger.nobs, bigger.blocks[0].n_levels
    (150, 30)
    """
    blocks = design.blocks
    along_block = next(b for b in blocks if b.group_name == along)
    G = along_block.n_levels
    rows_of = [np.flatnonzero(along_block.codes == g) for g in range(G)]
    rows, copies = [], []
    for j in range(n_groups):
        src = rows_of[j % G]
        if group_size is not None:
            src = src[np.arange(group_size) % len(src)]
        rows.append(src)
        copies.append(np.full(len(src), j // G))
    rows, copy = np.concatenate(rows), np.concatenate(copies)
    new_blocks = []
    for b in blocks:
        codes = b.codes[rows]
        if _nested_in(b.codes, along_block.codes):
            key = copy * b.n_levels + codes
        else:
            key = codes
        used, new_codes = np.unique(key, return_inverse=True)
        labels = [b.levels[k % b.n_levels] if k < b.n_levels else f"{b.levels[k % b.n_levels]}.{k // b.n_levels}"
                  for k in used]
        new_blocks.append(dataclasses.replace(b, Z=b.Z[rows], codes=new_codes.astype(np.intp),
                                              levels=pd.Index(labels, name=b.levels.name)))
    frame = design.frame.iloc[rows].reset_index(drop=True)
    return dataclasses.replace(design, y=design.y[rows], X=design.X[rows], blocks=tuple(new_blocks),
                               frame=frame, nobs_dropped=0, dropped_index=pd.Index([]))


def _sizes(value, what, default, least):
    if value is None:
        return [default]
    values = [value] if np.ndim(value) == 0 else list(value)
    if not values:
        raise MLMError(f"{what} is empty: give a whole number or a list of them.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (Integral, np.integer)) or v < least:
            raise MLMError(f"{what} must be whole numbers of at least {least}, not {v!r}.")
    return [int(v) for v in values]


def _one_replicate(payload, rng):
    """(p-value, singular) of one refit; p is NaN when the refit failed or did not converge."""
    template, position = payload
    y = template.simulate(rng)
    try:
        refit = template.refit(y)
        p = float(refit.coefficients["p_value"].iloc[position])
        if not refit.converged:
            p = np.nan
        return p, bool(refit.singular)
    except REFIT_ERRORS:
        return np.nan, False


def _clopper_pearson(k, n, level=0.95):
    """Exact binomial interval, as simr's (R's binom.test)."""
    if n == 0:
        return np.nan, np.nan
    a = (1 - level) / 2
    low = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def _check_args(fit, test, effect, alpha):
    names = list(fit.fixef.index)
    if not isinstance(test, str) or test not in names:
        raise MLMError(f"test must name a fixed effect of the model ({', '.join(names)}), "
                       f"not {test!r}.")
    if effect is not None and (isinstance(effect, bool) or not isinstance(effect, Real)
                               or not np.isfinite(effect)):
        raise MLMError(f"effect must be a finite number (the value of {test!r} to simulate "
                       f"under), not {effect!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha < 1:
        raise MLMError(f"alpha must be a significance level between 0 and 1, not {alpha!r}.")
    return names.index(test)


def power(fit, test: str, effect: float | None = None, n_groups=None, group_size=None,
          nsim: int = 1000, alpha: float = 0.05, seed=None, n_jobs: int | None = 1,
          progress: bool = True, along: str | None = None) -> pd.DataFrame:
    """Power to detect a fixed effect, by simulation from a fitted model (R's simr).

    For each design size: simulate ``nsim`` outcomes from the fitted model (new random
    effects and residuals, fixed effects as estimated except ``test`` set to
    ``effect``), refit the model to each, and count the refits whose test of ``test``
    has p < ``alpha``. The test is whatever :attr:`MixedResult.coefficients` reports
    (its ``p_value`` column, a t-test with the df method of ``fit.ddf``: Satterthwaite's
    unless the fit was made with another), so power follows the fit's test of fixed
    effects. Satterthwaite df cost a few deviance evaluations per refit; a fit made with
    ``ddf="normal"`` simulates faster but its z-tests are liberal with few groups.

    Parameters
    ----------
    fit : MixedResult
        The model to simulate from: a pilot fit, or a fit to data made by
        :func:`mlm.simulate_dataset` with the planned effects and variances.
    test : str
        The fixed effect to test, by its name in ``fit.fixef``.
    effect : float, optional
        Its value in the simulations (the smallest effect of interest); by default the
        estimate, which gives "observed power" (rarely what is wanted).
    n_groups : int or list of int, optional
        Numbers of levels of ``along``. Fewer than the fit has take its first levels in
        level order; more repeat them in turn as new levels (simr's ``powerCurve`` and
        ``extend``). Default: the fit's.
    group_size : int or list of int, optional
        Rows per level of ``along`` (simr's ``extend(within=)``): the first rows of each,
        or its rows repeated in turn. Default: each group's own rows. Lists of
        ``n_groups`` and ``group_size`` give one row of output per combination.
    nsim : int, default 1000
        Simulations per design size. The Monte Carlo standard error of a power ``p`` is
        ``sqrt(p (1 - p) / nsim)``: 0.016 at p = 0.5 with 1000.
    alpha : float, default 0.05
        Significance level of each simulated test.
    seed : int, optional
        Design size ``i`` simulates from the ``i``-th child of
        ``numpy.random.SeedSequence(seed)``, replicate ``r`` from that child's ``r``-th
        child: the result does not depend on ``n_jobs`` or the machine count.
    n_jobs : int or None, default 1
        Worker processes (joblib): 1 runs here, -1 uses every core, None follows joblib's
        active configuration (``with joblib.parallel_config(backend="dask"):`` with a
        ``dask.distributed.Client`` runs on a Dask cluster).
    progress : bool, default True
        Show a tqdm progress bar per design size.
    along : str, optional
        The grouping factor whose number of levels changes. Default: the model's only
        grouping factor, or the one all others are nested in.

    Returns
    -------
    pandas.DataFrame
        One row per design size (index ``design``): ``n_groups``, ``group_size`` (rows
        per group; the mean when groups keep their own sizes), ``power``, ``conf_low``,
        ``conf_high`` (95% Clopper-Pearson interval, as simr), ``nsim``, ``failures``
        (refits that raised an error, did not converge or gave no p-value: left out of
        ``power``'s denominator, as simr does) and ``singular`` (singular refits: kept,
        as simr does, and counted).

    Raises
    ------
    MLMError
        For an unknown ``test`` or ``along``, bad sizes, or a resized design whose
        fixed-effect columns are collinear (e.g. a treatment constant in the first groups).

    Examples
    --------
    >>> import mlm
    >>> d = mlm.simulate_dataset(20, 10, icc=0.1, fixed={"treat": 0.5}, level2=["treat"],
    ...                          binary=["treat"], seed=1)
    >>> fit = mlm.lmer("y ~ treat + (1 | group)", d)
    >>> out = mlm.power(fit, "treat", effect=0.5, n_groups=[10, 20], nsim=20, seed=1,
    ...                 progress=False)
    >>> out[["n_groups", "nsim"]].values.tolist()
    [[10, 20], [20, 20]]
    """
    require_fit(fit)
    position = _check_args(fit, test, effect, alpha)
    nsim = check_nsim(nsim)
    n_jobs = check_n_jobs(n_jobs)
    design = fit.design
    if along is None:
        along = _default_along(design)
    elif along not in design.grouping_factors:
        raise MLMError(f"along must be a grouping factor of the model "
                       f"({', '.join(design.grouping_factors)}), not {along!r}.")
    G = len(design.grouping_factors[along])
    grid = [(J, m) for J in _sizes(n_groups, "n_groups", G, 2)
            for m in _sizes(group_size, "group_size", None, 1)]
    beta = fit.solution.beta.copy()
    if effect is not None:
        beta[position] = float(effect)
    rows = []
    for i, ((J, m), seeds) in enumerate(zip(grid, replicate_seeds(seed, len(grid)))):
        sized = design if (J == G and m is None) else resize_design(design, along, J, m)
        _check_rank(sized, J, m)
        template = RefitTemplate.from_fit(fit, design=sized, beta=beta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_replicates(_one_replicate, (template, position), seeds.spawn(nsim),
                                 n_jobs=n_jobs, progress=progress,
                                 desc=f"power, {J} groups" + (f" of {m}" if m else ""))
        p = np.array([o[0] for o in out])
        ok = np.isfinite(p)
        hits, n_ok = int(np.sum(p[ok] < alpha)), int(ok.sum())
        low, high = _clopper_pearson(hits, n_ok)
        rows.append({"n_groups": J, "group_size": float(m if m else sized.nobs / J),
                     "power": hits / n_ok if n_ok else np.nan, "conf_low": low, "conf_high": high,
                     "nsim": nsim, "failures": nsim - n_ok,
                     "singular": int(sum(o[1] for o in out))})
        del template, sized   # one design in memory at a time
    out = pd.DataFrame(rows, columns=COLUMNS)
    out.index.name = "design"
    return out


def _check_rank(design, J, m):
    X = design.X
    if np.linalg.matrix_rank(X) < X.shape[1]:
        constant = [n for n, col in zip(design.fixed_names, X.T)
                    if n != "(Intercept)" and np.ptp(col) == 0]
        hint = (f" ({', '.join(constant)} is constant there)" if constant else "")
        raise MLMError(f"With {J} groups" + (f" of {m}" if m else "") + " the fixed-effect columns "
                       f"are collinear{hint}: use more groups, or order the groups so that the "
                       "first ones vary in every predictor (e.g. alternate treated and control).")
