"""The result of a fit: lme4's names, pandas objects, a summary laid out like lme4's.

Every number is computed from one solution of the profiled deviance
(:class:`mlm.pls.PLSSolution`) with lme4's definitions, whichever engine found the
optimum: ``vcov`` is ``sigma^2 (R_X' R_X)^{-1}``, conditional modes and variances are
lme4's ``ranef(condVar = TRUE)``, and under REML the log-likelihood is the REML one
(as ``logLik()`` gives for an lme4 REML fit).
"""

from __future__ import annotations

import html
from functools import cached_property

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .checks import flag, level as check_level
from .errors import DataError
from .frames import as_pandas, model_columns

__all__ = ["MixedResult"]


def _ddf():
    """mlm.inference.ddf, imported on first use (mlm.inference imports this module)."""
    from .inference import ddf

    return ddf


def _format_p(p: float) -> str:
    """p-values as R prints them: '<2e-16' below machine precision, 3 significant digits."""
    if p < 2.2e-16:
        return "<2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


class MixedResult:
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
        from the optimizer's flag (:meth:`mlm.pls.PLSProblem.check_convergence`).
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
        from .fitting import lmer
        from .update import update_formula

        if data is None:
            if self.data is None:
                raise DataError("This fit does not hold its data (it was made by fit_design); "
                                "pass data=... to update().")
            data = self.data
        new = self.formula if formula is None else update_formula(self.formula, formula)
        return lmer(new, data, reml=self.reml if reml is None else reml,
                    engine=self.engine if engine is None else engine, ddf=self.ddf)

    def simulate(self, nsim: int = 1, seed=None) -> pd.DataFrame:
        """New outcomes from the fitted model, lme4's ``simulate()``: see :func:`mlm.simulate.simulate`.

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
        >>> fit.simulate(nsim=2, seed=1).shape
        (180, 2)
        """
        from .simulate import simulate

        return simulate(self, nsim=nsim, seed=seed)

    def _data_text(self) -> str:
        """lme4's ``Data:`` line: the data set's name when known, else its size."""
        name = getattr(self.data, "attrs", {}).get("name") if self.data is not None else None
        rows = self.nobs + self.nobs_dropped
        return f"{name} ({rows} rows)" if name else f"a data frame of {rows} rows"

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
    def ngroups(self) -> dict:
        """Number of levels of each grouping factor: ``{"school": 160}``."""
        return {g: len(lv) for g, lv in self.design.grouping_factors.items()}

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance factors, lme4's ``getME(fit, "theta")`` (in formula order)."""
        return self.solution.theta

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, variance parameters and the residual variance."""
        return len(self.solution.beta) + self.problem.n_theta + 1

    # --- likelihood ----------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum: the REML log-likelihood for REML fits (as lme4)."""
        return -0.5 * self.solution.deviance

    @property
    def deviance(self) -> float:
        """-2 log-likelihood: the REML criterion for REML fits, the deviance for ML fits."""
        return self.solution.deviance

    @property
    def aic(self) -> float:
        """AIC = -2 logLik + 2 npar (under REML from the REML log-likelihood, as lme4's AIC)."""
        return self.deviance + 2 * self.npar

    @property
    def bic(self) -> float:
        """BIC = -2 logLik + log(nobs) npar (under REML from the REML log-likelihood)."""
        return self.deviance + np.log(self.nobs) * self.npar

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return float(np.sqrt(self.solution.sigma2))

    # --- fixed effects ---------------------------------------------------------------------
    @cached_property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, indexed by term (lme4's names)."""
        return pd.Series(self.solution.beta, index=pd.Index(self.design.fixed_names, name="term"),
                         name="estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects (lme4's ``vcov``)."""
        idx = pd.Index(self.design.fixed_names, name="term")
        return pd.DataFrame(self.solution.vcov_beta, index=idx, columns=idx.rename(None))

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

    # --- random effects --------------------------------------------------------------------
    def _term_labels(self):
        """lme4's label of each term's group: duplicates become 'g', 'g.1', ..."""
        seen = {}
        labels = []
        for b in self.design.blocks:
            n = seen.get(b.group_name, 0)
            labels.append(b.group_name if n == 0 else f"{b.group_name}.{n}")
            seen[b.group_name] = n + 1
        return labels

    def _lme4_order(self):
        """Terms in lme4's order: by number of levels, largest first (stable)."""
        blocks = self.design.blocks
        return sorted(range(len(blocks)), key=lambda i: -blocks[i].n_levels)

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components, like lme4's ``as.data.frame(VarCorr(fit))``.

        Columns ``grp, var1, var2, vcov, sdcor``: for a variance row ``var2`` is
        missing, ``vcov`` the variance and ``sdcor`` the standard deviation; for a
        covariance row ``vcov`` is the covariance and ``sdcor`` the correlation. The
        last row is the residual. Variances are on their own scale (not statsmodels'
        scaled parameters).
        """
        rows = []
        labels = self._term_labels()
        covs = self.solution.covariances()
        for i in self._lme4_order():
            b = self.design.blocks[i]
            C = covs[i]
            sd = np.sqrt(np.diag(C))
            for a, name in enumerate(b.columns):
                rows.append((labels[i], name, None, C[a, a], sd[a]))
            for a in range(b.k):
                for c in range(a + 1, b.k):
                    corr = C[a, c] / (sd[a] * sd[c]) if sd[a] > 0 and sd[c] > 0 else np.nan
                    rows.append((labels[i], b.columns[a], b.columns[c], C[a, c], corr))
        rows.append(("Residual", None, None, self.solution.sigma2, self.sigma))
        out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        return out

    @cached_property
    def singular(self) -> bool:
        """True when a variance is (near) zero or a correlation (near) +-1: lme4's ``isSingular``.

        As lme4: some diagonal entry of a relative covariance factor is below 1e-4.
        """
        lower = self.problem.theta_lower()
        diag = np.isfinite(lower)
        return bool(np.any(self.theta[diag] < 1e-4))

    def _ranef_parts(self):
        groups = {}
        for i, b in enumerate(self.design.blocks):
            groups.setdefault(b.group_name, []).append(i)
        return groups

    @cached_property
    def ranef(self) -> dict:
        """Conditional modes of the random effects (lme4's ``ranef``).

        A dict: grouping factor -> DataFrame indexed by level, one column per term
        column. Conditional standard deviations are in :attr:`ranef_sd`.
        """
        out = {}
        for g, idx in self._ranef_parts().items():
            levels = self.design.blocks[idx[0]].levels
            parts = [pd.DataFrame(self.solution.b[i], columns=list(self.design.blocks[i].columns))
                     for i in idx]
            frame = pd.concat(parts, axis=1)
            frame.index = pd.Index(levels, name=g)
            out[g] = frame
        return out

    @cached_property
    def ranef_sd(self) -> dict:
        """Conditional standard deviations of the random effects (lme4's ``condsd``)."""
        out = {}
        cv = self.solution.cond_var
        if cv is None:  # refits (bootstrap) skip them until asked
            cv = self.problem.solve(self.theta, cond_var=True).cond_var
        for g, idx in self._ranef_parts().items():
            levels = self.design.blocks[idx[0]].levels
            parts = [pd.DataFrame(np.sqrt(np.diagonal(cv[i], axis1=1, axis2=2)),
                                  columns=list(self.design.blocks[i].columns)) for i in idx]
            frame = pd.concat(parts, axis=1)
            frame.index = pd.Index(levels, name=g)
            out[g] = frame
        return out

    def ranef_table(self) -> pd.DataFrame:
        """All conditional modes in one long table, like lme4's ``as.data.frame(ranef(fit))``.

        Columns ``grpvar, term, grp, condval, condsd``.
        """
        rows = []
        for g, modes in self.ranef.items():
            sds = self.ranef_sd[g]
            for j, term in enumerate(modes.columns):
                rows.append(pd.DataFrame({"grpvar": g, "term": term, "grp": modes.index.astype(str),
                                          "condval": modes.iloc[:, j].to_numpy(),
                                          "condsd": sds.iloc[:, j].to_numpy()}))
        return pd.concat(rows, ignore_index=True)

    @cached_property
    def coef(self) -> dict:
        """Per-group coefficients: fixed effects plus the group's random effects (lme4's ``coef``)."""
        out = {}
        for g, modes in self.ranef.items():
            frame = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(modes), 1)),
                                 index=modes.index, columns=list(self.fixef.index))
            for col in modes.columns:
                if col in frame.columns:
                    frame[col] = frame[col] + modes[col].to_numpy()
                else:
                    frame[col] = modes[col].to_numpy()
            out[g] = frame
        return out

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
                for (Z, pos), bb in zip(blocks, self.solution.b):
                    known = pos >= 0
                    random[known] += np.sum(Z[known] * bb[pos[known]], axis=1)
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
        cv = self.solution.cond_var
        if cv is None:
            cv = self.problem.solve(self.theta, cond_var=True).cond_var
        for (Z, pos), C, cvb in zip(blocks, self.solution.covariances(), cv):
            known = (pos >= 0) if include_random else np.zeros(len(pos), dtype=bool)
            var[~known] += np.einsum("ia,ab,ib->i", Z[~known], C, Z[~known])
            var[known] += np.einsum("ia,iab,ib->i", Z[known], cvb[pos[known]], Z[known])
        return var + self.solution.sigma2

    def _new_rows(self, newdata, with_groups, with_z=False):
        """(index, rows usable, X, [(Z, level position or -1)] per term) for predictions.

        ``with_groups``: the rows' groups are looked up (the grouping columns are needed);
        ``with_z``: the terms' columns are built even so (every group then unseen).
        """
        d = self.design
        if newdata is None:
            blocks = [(b.Z, b.codes) for b in d.blocks]
            return d.frame.index, np.ones(d.nobs, dtype=bool), d.X, blocks
        newdata = as_pandas(newdata, "newdata")
        needed = [v for v in d.formula.variables if v != d.formula.response]
        if with_groups:
            needed_cols = needed
        else:
            group_cols = {c for b in d.blocks for c in b.term.group}
            needed_cols = [v for v in needed if v not in group_cols or v in self._fixed_vars()]
        missing = [c for c in needed_cols if c not in newdata.columns]
        if missing:
            raise DataError(f"newdata lacks the column(s) {', '.join(map(repr, missing))} that the "
                            "model needs for prediction.")
        frame = model_columns(newdata, needed_cols, "newdata")
        for col in frame.columns:
            # patsy compares a categorical's own level set with the fitted one, and new rows
            # may hold only some levels: hand it the values, coded with the fitted levels.
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(object)
        ok = ~frame.isna().any(axis=1).to_numpy()
        # positions, not labels: a MultiIndex or repeated labels must not be realigned
        sub = frame.iloc[np.flatnonzero(ok)].reset_index(drop=True)
        if not len(sub):
            return newdata.index, ok, None, []
        try:
            (X,) = patsy.build_design_matrices([d.x_info], sub, NA_action="raise")
            X = np.asarray(X)[:, list(d.x_order)]
            blocks = []
            if with_groups or with_z:
                for b in d.blocks:
                    (Z,) = patsy.build_design_matrices([b.design_info], sub, NA_action="raise")
                    pos = (_level_positions(sub, b) if with_groups
                           else np.full(len(sub), -1, dtype=np.intp))
                    blocks.append((np.asarray(Z)[:, list(b.order)], pos))
        except patsy.PatsyError as exc:
            raise DataError("newdata cannot be coded like the data the model was fitted to: "
                            f"{exc.message}") from None
        return newdata.index, ok, X, blocks

    def _fixed_vars(self):
        import re
        text = self.design.formula.fixed
        return {v for v in self.design.formula.variables if re.search(rf"\b{re.escape(v)}\b", text)}

    # --- display ----------------------------------------------------------------------------
    def summary(self, robust: str | None = None) -> str:
        """The fit laid out like lme4's ``summary()``, with plain-language notes.

        ``robust="CR2"`` (or ``"CR1"``, ``"CR0"``) adds a table of cluster-robust standard
        errors beside the model-based ones, as HLM prints both (:func:`mlm.robust`).
        """
        lines = []
        crit = "REML" if self.reml else "maximum likelihood"
        lines.append(f"Linear mixed model fit by {crit}  [mlm, engine: {self.engine}]")
        lines.append(f"Formula: {self.formula}")
        lines.append(f"   Data: {self._data_text()}")
        lines.append("")
        if self.reml:
            lines.append(f"REML criterion at convergence: {self.deviance:.4f}")
        else:
            lines.append(f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10} {'df.resid':>9}")
            lines.append(f"{self.aic:10.1f} {self.bic:10.1f} {self.loglik:10.1f} {self.deviance:10.1f} "
                         f"{self.nobs - self.npar:9d}")
        lines.append("")
        scaled = self.residuals.to_numpy() / self.sigma
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
        lines.append("Scaled residuals:")
        lines.append("".join(f"{h:>9}" for h in ("Min", "1Q", "Median", "3Q", "Max")))
        lines.append("".join(f"{v:9.4f}" for v in q))
        lines.append("")
        lines.append("Random effects:")
        lines.extend(self._random_effects_lines())
        groups = "; ".join(f"{g}, {n}" for g, n in sorted(self.ngroups.items(), key=lambda kv: -kv[1]))
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        lines.append("")
        lines.append("Fixed effects:")
        co = self.coefficients
        z = self.ddf == "normal"
        cols = {"Estimate": co["estimate"].map(lambda v: f"{v:.4f}"),
                "Std. Error": co["std_error"].map(lambda v: f"{v:.4f}")}
        if not z:
            cols["df"] = co["df"].map(lambda v: f"{v:.2f}")
        cols["z value" if z else "t value"] = co["statistic"].map(lambda v: f"{v:.2f}")
        cols["Pr(>|z|)" if z else "Pr(>|t|)"] = co["p_value"].map(_format_p)
        lines.append(pd.DataFrame(cols, index=list(co.index)).to_string())
        lines.append(_ddf().method_line(self.ddf))
        if robust is not None:
            from .inference.robust import summary_lines
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
        notes = self.messages()
        if notes:
            lines.append("")
            lines.append("Notes:")
            lines.extend(f"- {n}" for n in notes)
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

    def _random_effects_lines(self):
        """lme4's random-effects table, columns as wide as their longest entry."""
        vc = self.varcorr
        rows, any_corr = [], False
        for grp, sub in vc.groupby("grp", sort=False):
            var_rows = sub[sub["var2"].isna()]
            cov_rows = sub[sub["var2"].notna()]
            names = list(var_rows["var1"])
            for j, (_, r) in enumerate(var_rows.iterrows()):
                name = "" if r["var1"] is None or pd.isna(r["var1"]) else str(r["var1"])
                cs = []
                for a in range(j):
                    m = cov_rows[(cov_rows["var1"] == names[a]) & (cov_rows["var2"] == names[j])]
                    cs.append(f"{float(m['sdcor'].iloc[0]):5.2f}" if len(m) else " " * 5)
                any_corr = any_corr or bool(len(cov_rows))
                rows.append((str(grp) if j == 0 else "", name, f"{r['vcov']:.4f}", f"{r['sdcor']:.4f}",
                             " ".join(cs).rstrip()))
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
             enumerate(("Groups", "Name", "Variance", "Std.Dev."))]
        fmt = lambda g, n, v, s: f" {g:<{w[0]}} {n:<{w[1]}} {v:>{w[2]}} {s:>{w[3]}}"  # noqa: E731
        out = [fmt("Groups", "Name", "Variance", "Std.Dev.") + ("   Corr" if any_corr else "")]
        out.extend((fmt(*r[:4]) + (f"  {r[4]}" if r[4] else "")).rstrip() for r in rows)
        return out

    def messages(self) -> list:
        """Plain-language notes and warnings about this fit (also in the summary)."""
        out = list(self.notes)
        if self.nobs_dropped:
            out.append(f"{self.nobs_dropped} row(s) with missing values in model variables were "
                       f"dropped; {self.nobs} used.")
        if self.singular:
            out.append("Singular fit: a variance is estimated as (nearly) zero or a correlation as "
                       "(nearly) +-1. The data do not support this random-effects structure; its "
                       "estimates are at the edge of what is possible. Consider dropping the term "
                       "or correlation concerned (see varcorr); the fixed effects can still be used.")
        if not self.converged:
            out.append("The optimizer did not reach the optimum: the -2 log-likelihood could "
                       f"still drop by about {self.fit_info.get('decrement', float('nan')):.3g}. Treat "
                       "the estimates with caution. Rescale predictors with very different ranges, "
                       "or simplify the random part.")
        return out

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        crit = "REML" if self.reml else "ML"
        return (f"<MixedResult {self.formula!r}: {crit}, nobs={self.nobs}, "
                f"groups={self.ngroups}, logLik={self.loglik:.3f}>")

    def _repr_html_(self) -> str:
        head = (f"<p><b>Linear mixed model</b> fit by {'REML' if self.reml else 'ML'}: "
                f"<code>{html.escape(self.formula)}</code><br>nobs = {self.nobs}; groups: "
                + ", ".join(f"{html.escape(str(g))} = {n}" for g, n in self.ngroups.items())
                + f"; logLik = {self.loglik:.3f}</p>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.messages())
        return (head + "<p><b>Random effects</b></p>" + self.varcorr.to_html(index=False, na_rep="")
                + "<p><b>Fixed effects</b></p>" + self.coefficients.to_html(float_format="%.4f")
                + f"<p><i>{html.escape(_ddf().method_line(self.ddf))}</i></p>"
                + (f"<ul>{notes}</ul>" if notes else ""))


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


def require_fit(fit, what: str = "fit", error=DataError) -> None:
    """Raise ``error`` unless ``fit`` is a fitted model; the one check every tool shares."""
    if not isinstance(fit, MixedResult):
        raise error(f"{what} must be a fitted model from mlm.lmer (a MixedResult), not "
                    f"{type(fit).__name__}. Fit it first, e.g. fit = mlm.lmer('y ~ x + (1 | g)', data).")


def _level_positions(frame: pd.DataFrame, block) -> np.ndarray:
    """Position of each row's group among the fitted levels (-1 for an unseen group)."""
    cols = list(block.term.group)
    if len(cols) == 1:
        labels = frame[cols[0]].astype(str).to_numpy()
    else:
        labels = frame[cols].astype(str).agg(":".join, axis=1).to_numpy()
    lookup = {str(lv): i for i, lv in enumerate(block.levels)}
    # A numeric group id read back as float (e.g. a column with a NaN) prints as '308.0'.
    loose = {}
    for i, lv in enumerate(block.levels):
        loose.setdefault(_loose_label(str(lv)), i)
    return np.array([lookup.get(lab, loose.get(_loose_label(lab), -1)) for lab in labels],
                    dtype=np.intp)


def _loose_label(label: str) -> str:
    """A group label with integral numbers written as integers: '308.0' -> '308'."""
    parts = []
    for piece in label.split(":"):
        try:
            value = float(piece)
        except ValueError:
            parts.append(piece)
            continue
        parts.append(str(int(value)) if value.is_integer() else piece)
    return ":".join(parts)
