"""The result of a linear fit: lme4's names, pandas objects, a summary laid out like lme4's.

:class:`MixedResult` extends :class:`mlm.results.base.ModelResult`, which it shares with
GLMM fits (:class:`mlm.GLMMResult`); this module supplies the linear fit's numbers and
what only a linear fit has (``sigma``, residuals, t tests with lmerTest's df, intervals).

Every number is computed from one solution of the profiled deviance
(:class:`mlm.engine.pls.PLSSolution`) with lme4's definitions, whichever engine found the
optimum: ``vcov`` is ``sigma^2 (R_X' R_X)^{-1}``, conditional modes and variances are
lme4's ``ranef(condVar = TRUE)``, and under REML the log-likelihood is the REML one
(as ``logLik()`` gives for an lme4 REML fit).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.checks import flag, level as check_level
from mlm.errors import DataError
# _format_p and the level lookups lived here before the base existed: still importable from here
from mlm.results.base import ModelResult, _format_p, _level_positions, _loose_label  # noqa: F401

__all__ = ["MixedResult"]


def _ddf():
    """mlm.inference.ddf, imported on first use (mlm.inference imports this module)."""
    from mlm.inference import ddf

    return ddf


class MixedResult(ModelResult):
    """A fitted linear mixed model.

    Created by :func:`mlm.lmer` (or :func:`mlm.fit_design` from a built design); not meant to be
    built by hand.

    Attributes
    ----------
    design : Design
        The model matrices (reusable for refits).
    problem : PLSProblem
        The profiled deviance as a function of ``theta`` (for profiling and
        inference on the variance parameters).
    solution : PLSSolution
        Estimates at the optimum.
    reml : bool
        Whether REML (lme4's default) or ML was used.
    engine : str
        ``"statsmodels"`` (MixedLM found or confirmed the optimum) or ``"pls"`` (the
        package's own estimator of lme4's criterion).
    converged : bool
        No Newton step along any free variance parameter could lower the -2
        log-likelihood by more than 0.001 (parameters on their bound with the gradient
        pointing outward are not free): checked by us on lme4's criterion, not taken
        from the optimizer's flag (:meth:`mlm.engine.pls.PLSProblem.check_convergence`).
    notes : tuple of str
        Plain-language remarks about the fit (dropped rows, engine choice, boundary).
    ddf : str
        How the tests of fixed effects get their degrees of freedom:
        ``"satterthwaite"`` (default, lmerTest's), ``"kenward-roger"`` (pbkrtest's, REML
        only), ``"residual"`` (n - p) or ``"normal"`` (z-tests); see
        :mod:`mlm.inference.ddf`. :meth:`coef_table` gives the table with another.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> round(fit.loglik, 3)
    -871.814
    >>> fit.fixef.round(3).to_dict()
    {'(Intercept)': 251.405, 'Days': 10.467}
    """

    _SINGULAR_ADVICE = ("its estimates are at the edge of what is possible. Consider dropping the "
                        "term or correlation concerned (see varcorr); the fixed effects can still "
                        "be used.")
    _CONVERGENCE_ADVICE = ("Treat the estimates with caution. Rescale predictors with very "
                           "different ranges, or simplify the random part.")
    _DROPPED_WHERE = "in model variables "

    def __init__(self, design, problem, solution, *, reml, engine, converged, fit_info=None,
                 notes=(), ddf="satterthwaite"):
        self.design = design
        self.problem = problem
        self.solution = solution
        self.reml = bool(reml)
        self.engine = engine
        self.converged = bool(converged)
        self.fit_info = dict(fit_info or {})
        self.notes = tuple(notes)
        self.ddf = _ddf().check_ddf(ddf)
        #: The data frame the fit came from (a reference, never a copy or modified), kept
        #: so that :meth:`update` can refit; ``None`` when fitted from a built design.
        self.data = None

    def update(self, formula: str | None = None, data=None, *, reml: bool | None = None,
               engine: str | None = None) -> "MixedResult":
        """Refit with a changed formula, data or criterion, like lme4's ``update()``.

        Parameters
        ----------
        formula : str, optional
            Written relative to this fit's formula: ``"~ . + x"`` adds ``x``,
            ``". ~ . - x"`` removes it, ``"~ . - (x | g) + (1 | g)"`` simplifies the
            random part (:func:`mlm.update.update_formula`). A full formula replaces it.
        data : pandas.DataFrame, optional
            By default the data this model was fitted to (all its columns, so ``x``
            need not have been in the model).
        reml, engine : optional
            By default as in this fit.

        Returns
        -------
        MixedResult

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.lmer("mathach ~ ses + (1 | school)", mlm.load_dataset("hsb"))
        >>> fit.update("~ . + sector").formula
        'mathach ~ ses + (1 | school) + sector'
        """
        from mlm.fitting import lmer
        from mlm.update import update_formula

        if data is None:
            if self.data is None:
                raise DataError("This fit does not hold its data (it was made by fit_design); "
                                "pass data=... to update().")
            data = self.data
        new = self.formula if formula is None else update_formula(self.formula, formula)
        return lmer(new, data, reml=self.reml if reml is None else reml,
                    engine=self.engine if engine is None else engine, ddf=self.ddf)

    def simulate(self, nsim: int = 1, seed=None) -> pd.DataFrame:
        """New outcomes from the fitted model, lme4's ``simulate()``: see :func:`mlm.simulation.simulate.simulate`.

        Parameters
        ----------
        nsim : int, default 1
            Number of simulated outcome vectors.
        seed : int, optional
            Simulation ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``.

        Returns
        -------
        pandas.DataFrame
            One column per simulation, ``sim_1, sim_2, ...``, indexed like the fitted rows.

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
        >>> fit.simulate(nsim=2, seed=1).shape
        (180, 2)
        """
        from mlm.simulation.simulate import simulate

        return simulate(self, nsim=nsim, seed=seed)

    # --- sizes ---------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula as written."""
        return self.design.formula.formula

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.design.nobs

    @property
    def nobs_dropped(self) -> int:
        """Rows of the data dropped because a model variable was missing."""
        return self.design.nobs_dropped

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance factors, lme4's ``getME(fit, "theta")`` (in formula order)."""
        return self.solution.theta

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, variance parameters and the residual variance."""
        return len(self.solution.beta) + self.problem.n_theta + 1

    @property
    def deviance(self) -> float:
        """-2 log-likelihood: the REML criterion for REML fits, the deviance for ML fits."""
        return self.solution.deviance

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return float(np.sqrt(self.solution.sigma2))

    @property
    def df_method(self) -> str:
        """The same as :attr:`ddf` (kept for code written before Satterthwaite df existed)."""
        return self.ddf

    @cached_property
    def coefficients(self) -> pd.DataFrame:
        """Fixed effects with standard errors, tests and 95% intervals.

        Columns ``estimate, std_error, df, statistic, p_value, conf_low, conf_high``:
        t-tests and t intervals with the df of :attr:`ddf` (Satterthwaite's by default,
        as lmerTest's ``summary``; under Kenward-Roger ``std_error`` is from pbkrtest's
        adjusted covariance). :meth:`coef_table` gives the table with another method.
        """
        return _ddf().coef_table(self, self.ddf)

    def coef_table(self, ddf: str | None = None, level: float = 0.95) -> pd.DataFrame:
        """The fixed-effects table with another df method, without refitting.

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
            By default the fit's own (:attr:`ddf`).
        level : float, default 0.95
            Confidence level of ``conf_low, conf_high``.

        Returns
        -------
        pandas.DataFrame
            Columns as :attr:`coefficients`; ``attrs["ddf"]`` names the method.

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
        >>> fit.coef_table("kenward-roger")["df"].round(1).tolist()
        [17.0, 17.0]
        """
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
            raise DataError(f"level must be a number between 0 and 1 (e.g. 0.95), not {level!r}.")
        if ddf is None and level == 0.95:
            return self.coefficients.copy()
        return _ddf().coef_table(self, ddf, level)

    # --- hooks of ModelResult -------------------------------------------------------------
    @property
    def _beta(self) -> np.ndarray:
        return self.solution.beta

    def _vcov_matrix(self):
        return self.solution.vcov_beta

    def _covariances(self):
        return self.solution.covariances()

    def _residual_row(self):
        return ("Residual", None, None, self.solution.sigma2, self.sigma)

    def _theta_lower(self):
        return self.problem.theta_lower()

    def _effects(self):
        return self.solution.b

    @cached_property
    def _cond_var(self):
        """lme4's postVar, formed on first use: a fit does not pay for it (on InstEval it
        needs the inverse of the 1,128-square remainder block) until ``ranef`` SDs,
        intervals or predictions ask."""
        cv = self.solution.cond_var
        return self.problem.solve(self.theta, cond_var=True).cond_var if cv is None else cv

    def _cond_sds(self):
        return [np.sqrt(np.diagonal(c, axis1=1, axis2=2)) for c in self._cond_var]

    def _shortfall(self) -> str:
        decrement = self.fit_info.get("decrement", float("nan"))
        return f"the -2 log-likelihood could still drop by about {decrement:.3g}."

    # --- fitted values and predictions ----------------------------------------------------
    @cached_property
    def fitted(self) -> pd.Series:
        """Fitted values including the random effects, indexed like the rows used."""
        d = self.design
        mu = d.X @ self.solution.beta
        for b, bb in zip(d.blocks, self.solution.b):
            mu = mu + np.sum(b.Z * bb[b.codes], axis=1)
        return pd.Series(mu, index=d.frame.index, name="fitted")

    @cached_property
    def residuals(self) -> pd.Series:
        """Observed minus fitted (conditional residuals), indexed like the rows used."""
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.design.frame.index,
                         name="residual")

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True,
                interval: str | None = None, level: float = 0.95):
        """Predictions, with or without the random effects, optionally with intervals.

        Parameters
        ----------
        newdata : pandas.DataFrame or another data frame, optional
            Rows to predict for; by default the rows the model was fitted to. Converted
            and checked as the fitting data is (:func:`mlm.frames.as_pandas`).
        include_random : bool, default True
            Add each row's group's conditional modes. A group not seen in fitting
            contributes zero: its prediction is the population (fixed-effects) one,
            as lme4's ``predict(..., allow.new.levels = TRUE)``.

            With ``cwc(x, g)`` or ``gm(x, g)`` in the formula, a group seen in fitting is
            centred at its group mean from the fitting data; a group not seen is centred
            at the mean of ``x`` over the rows of ``newdata`` given for that group (so
            pass all of a new group's rows together, not one at a time).
        interval : {None, "confidence", "prediction"}
            ``None`` (default): a Series of predictions. ``"confidence"``: an interval
            for the population mean at the rows' covariates, ``x' beta`` with variance
            ``x' V x`` (``V`` = :attr:`vcov`; lme4's ``predict(re.form = NA)``).
            ``"prediction"``: an interval for a new observation. Its centre is the
            prediction above; its variance adds to ``x' V x``, for each random-effects
            term, ``z' C_j z`` for a group seen in fitting (``C_j`` the conditional
            covariance of its effects, lme4's ``condVar``) or ``z' T z`` for a group not
            seen (``T`` the term's covariance matrix: a new group's effects are unknown),
            and the residual variance ``sigma^2``. With ``include_random=False`` every
            group is treated as unseen (a marginal prediction interval).
        level : float, default 0.95
            Coverage of the intervals.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            A Series indexed like ``newdata`` when ``interval`` is None; otherwise a
            DataFrame with columns ``fit, lower, upper`` indexed like ``newdata``. Rows
            with a missing predictor get NaN.

        Notes
        -----
        The intervals are normal (``fit -+ z sqrt(var)``) and approximate in the usual
        ways (lme4's FAQ; merTools): the variance parameters are treated as known (their
        uncertainty is ignored), and the covariance between the estimated fixed effects
        and a seen group's conditional modes is ignored, as is the conditional covariance
        between the effects of different terms (``(1 | g) + (0 + x | g)``, or nested
        factors). The prediction interval of a seen group is therefore slightly narrow
        with few groups.

        Examples
        --------
        >>> import mlm, pandas as pd
        >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
        >>> new = pd.DataFrame({"Days": [5, 5], "Subject": [308, 999]})
        >>> fit.predict(new).round(2).tolist()
        [351.99, 303.74]
        >>> fit.predict(new, interval="prediction").round(1)
             fit  lower  upper
        0  352.0  296.2  407.8
        1  303.7  209.1  398.4
        """
        if interval is not None and (not isinstance(interval, str)
                                     or interval not in ("confidence", "prediction")):
            raise DataError(f"interval={interval!r} is not available; use None, 'confidence' "
                            "or 'prediction'.")
        include_random = flag(include_random, "include_random", DataError)
        if interval is not None:
            level = check_level(level, DataError)
        with_groups = include_random and interval != "confidence"
        index, ok, X, blocks = self._new_rows(newdata, with_groups, interval == "prediction")
        mu = np.full(len(ok), np.nan)
        if X is not None:
            fixed = X @ self.solution.beta
            random = np.zeros(len(fixed))
            if include_random and interval != "confidence":
                self._add_seen_groups(blocks, random)
            mu[ok] = fixed + random
        if interval is None:
            return pd.Series(mu, index=index, name="prediction")
        var = np.full(len(ok), np.nan)
        if X is not None:
            var[ok] = self._predict_variance(X, blocks, interval, include_random)
        half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(var)
        return pd.DataFrame({"fit": mu, "lower": mu - half, "upper": mu + half}, index=index)

    def _predict_variance(self, X, blocks, interval, include_random):
        """x'Vx, plus (prediction) z'C_j z or z'Tz per term and sigma^2: see predict()."""
        var = np.einsum("ia,ab,ib->i", X, self.solution.vcov_beta, X)
        if interval == "confidence":
            return var
        for (Z, pos), C, cvb in zip(blocks, self.solution.covariances(), self._cond_var):
            known = (pos >= 0) if include_random else np.zeros(len(pos), dtype=bool)
            var[~known] += np.einsum("ia,ab,ib->i", Z[~known], C, Z[~known])
            var[known] += np.einsum("ia,iab,ib->i", Z[known], cvb[pos[known]], Z[known])
        return var + self.solution.sigma2

    # --- display ----------------------------------------------------------------------------
    def summary(self, robust: str | None = None, style: str = "lme4") -> str:
        """The fit laid out like lme4's ``summary()``, with plain-language notes.

        Parameters
        ----------
        robust : {"CR2", "CR1", "CR0"}, optional
            Adds a table of cluster-robust standard errors beside the model-based ones, as
            HLM prints both (:func:`mlm.robust`).
        style : {"lme4", "hlm"}, default "lme4"
            ``"hlm"`` lays a two-level model out as the HLM program does
            (:func:`mlm.report.hlm_style.hlm_summary`).

        Returns
        -------
        str
            The text; ``print(fit)`` prints the default.
        """
        if not isinstance(style, str) or style != "lme4":
            from mlm.report.hlm_style import styled_summary
            return styled_summary(self, style, robust)
        crit = "REML" if self.reml else "maximum likelihood"
        lines = self._head_lines(f"Linear mixed model fit by {crit}  [mlm, engine: {self.engine}]")
        if self.reml:
            lines.append(f"REML criterion at convergence: {self.deviance:.4f}")
        else:
            lines.extend(self._criteria_lines())
        lines.append("")
        lines.extend(self._scaled_residual_lines(self.residuals.to_numpy() / self.sigma))
        lines.extend(self._random_section_lines())
        lines.append("Fixed effects:")
        z = self.ddf == "normal"
        lines.append(self._fixed_table_text("z" if z else "t", 2, df=not z))
        lines.append(_ddf().method_line(self.ddf))
        if robust is not None:
            from mlm.inference.robust import summary_lines
            lines.append("")
            lines.extend(summary_lines(self, robust))
        if 1 < self.problem.p <= self.CORRELATION_MAX_P:
            lines.append("")
            lines.append("Correlation of fixed effects:")
            lines.append(self._corr_fixef_text())
        elif self.problem.p > self.CORRELATION_MAX_P:
            lines.append("")
            lines.append(f"Correlation of fixed effects not shown: there are {self.problem.p} fixed "
                         f"effects (more than {self.CORRELATION_MAX_P}); use fit.vcov if you need it.")
        lines.extend(self._notes_lines())
        return "\n".join(lines)

    #: Above this many fixed effects the summary leaves their correlations out, as lme4 does.
    CORRELATION_MAX_P = 12

    def _corr_fixef_text(self):
        V = self.solution.vcov_beta
        sd = np.sqrt(np.diag(V))
        C = V / np.outer(sd, sd)
        names = list(self.design.fixed_names)
        short = _abbreviate(names, 6)
        width = max(6, *(len(s) for s in short[:-1])) + 1
        label = max(len(s) for s in short[1:])
        rows = [f"{short[i]:<{label}}" + "".join(f"{C[i, j]:{width}.3f}" for j in range(i))
                for i in range(1, len(names))]
        return " " * label + "".join(f"{s:>{width}}" for s in short[:-1]) + "\n" + "\n".join(rows)

    def explain(self):
        """The fit in plain language: see :func:`mlm.report.explain.explain`."""
        from mlm.report.explain import explain
        return explain(self)

    def __repr__(self) -> str:
        crit = "REML" if self.reml else "ML"
        return (f"<MixedResult {self.formula!r}: {crit}, nobs={self.nobs}, "
                f"groups={self.ngroups}, logLik={self.loglik:.3f}>")

    def _repr_html_(self) -> str:
        return self._html(f"<b>Linear mixed model</b> fit by {'REML' if self.reml else 'ML'}",
                          _ddf().method_line(self.ddf))


def _abbreviate(names, minlength=6):
    """Names cut to ``minlength`` characters, longer where needed to keep them distinct.

    lme4 labels the correlation of fixed effects with R's ``abbreviate()``, which keeps
    names unique; cutting to six characters alone printed ``meanse`` twice for HSB's
    ``meanses`` and ``meanses:cses`` (issue 13).
    """
    out = [n[:minlength] for n in names]
    while True:
        seen = {}
        for i, s in enumerate(out):
            seen.setdefault(s, []).append(i)
        clash = [i for idx in seen.values() if len(idx) > 1 for i in idx]
        grow = [i for i in clash if len(out[i]) < len(names[i])]
        if not grow:
            return out
        for i in grow:
            out[i] = names[i][:len(out[i]) + 1]


def require_fit(fit, what: str = "fit", error=DataError, glmm: bool = False) -> None:
    """Raise ``error`` unless ``fit`` is a fitted model; the one check every tool shares.

    Only linear fits (:class:`MixedResult`) pass unless ``glmm=True``, which a tool that
    also handles :func:`mlm.glmer` fits (:class:`mlm.GLMMResult`) passes.

    Examples
    --------
    >>> import mlm
    >>> from mlm.results.linear import require_fit
    >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"))
    >>> require_fit(fit, glmm=True)
    >>> require_fit(fit)
    Traceback (most recent call last):
    mlm.errors.DataError: fit must be a fitted model from mlm.lmer (a MixedResult), not GLMMResult. ...
    """
    if glmm and isinstance(fit, ModelResult):
        return
    if not isinstance(fit, MixedResult):
        source = "mlm.lmer or mlm.glmer (a MixedResult or GLMMResult)" if glmm else \
            "mlm.lmer (a MixedResult)"
        raise error(f"{what} must be a fitted model from {source}, not "
                    f"{type(fit).__name__}. Fit it first, e.g. fit = mlm.lmer('y ~ x + (1 | g)', data).")
