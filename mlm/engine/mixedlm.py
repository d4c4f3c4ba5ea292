"""The only module that talks to statsmodels MixedLM.

How lme4's random terms translate to statsmodels (``MixedLM(endog, exog, groups,
exog_re, exog_vc)``; we hand it arrays, never formulas):

==============================================  ===============================================
lme4                                            statsmodels MixedLM
==============================================  ===============================================
``(1 | g)``                                     ``groups=g``, ``exog_re`` = column of ones
``(1 + x | g)``, ``(x | g)``                    ``groups=g``, ``exog_re`` = [1, x] (unstructured)
``(0 + x | g)``                                 ``groups=g``, ``exog_re`` = [x]
``(1 | g) + (0 + x | g)``, ``(x || g)``         ``groups=g``, ``exog_re`` = [1]; variance
                                                component "x" with matrix [x] in each group
``(1 | a/b)`` = ``(1 | a) + (1 | b:a)``         ``groups=a``; variance component "b:a" whose
                                                matrix in group a has one indicator column per
                                                level of b within a
``(x | b:a)`` with a correlated 2x2 block       not expressible (statsmodels #8123): only
                                                one-column terms can be variance components
``(1 | a) + (1 | b)`` crossed                   one group holding every row; each factor a
                                                variance component with one dense indicator
                                                column per level (memory grows as rows x levels)
==============================================  ===============================================

statsmodels' own "converged" flag cannot be trusted on textbook models, and its
optimizers differ in where they stop (field notes). So the fit is started at the
optimum of our profiled deviance (:mod:`mlm.pls`), where MixedLM confirms it in a step or
two; its answer is then compared with that optimum and the better of the two is kept.
Its warnings are collected and summarised in one message of ours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mlm.errors import FitError

__all__ = ["statsmodels_layout", "fit_statsmodels", "Layout"]

# Above this many dense indicator entries (rows x levels) a crossed design is not
# handed to statsmodels: it would need gigabytes (statsmodels #6749).
MAX_DENSE_CROSSED = 20_000_000


@dataclass(frozen=True)
class Layout:
    """How one design maps onto MixedLM's arguments.

    Attributes
    ----------
    top : str or None
        The grouping factor used as ``groups`` (None: one group holding every row).
    re_term : int or None
        Index of the block that becomes ``exog_re``.
    vc_terms : tuple of int
        Indices of the blocks that become variance components.
    """

    top: str | None
    re_term: int | None
    vc_terms: tuple


def _nested_in(inner_codes, outer_codes) -> bool:
    pairs = np.unique(np.stack([inner_codes, outer_codes], axis=1), axis=0)
    return len(pairs) == len(np.unique(inner_codes))


def statsmodels_layout(design):
    """Map a design onto MixedLM's arguments, or say why it cannot be.

    Returns
    -------
    (Layout or None, str)
        The layout, or None and the reason in words.
    """
    blocks = design.blocks
    names = list(dict.fromkeys(b.group_name for b in blocks))
    first = {name: next(b for b in blocks if b.group_name == name) for name in names}
    for top in sorted(names, key=lambda g: first[g].n_levels):
        outer = first[top].codes
        if all(_nested_in(first[g].codes, outer) for g in names if g != top):
            on_top = [i for i, b in enumerate(blocks) if b.group_name == top]
            re_term = max(on_top, key=lambda i: blocks[i].k)
            vc = tuple(i for i in range(len(blocks)) if i != re_term)
            wide = [str(blocks[i].term) for i in vc if blocks[i].k > 1]
            if wide:
                return None, (f"statsmodels MixedLM cannot express the correlated term(s) "
                              f"{', '.join(wide)} beside {blocks[re_term].term}: a variance "
                              "component there has one column (statsmodels #8123)")
            return Layout(top=top, re_term=re_term, vc_terms=vc), ""
    wide = [str(b.term) for b in blocks if b.k > 1]
    if wide:
        return None, (f"the grouping factors are crossed and {', '.join(wide)} has more than one "
                      "column; statsmodels MixedLM only takes one-column terms of crossed factors")
    cells = design.nobs * sum(b.n_levels for b in blocks)
    if cells > MAX_DENSE_CROSSED:
        return None, (f"the grouping factors are crossed; statsmodels MixedLM would need a dense "
                      f"{design.nobs} x {sum(b.n_levels for b in blocks)} indicator matrix "
                      f"({cells * 8 / 2**30:.1f} GiB)")
    return Layout(top=None, re_term=None, vc_terms=tuple(range(len(blocks)))), ""


def _vc_matrices(block, top_codes, n_groups):
    """Per top-level group, the block's column spread over the levels present there."""
    z = block.Z[:, 0]
    mats, colnames = [], []
    order = np.argsort(top_codes, kind="stable")
    bounds = np.searchsorted(top_codes[order], np.arange(n_groups + 1))
    for g in range(n_groups):
        rows = order[bounds[g]:bounds[g + 1]]
        levels, inv = np.unique(block.codes[rows], return_inverse=True)
        m = np.zeros((len(rows), len(levels)))
        m[np.arange(len(rows)), inv] = z[rows]
        mats.append(m)
        colnames.append([str(block.levels[lv]) for lv in levels])
    return mats, colnames


def build_model(design, layout):
    """The statsmodels MixedLM for a design, from arrays (MixedLM groups the rows itself)."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    blocks = design.blocks
    if layout.top is None:
        top_codes = np.zeros(design.nobs, dtype=np.intp)
        n_groups = 1
    else:
        top_block = next(b for b in blocks if b.group_name == layout.top)
        top_codes, n_groups = top_block.codes, top_block.n_levels
    exog_re = blocks[layout.re_term].Z if layout.re_term is not None else None
    names, colnames, mats = [], [], []
    for i in layout.vc_terms:
        m, c = _vc_matrices(blocks[i], top_codes, n_groups)
        names.append(f"vc{i}")
        mats.append(m)
        colnames.append(c)
    vc = VCSpec(names, colnames, mats) if names else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLM(design.y, design.X, groups=top_codes, exog_re=exog_re, exog_vc=vc)
    return model


@dataclass(frozen=True)
class StatsmodelsFit:
    """What MixedLM returned, translated to per-term covariances.

    Attributes
    ----------
    covariances : list of ndarray
        Absolute covariance matrix of each random term, in design order.
    sigma2 : float
    loglik : float
        MixedLM's log-likelihood (REML or ML) at its answer.
    converged : bool
        MixedLM's own flag (not trusted on its own; see the module notes).
    method : str
        The optimizer that produced the answer.
    messages : tuple of str
        The warnings statsmodels raised, de-duplicated.
    """

    covariances: list
    sigma2: float
    loglik: float
    converged: bool
    method: str
    messages: tuple


def fit_statsmodels(design, layout, reml=True, start=None,
                    methods=("bfgs", "lbfgs", "powell", "nm")) -> StatsmodelsFit:
    """Fit a design with statsmodels MixedLM.

    Parameters
    ----------
    design : Design
    layout : Layout
        From :func:`statsmodels_layout`.
    reml : bool
    start : (list of ndarray, float), optional
        Start values: per-term covariance matrices and the residual variance (our
        profiled-deviance optimum). Without them MixedLM starts from its defaults.
    methods : sequence of str
        Optimizers tried in turn until one reports convergence; the best answer by
        log-likelihood is kept.
    """
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    model = build_model(design, layout)
    blocks = design.blocks
    start_params = None
    if start is not None:
        covs, sigma2 = start
        cov_re = (covs[layout.re_term] / sigma2 if layout.re_term is not None
                  else np.zeros((0, 0)))
        vcomp = np.array([covs[i][0, 0] / sigma2 for i in layout.vc_terms])
        # A variance of exactly zero is a fixed point of MixedLM's square-root
        # parametrisation; start a hair above it so it can move if it must.
        vcomp = np.maximum(vcomp, 1e-8)
        if cov_re.size:
            cov_re = cov_re + np.eye(cov_re.shape[0]) * 1e-8
        start_params = MixedLMParams.from_components(
            fe_params=np.zeros(design.X.shape[1]), cov_re=cov_re, vcomp=vcomp)
    best = None
    messages = []
    for method in methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = _fit(model, reml, start_params, method)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                messages.append(f"{method}: {type(exc).__name__}: {exc}")
                continue
        messages.extend(f"{method}: {w.message}" for w in caught)
        if best is None or res["llf"] > best["llf"] + 1e-9:
            best = dict(res, method=method)
        if res["converged"]:
            break
    if best is None:
        raise FitError("statsmodels MixedLM failed with every optimizer ("
                       + "; ".join(messages[-3:]) + "). Try engine='pls', or simplify the random part.")
    sigma2 = float(best["scale"])
    covs = [None] * len(blocks)
    if layout.re_term is not None:
        covs[layout.re_term] = sigma2 * np.asarray(best["cov_re"], dtype=float)
    for j, i in enumerate(layout.vc_terms):
        covs[i] = np.array([[sigma2 * float(best["vcomp"][j])]])
    return StatsmodelsFit(covariances=covs, sigma2=sigma2, loglik=float(best["llf"]),
                          converged=bool(best["converged"]), method=best["method"],
                          messages=tuple(dict.fromkeys(messages)))


def _fit(model, reml, start_params, method):
    """One MixedLM optimisation; returns its unscaled covariances, scale and log-likelihood.

    ``MixedLM.fit`` ends by computing the Hessian for statsmodels' own standard errors,
    which this package does not use (ours come from lme4's formulas in mlm.pls); on a
    warm start that is half the time. So the optimisation is run the way ``MixedLM.fit``
    runs it internally (its likelihood, its parametrisation, its optimizer, no Hessian),
    falling back to ``MixedLM.fit`` itself if statsmodels' internals have changed.
    """
    from statsmodels.base.model import LikelihoodModel
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    if start_params is not None:
        try:
            model.reml = reml
            model.cov_pen = None
            model.fe_pen = None
            model._cov_sing = 0
            model._freepat = None
            packed = start_params.get_packed(use_sqrt=model.use_sqrt, has_fe=False)
            rslt = LikelihoodModel.fit(model, start_params=packed, skip_hessian=True,
                                       method=method, disp=False)
            params = MixedLMParams.from_packed(rslt.params, model.k_fe, model.k_re,
                                               use_sqrt=model.use_sqrt, has_fe=False)
            fe_params, _ = model.get_fe_params(params.cov_re, params.vcomp)
            scale = model.get_scale(fe_params, params.cov_re, params.vcomp)
            params.fe_params = fe_params
            llf = model.loglike(params, profile_fe=False)
            return {"cov_re": params.cov_re, "vcomp": params.vcomp, "scale": scale,
                    "llf": float(llf), "converged": bool(rslt.mle_retvals["converged"])}
        except (AttributeError, TypeError, KeyError):
            pass
    res = model.fit(reml=reml, start_params=start_params, method=[method])
    return {"cov_re": res.cov_re_unscaled, "vcomp": res.vcomp / res.scale, "scale": res.scale,
            "llf": float(res.llf), "converged": bool(res.converged)}
