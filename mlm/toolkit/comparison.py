"""Comparing models: a multilevel model against OLS, and nested multilevel models.

:func:`compare_ols` answers the first question a reader of a multilevel analysis asks:
what would ordinary least squares have said, and what does ignoring the grouping cost?
It lays the OLS and multilevel estimates side by side, tests whether the OLS residuals
differ between groups, tests the random part against the linear model with the
boundary-corrected likelihood-ratio test (Stata's ``LR test vs. linear model``), and says
in words what the numbers mean.

:func:`compare` is lme4's ``anova(m0, m1, ...)``: likelihood-ratio tests of nested
models, refitted with maximum likelihood as lme4 does.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.errors import MLMError
from mlm.results.linear import require_fit

__all__ = ["OLSComparison", "compare_ols", "compare", "ComparisonError", "RefitWarning"]


class ComparisonError(MLMError, ValueError):
    """Models that cannot be compared as asked (different data, too few models, not fits)."""


class RefitWarning(UserWarning):
    """REML fits were refitted with maximum likelihood before being compared (as lme4 does)."""


# --------------------------------------------------------------------------- helpers
def _check_fit(fit, what="fit", glmm=False):
    require_fit(fit, what, ComparisonError, glmm=glmm)


def _is_glmm(fit) -> bool:
    from mlm.glmm.results import GLMMResult

    return isinstance(fit, GLMMResult)


def _ml_fit(fit):
    """The fit itself when it is ML, otherwise the same design refitted with ML."""
    if not fit.reml:
        return fit
    from mlm.fitting import ENGINES, fit_design
    engine = fit.engine if fit.engine in ENGINES else "auto"
    return fit_design(fit.design, reml=False, engine=engine)


def _ols(y, X):
    """Least squares: estimates, standard errors (sigma^2 = RSS / (n - p)), residuals, ML logLik."""
    n, p = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    rss = float(resid @ resid)
    s2 = rss / (n - p)
    xtx_inv = np.linalg.pinv(X.T @ X)
    se = np.sqrt(s2 * np.diag(xtx_inv))
    loglik = -0.5 * n * (np.log(2 * np.pi) + np.log(rss / n) + 1.0)
    return beta, se, resid, loglik


def _oneway_anova(values, codes, n_groups):
    """One-way ANOVA of ``values`` by integer group ``codes``: (F, df1, df2, p)."""
    n = len(values)
    counts = np.bincount(codes, minlength=n_groups)
    sums = np.bincount(codes, weights=values, minlength=n_groups)
    used = counts > 0
    means = np.zeros(n_groups)
    means[used] = sums[used] / counts[used]
    grand = values.mean()
    ss_between = float(np.sum(counts[used] * (means[used] - grand) ** 2))
    ss_within = float(np.sum((values - means[codes]) ** 2))
    k = int(used.sum())
    df1, df2 = k - 1, n - k
    F = (ss_between / df1) / (ss_within / df2)
    return {"F": float(F), "df1": int(df1), "df2": int(df2), "p_value": float(stats.f.sf(F, df1, df2))}


def _first_intercept_block(design):
    """The first random term with an intercept column (the top factor's intercept variance)."""
    for i, b in enumerate(design.blocks):
        if "(Intercept)" in b.columns:
            return i, b
    return None, None


def _simple_icc(fit):
    """tau00 / (tau00 + sigma2) for the first factor's intercept variance (NaN without one).

    With random slopes this is the ICC at predictor values of zero; with several factors
    only the first one's intercept variance is in the denominator besides sigma2.
    """
    i, b = _first_intercept_block(fit.design)
    if b is None:
        return float("nan")
    C = fit.solution.covariances()[i]
    tau = float(C[b.columns.index("(Intercept)"), b.columns.index("(Intercept)")])
    return tau / (tau + fit.solution.sigma2)


def _group_level_columns(design, codes, n_groups):
    """Names of the fixed columns (intercept excluded) constant within every group."""
    counts = np.maximum(np.bincount(codes, minlength=n_groups), 1)
    out = []
    for j, name in enumerate(design.fixed_names):
        if name == "(Intercept)":
            continue
        x = design.X[:, j]
        means = np.bincount(codes, weights=x, minlength=n_groups) / counts
        spread = np.max(np.abs(x - means[codes])) if len(x) else 0.0
        if spread <= 1e-10 * max(1.0, float(np.max(np.abs(x)))):
            out.append(name)
    return out


def _fmt_p(p):
    if not np.isfinite(p):
        return "NA"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _side_by_side(fit, prefix, beta, se):
    """Single-level and multilevel estimates and SEs by term, with their ratio ``se_ratio``."""
    co = fit.coefficients
    table = pd.DataFrame({f"{prefix}_estimate": beta, f"{prefix}_std_error": se,
                          "mlm_estimate": co["estimate"].to_numpy(),
                          "mlm_std_error": co["std_error"].to_numpy()},
                         index=pd.Index(fit.design.fixed_names, name="term"))
    table["se_ratio"] = table["mlm_std_error"] / table[f"{prefix}_std_error"]
    return table


def _se_sentences(table, factor, group_level, model, understated):
    """What the SE ratios say: ``understated`` is the sentence for group-level predictors whose
    multilevel SEs are over 10% larger ({factor}, {parts} filled in); ``model`` names the
    single-level model ('OLS', 'GLM')."""
    s = []
    if group_level:
        ratios = table.loc[group_level, "se_ratio"]
        parts = ", ".join(f"{r:.2f} times for {t}" for t, r in ratios.items())
        if (ratios > 1.1).any():
            s.append(understated.format(factor=factor, parts=parts))
        else:
            s.append(f"The standard errors of the {factor}-level predictors barely change: the "
                     f"multilevel ones are {parts}.")
    else:
        s.append(f"The model has no {factor}-level predictors (none is constant within {factor}), "
                 f"whose {model} standard errors would be the ones most understated.")
    level1 = [t for t in table.index if t not in group_level and t != "(Intercept)"]
    if level1:
        r = table.loc[level1, "se_ratio"]
        s.append(f"For predictors that vary within {factor} the ratios are {r.min():.2f} to "
                 f"{r.max():.2f}." if len(r) > 1 else
                 f"For the predictor that varies within {factor} ({level1[0]}) the ratio is "
                 f"{float(r.iloc[0]):.2f}.")
    return s


def _lr_sentence(lr, against, boundary=""):
    """'The likelihood-ratio test favours the multilevel model over OLS (chibar2(01) = ...).'"""
    sig = "favours" if lr["p_value"] < 0.05 else "does not favour"
    return (f"The likelihood-ratio test {sig} the multilevel model over {against} "
            f"({_lr_result(lr)}"
            + ("; conservative with several variance parameters" if lr["conservative"] else boundary)
            + ").")


def _lr_result(lr, conservative=""):
    """'chibar2(01) = 14.01, p < 0.001' (and ``conservative`` appended when it is)."""
    return (f"{lr['distribution']} = {lr['statistic']:.2f}, p {_fmt_p(lr['p_value'])}"
            + (conservative if lr["conservative"] else ""))


def boundary_lr_test(ll_mixed: float, ll_single: float, k: int) -> dict:
    """LR test of ``k`` variance parameters against the single-level model.

    One parameter: its null value 0 is on the boundary and the statistic follows the
    50:50 mixture of chi2(0) and chi2(1) (``chibar2(01)``: half the chi2(1) tail, Self &
    Liang 1987). More: chi2(k), which is conservative (too large a p), as Stata notes.
    """
    stat = float(max(0.0, 2.0 * (ll_mixed - ll_single)))
    if k == 1:
        p = 1.0 if stat <= 1e-8 else 0.5 * float(stats.chi2.sf(stat, 1))
        out = {"statistic": stat, "df": 1, "p_value": p, "distribution": "chibar2(01)",
               "conservative": False}
    else:
        out = {"statistic": stat, "df": k, "p_value": float(stats.chi2.sf(stat, k)),
               "distribution": f"chi2({k})", "conservative": True}
    out.update({"ml_loglik": float(ll_mixed), "ols_loglik": float(ll_single)})
    return out


# --------------------------------------------------------------------------- compare_ols
@dataclass(frozen=True)
class OLSComparison:
    """What ignoring the grouping would have cost: returned by :func:`compare_ols`.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by term: ``ols_estimate, ols_std_error, mlm_estimate, mlm_std_error,
        se_ratio`` (multilevel SE / OLS SE; above 1 means OLS understated the uncertainty).
    residual_anova : dict
        One-way ANOVA of the OLS residuals by the grouping factor: ``F, df1, df2,
        p_value`` (and ``factor``).
    lr_test : dict
        Likelihood-ratio test of the multilevel model (refitted with ML) against the OLS
        model: ``statistic, df, p_value, distribution, conservative``.
    icc : float
        tau00 / (tau00 + sigma2) of the fit, for the first grouping factor's intercept.
    verdict : str
        The numbers in plain sentences.
    factor : str
        The grouping factor used for the ANOVA and the ICC.
    group_level : tuple of str
        Fixed-effect columns constant within groups of ``factor``.
    """

    table: pd.DataFrame = field(repr=False)
    residual_anova: dict
    lr_test: dict
    icc: float
    verdict: str = field(repr=False)
    factor: str = ""
    group_level: tuple = ()
    formula: str = ""

    def __str__(self) -> str:
        a, lr = self.residual_anova, self.lr_test
        lines = [f"Multilevel model versus OLS: {self.formula}", "",
                 self.table.to_string(float_format=lambda v: f"{v:.4f}"), "",
                 f"One-way ANOVA of the OLS residuals by {self.factor}: F({a['df1']}, {a['df2']}) = "
                 f"{a['F']:.3f}, p {_fmt_p(a['p_value'])}",
                 f"LR test vs. linear model: {_lr_result(lr, '  (conservative)')}",
                 f"ICC ({self.factor}): {self.icc:.3f}", "", self.verdict]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        a, lr = self.residual_anova, self.lr_test
        return (f"<p><b>Multilevel model versus OLS</b>: <code>{html.escape(self.formula)}</code></p>"
                + self.table.to_html(float_format="%.4f")
                + "<ul>"
                + f"<li>ANOVA of OLS residuals by {html.escape(self.factor)}: F({a['df1']}, {a['df2']}) "
                f"= {a['F']:.3f}, p {html.escape(_fmt_p(a['p_value']))}</li>"
                + f"<li>LR test vs. linear model: {html.escape(_lr_result(lr, ' (conservative)'))}</li>"
                + f"<li>ICC: {self.icc:.3f}</li></ul>"
                + f"<p>{html.escape(self.verdict)}</p>")


def compare_ols(fit):
    """Compare a multilevel model with the single-level regression that ignores the grouping.

    OLS is fitted by least squares to the same rows and fixed-effects columns
    (``sigma^2 = RSS / (n - p)``, as R's ``lm``). The grouping factor is the first one in
    the formula (for ``(1 | a/b)`` the outer factor ``a``). For a :func:`mlm.glmer` fit the
    single-level model is the GLM with the same family, link, trials and offset (R's
    ``glm``, fitted by statsmodels): see :func:`mlm.toolkit.glm_comparison.compare_glm`.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        From :func:`mlm.lmer` (REML or ML; the likelihood-ratio test always uses an
        ML refit, as REML likelihoods cannot be compared with OLS's) or :func:`mlm.glmer`.

    Returns
    -------
    OLSComparison or GLMComparison
        ``table``, ``residual_anova``, ``lr_test``, ``icc``, ``verdict``; ``str()``
        prints all of it. For a glmer fit a
        :class:`~mlm.toolkit.glm_comparison.GLMComparison` (``table`` with ``glm_*``
        columns, ``lr_test``, ``attenuation``, ``verdict``).

    Notes
    -----
    The LR statistic is ``2 (logLik_ML(multilevel) - logLik(OLS))``. With one variance
    parameter the null value is on the boundary of the parameter space and the statistic
    follows the 50:50 mixture of chi2(0) and chi2(1): p is half the chi2(1) tail (Stata's
    ``chibar2(01)``). With more variance parameters (random slopes, several factors) p
    is taken from chi2(df = number of variance parameters), which is conservative (too
    large), as Stata notes.

    Examples
    --------
    >>> import mlm
    >>> from mlm.toolkit.comparison import compare_ols
    >>> fit = mlm.lmer("mathach ~ ses + meanses + sector + (1 | school)", mlm.load_dataset("hsb"))
    >>> cmp = compare_ols(fit)
    >>> cmp.table["se_ratio"].round(2).to_dict()
    {'(Intercept)': 1.85, 'ses': 0.97, 'meanses': 1.73, 'sector': 1.93}
    >>> round(cmp.lr_test["statistic"], 2), round(cmp.icc, 3)
    (212.76, 0.06)
    """
    _check_fit(fit, glmm=True)
    if _is_glmm(fit):
        from mlm.toolkit.glm_comparison import compare_glm

        return compare_glm(fit)
    d = fit.design
    beta, se, resid, ll_ols = _ols(d.y, d.X)
    table = _side_by_side(fit, "ols", beta, se)

    i, block = _first_intercept_block(d)
    block = block if block is not None else d.blocks[0]
    anova = _oneway_anova(resid, block.codes, block.n_levels)
    anova["factor"] = block.group_name

    ml = _ml_fit(fit)
    lr = boundary_lr_test(float(ml.loglik), float(ll_ols), int(fit.problem.n_theta))
    icc = _simple_icc(fit)
    group_level = _group_level_columns(d, block.codes, block.n_levels)
    verdict = _verdict(table, anova, lr, icc, block.group_name, group_level)
    return OLSComparison(table=table, residual_anova=anova, lr_test=lr, icc=icc, verdict=verdict,
                         factor=block.group_name, group_level=tuple(group_level),
                         formula=fit.formula)


def _verdict(table, anova, lr, icc, factor, group_level):
    s = _se_sentences(table, factor, group_level, "OLS",
                      "OLS understates the standard errors of the {factor}-level predictors: the "
                      "multilevel standard errors are larger ({parts}), so OLS p-values for them "
                      "are too small and their intervals too narrow.")
    if anova["p_value"] < 0.05:
        s.append(f"The OLS residuals differ between {factor} groups (F({anova['df1']}, {anova['df2']}) "
                 f"= {anova['F']:.2f}, p {_fmt_p(anova['p_value'])}): observations in the same "
                 f"group are not independent, which OLS assumes.")
    else:
        s.append(f"The OLS residuals do not differ detectably between {factor} groups "
                 f"(F({anova['df1']}, {anova['df2']}) = {anova['F']:.2f}, p {_fmt_p(anova['p_value'])}).")
    s.append(_lr_sentence(lr, "OLS"))
    if np.isfinite(icc):
        s.append(f"ICC = {icc:.3f}: {100 * icc:.1f}% of the variance left after the predictors "
                 f"lies between {factor} groups, i.e. the residuals of two observations in the same "
                 f"group correlate {icc:.2f}.")
    return " ".join(s)


# --------------------------------------------------------------------------- compare
def compare(*fits, refit: bool = True, names=None):
    """Likelihood-ratio tests of nested models, like lme4's ``anova(m0, m1, ...)``.

    Parameters
    ----------
    *fits : MixedResult or GLMMResult
        Two or more models fitted to the same rows: all from :func:`mlm.lmer` or all
        from :func:`mlm.glmer` (one family, one ``nagq``). glmer fits are maximum
        likelihood and are compared as fitted, as lme4's ``anova`` compares glmer fits.
    refit : bool, default True
        Refit REML fits with maximum likelihood first, as lme4 does by default.
        ``refit=False`` keeps REML likelihoods, which is valid only when all models
        have the same fixed part and differ in their random part; if any model is REML
        and the fixed parts differ, the models are refitted with ML anyway (lme4 would
        compare the REML likelihoods, which is wrong).
    names : list of str, optional
        Row labels, one per model in the order given; default ``"model1"``,
        ``"model2"``, ... by position in the call. The formulas are in
        ``result.attrs["formulas"]``.

    Returns
    -------
    ComparisonTable
        A :class:`pandas.DataFrame` (subclass) that prints formatted like lme4's
        ``anova()``, with a row per model, ordered by number of parameters (as lme4, stable for ties);
        columns ``npar, aic, bic, loglik, deviance, chisq, df, p_value``. ``chisq`` is
        ``2 max(0, logLik - logLik of the previous row)``, ``df`` the difference in
        ``npar`` and ``p_value`` its chi-square tail (NaN when ``df`` is 0), all against
        the previous row. ``attrs["note"]`` says whether models were refitted.

    Raises
    ------
    ComparisonError
        With fewer than two models, something that is not a fit, models fitted to
        different rows (different ``nobs``, outcome values or binomial trials), lmer and
        glmer fits together, or glmer fits of different families or ``nagq``.

    Notes
    -----
    The chi-square p-value for a test of a variance (a null on the boundary) is
    conservative, as in lme4. For glmer fits the log-likelihoods are the Laplace (or
    AGQ) ones with their normalising constants, as lme4's ``logLik``; glmer fits with
    different links of one family are compared as lme4 would (not nested: read AIC/BIC).

    Examples
    --------
    >>> import warnings, mlm
    >>> from mlm.toolkit.comparison import compare
    >>> hsb = mlm.load_dataset("hsb")
    >>> m0 = mlm.lmer("mathach ~ ses + (1 | school)", hsb)
    >>> m1 = mlm.lmer("mathach ~ ses + meanses + (1 | school)", hsb)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     table = compare(m0, m1)
    >>> table[["npar", "chisq", "df"]].round(2)
            npar  chisq   df
    model1     4    NaN  NaN
    model2     5   77.2  1.0
    >>> cbpp = mlm.load_dataset("cbpp")
    >>> c0 = mlm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    >>> c1 = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    >>> compare(c0, c1)[["npar", "chisq", "df"]].round(2)
            npar  chisq   df
    model1     2    NaN  NaN
    model2     5  25.61  3.0
    """
    if len(fits) == 1 and isinstance(fits[0], (list, tuple)):
        fits = tuple(fits[0])
    if len(fits) < 2:
        raise ComparisonError(f"compare() needs at least two fitted models; got {len(fits)}. "
                              "Pass them as compare(m0, m1).")
    for k, f in enumerate(fits):
        _check_fit(f, what=f"Argument {k + 1}", glmm=True)
    if names is None:
        names = [f"model{k + 1}" for k in range(len(fits))]
    names = [str(n) for n in names]
    if len(names) != len(fits) or len(set(names)) != len(names):
        raise ComparisonError(f"names must hold {len(fits)} distinct labels, one per model; got "
                              f"{names!r}.")
    glmm = _check_same_kind(fits, names)
    _check_same_data(fits, names, glmm)
    if glmm:
        note = ("glmer fits compared as fitted: maximum likelihood "
                f"({_glmm_method(fits[0])}), so no refit is needed.")
        links = list(dict.fromkeys(f.family.link for f in fits))
        if len(links) > 1:
            note += (f" The links differ ({', '.join(links)}): the models are not nested, so "
                     "compare their AIC and BIC, not the chi-square test.")
    else:
        fits, note = _ml_or_reml(fits, refit)
    npar = np.array([f.npar for f in fits])
    order = np.argsort(npar, kind="stable")
    rows = []
    for i in order:
        f = fits[i]
        rows.append({"npar": int(f.npar), "aic": f.aic, "bic": f.bic, "loglik": f.loglik,
                     "deviance": -2.0 * f.loglik})
    out = pd.DataFrame(rows, index=pd.Index([names[i] for i in order]))
    ll = out["loglik"].to_numpy()
    chisq = np.r_[np.nan, 2.0 * np.maximum(0.0, np.diff(ll))]
    dfs = np.r_[np.nan, np.diff(out["npar"].to_numpy()).astype(float)]
    with np.errstate(invalid="ignore"):
        p = np.where(dfs == 0, np.nan, stats.chi2.sf(chisq, np.where(dfs > 0, dfs, np.nan)))
    # a model with fewer parameters after one with more (df < 0) cannot occur: sorted by npar
    out["chisq"], out["df"], out["p_value"] = chisq, dfs, p
    from mlm.report.table import ComparisonTable  # here: mlm.report imports this package's modules
    out = ComparisonTable(out)
    out.attrs["note"] = note
    out.attrs["formulas"] = {names[i]: fits[i].formula for i in order}
    return out


def _glmm_method(fit) -> str:
    return ("Laplace approximation" if fit.nagq == 1 else
            f"adaptive Gauss-Hermite quadrature, {fit.nagq} nodes")


def _check_same_kind(fits, names) -> bool:
    """All lmer or all glmer fits, glmer ones of one family and one approximation; True for glmer."""
    kinds = [_is_glmm(f) for f in fits]
    if any(kinds) and not all(kinds):
        which = ", ".join(f"{n}: {'glmer' if g else 'lmer'}" for n, g in zip(names, kinds))
        raise ComparisonError(f"compare() was given both linear (mlm.lmer) and generalized "
                              f"(mlm.glmer) fits ({which}). Their likelihoods are of different "
                              "distributions and cannot be tested against each other; compare "
                              "lmer fits with lmer fits and glmer fits with glmer fits.")
    if not any(kinds):
        return False
    families = [f.family.name for f in fits]
    if len(set(families)) > 1:
        which = ", ".join(f"{n}: {fam}" for n, fam in zip(names, families))
        raise ComparisonError(f"The glmer fits have different families ({which}): a "
                              "likelihood-ratio test needs nested models of one family. Refit "
                              "them with the same family=.")
    nagq = [f.nagq for f in fits]
    if len(set(nagq)) > 1:
        which = ", ".join(f"{n}: nagq={q}" for n, q in zip(names, nagq))
        raise ComparisonError(f"The glmer fits use different approximations of the likelihood "
                              f"({which}); their log-likelihoods differ by the approximation, not "
                              "only by the model. Refit them with the same nagq=.")
    return True


def _outcome(fit, glmm):
    """The outcome the likelihood is of: (values, trials) for glmer fits, (y, None) for lmer."""
    if glmm:
        return fit.gdesign.y, fit.gdesign.weights
    return fit.design.y, None


def _check_same_data(fits, names, glmm):
    nobs = [f.nobs for f in fits]
    if len(set(nobs)) > 1:
        raise ComparisonError("The models were fitted to different numbers of rows ("
                              + ", ".join(f"{n}: {k}" for n, k in zip(names, nobs))
                              + "); likelihoods of different data cannot be compared. Drop rows "
                              "with missing values in any model's variables first, then refit all.")
    y0, w0 = _outcome(fits[0], glmm)
    for n, f in zip(names[1:], fits[1:]):
        y, w = _outcome(f, glmm)
        if not np.array_equal(y, y0):
            diff = int(np.sum(y != y0))
            raise ComparisonError(f"{names[0]} and {n} have the same number of rows ({len(y0)}) but "
                                  f"different outcome values in {diff} of them: they were fitted to "
                                  "different data or outcomes. Refit both to the same rows.")
        if w is not None and not np.array_equal(w, w0):
            diff = int(np.sum(w != w0))
            raise ComparisonError(f"{names[0]} and {n} have different numbers of trials (binomial "
                                  f"weights) in {diff} rows: they were fitted to different data. "
                                  "Refit both with the same cbind() or weights=.")


def _ml_or_reml(fits, refit):
    """lme4's rule for lmer fits: refit REML fits with ML unless REML may be compared."""
    reml = [f.reml for f in fits]
    same_fixed = len({tuple(f.design.fixed_names) for f in fits}) == 1
    if any(reml) and (refit or not same_fixed or not all(reml)):
        why = ("the fixed parts differ, and REML likelihoods of models with different fixed "
               "effects cannot be compared" if not same_fixed else
               "some models were ML and some REML" if not all(reml) else
               "refit=True (lme4's default)")
        note = f"REML fit(s) refitted with maximum likelihood before comparing, because {why}."
        warnings.warn(note, RefitWarning, stacklevel=3)
        return tuple(_ml_fit(f) for f in fits), note
    if all(reml):
        return fits, ("REML likelihoods compared (refit=False; valid because the fixed parts are "
                      "the same).")
    return fits, "Maximum-likelihood fits compared."
