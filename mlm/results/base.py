"""What every fitted mixed model shares: :class:`ModelResult`, the base of both families.

:class:`mlm.results.linear.MixedResult` (linear fits, :func:`mlm.lmer`) and
:class:`mlm.glmm.results.GLMMResult` (:func:`mlm.glmer`) extend it (issue 14, item 2: one
base rather than copied code). The base builds, with lme4's names and layout, everything
that reads only the linear design (``self.design``) and a few numbers each family supplies
through the hooks below: sizes, ``fixef``/``vcov``, the variance-components table,
``ranef``/``ranef_sd``/``ranef_table``/``coef``, the rows of a prediction's new data, and
the sections of the summary and of the notebook display.

Hooks a family defines: ``formula``, ``nobs``, ``nobs_dropped``, ``npar``, ``deviance``,
``theta``, ``_beta`` (fixed effects), ``_vcov_matrix()``, ``_covariances()`` (one matrix per
term), ``_effects()`` and ``_cond_sds()`` (one levels x k array per term),
``_theta_lower()``, ``_residual_row()`` (``None`` without a residual variance),
``_shortfall()`` and ``coefficients``.
"""

from __future__ import annotations

import html
import re
from functools import cached_property

import numpy as np
import pandas as pd
import patsy
from mlm._lazy import stats

from mlm.errors import DataError
from mlm.frames import as_pandas, model_columns

__all__ = ["ModelResult"]


def _format_p(p: float) -> str:
    """p-values as R prints them: '<2e-16' below machine precision, 3 significant digits."""
    if p < 2.2e-16:
        return "<2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


class ModelResult:
    """The part of a fitted mixed model that does not depend on its family.

    Not created directly: :func:`mlm.lmer` returns a :class:`mlm.MixedResult` and
    :func:`mlm.glmer` a :class:`mlm.GLMMResult`, both instances of this class.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> isinstance(fit, mlm.results.base.ModelResult), fit.ngroups
    (True, {'Subject': 18})
    """

    #: Closing advice of the singular-fit message (each family words its own).
    _SINGULAR_ADVICE = "consider dropping the term or correlation concerned (see varcorr)."
    #: What follows the shortfall in the not-converged message.
    _CONVERGENCE_ADVICE = ("Treat the estimates with caution; rescale predictors with very "
                           "different ranges or simplify the random part.")
    #: Where the dropped rows had their missing values, as the message says it.
    _DROPPED_WHERE = ""

    def _data_text(self) -> str:
        """lme4's ``Data:`` line: the data set's name when known, else its size."""
        name = getattr(self.data, "attrs", {}).get("name") if self.data is not None else None
        rows = self.nobs + self.nobs_dropped
        return f"{name} ({rows} rows)" if name else f"a data frame of {rows} rows"

    # --- sizes and fit criteria -----------------------------------------------------------
    @property
    def ngroups(self) -> dict:
        """Number of levels of each grouping factor: ``{"school": 160}``."""
        return {g: len(lv) for g, lv in self.design.grouping_factors.items()}

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum: the REML log-likelihood for REML fits (as lme4)."""
        return -0.5 * self.deviance

    @property
    def aic(self) -> float:
        """AIC = -2 logLik + 2 npar (under REML from the REML log-likelihood, as lme4's AIC)."""
        return self.deviance + 2 * self.npar

    @property
    def bic(self) -> float:
        """BIC = -2 logLik + log(nobs) npar, with the number of observations (rows) as n, as lme4."""
        return self.deviance + np.log(self.nobs) * self.npar

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom as lme4 prints them: ``nobs - npar``."""
        return self.nobs - self.npar

    # --- fixed effects ---------------------------------------------------------------------
    @cached_property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, indexed by term (lme4's names)."""
        return pd.Series(self._beta, index=pd.Index(self.design.fixed_names, name="term"),
                         name="estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects (lme4's ``vcov``)."""
        idx = pd.Index(self.design.fixed_names, name="term")
        return pd.DataFrame(self._vcov_matrix(), index=idx, columns=idx.rename(None))

    def _wald_table(self, level: float) -> pd.DataFrame:
        """Estimates, SEs from :attr:`vcov`, Wald z tests and intervals (df infinite)."""
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        z = self._beta / se
        q = stats.norm.ppf(0.5 + level / 2)
        return pd.DataFrame({"estimate": self._beta, "std_error": se, "df": np.inf, "statistic": z,
                             "p_value": 2 * stats.norm.sf(np.abs(z)),
                             "conf_low": self._beta - q * se, "conf_high": self._beta + q * se},
                            index=self.fixef.index)

    # --- variance components and random effects ----------------------------------------------
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
        covariance row ``vcov`` is the covariance and ``sdcor`` the correlation. A linear
        fit ends with the residual row; a GLMM has none. Variances are on their own scale
        (not statsmodels' scaled parameters).
        """
        rows = []
        labels = self._term_labels()
        covs = self._covariances()
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
        residual = self._residual_row()
        if residual is not None:
            rows.append(residual)
        # from columns, not rows: pandas infers a row list's types row by row (twice the
        # time, and bootstrap statistics read varcorr a thousand times)
        cols = list(zip(*rows))
        return pd.DataFrame({"grp": list(cols[0]), "var1": list(cols[1]), "var2": list(cols[2]),
                             "vcov": np.array(cols[3], dtype=float),
                             "sdcor": np.array(cols[4], dtype=float)})

    @cached_property
    def singular(self) -> bool:
        """True when a variance is (near) zero or a correlation (near) +-1: lme4's ``isSingular``.

        As lme4: some diagonal entry of a relative covariance factor is below 1e-4.
        """
        lower = self._theta_lower()
        diag = np.isfinite(lower)
        return bool(np.any(self.theta[diag] < 1e-4))

    def _ranef_parts(self):
        groups = {}
        for i, b in enumerate(self.design.blocks):
            groups.setdefault(b.group_name, []).append(i)
        return groups

    def _by_factor(self, arrays) -> dict:
        """Per-term arrays (levels x k) as one DataFrame per grouping factor, indexed by level."""
        out = {}
        for g, idx in self._ranef_parts().items():
            levels = self.design.blocks[idx[0]].levels
            parts = [pd.DataFrame(arrays[i], columns=list(self.design.blocks[i].columns))
                     for i in idx]
            frame = pd.concat(parts, axis=1)
            frame.index = pd.Index(levels, name=g)
            out[g] = frame
        return out

    @cached_property
    def ranef(self) -> dict:
        """Conditional modes of the random effects (lme4's ``ranef``).

        A dict: grouping factor -> DataFrame indexed by level, one column per term
        column. Conditional standard deviations are in :attr:`ranef_sd`.
        """
        return self._by_factor(self._effects())

    @cached_property
    def ranef_sd(self) -> dict:
        """Conditional standard deviations of the random effects (lme4's ``condsd``)."""
        return self._by_factor(self._cond_sds())

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

    # --- predictions -------------------------------------------------------------------------
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
        text = self.design.formula.fixed
        return {v for v in self.design.formula.variables if re.search(rf"\b{re.escape(v)}\b", text)}

    def _add_seen_groups(self, blocks, out):
        """Add to ``out`` each row's ``z' b`` for a group seen in fitting (an unseen one: 0)."""
        for (Z, pos), bb in zip(blocks, self._effects()):
            known = pos >= 0
            out[known] += np.sum(Z[known] * bb[pos[known]], axis=1)
        return out

    # --- display: summary sections and messages -----------------------------------------------
    def _head_lines(self, title, *extra):
        """Title, any extra lines (a family), ``Formula:``, ``Data:`` and a blank line."""
        return [title, *extra, f"Formula: {self.formula}", f"   Data: {self._data_text()}", ""]

    def _criteria_lines(self):
        """lme4's AIC / BIC / logLik / deviance / df.resid header and values."""
        return [f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10} {'df.resid':>9}",
                f"{self.aic:10.1f} {self.bic:10.1f} {self.loglik:10.1f} {self.deviance:10.1f} "
                f"{self.df_resid:9d}"]

    @staticmethod
    def _scaled_residual_lines(scaled):
        """lme4's five-number summary of the scaled residuals, then a blank line."""
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
        return ["Scaled residuals:", "".join(f"{h:>9}" for h in ("Min", "1Q", "Median", "3Q", "Max")),
                "".join(f"{v:9.4f}" for v in q), ""]

    def _random_section_lines(self):
        """``Random effects:``, lme4's table, the ``Number of obs`` line and a blank line."""
        groups = "; ".join(f"{g}, {n}" for g, n in sorted(self.ngroups.items(), key=lambda kv: -kv[1]))
        return ["Random effects:", *self._random_effects_lines(),
                f"Number of obs: {self.nobs}, groups:  {groups}", ""]

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

    def _fixed_table_text(self, stat: str, digits: int, df: bool = False, stars: bool = False) -> str:
        """The fixed-effects table: Estimate, Std. Error, [df], ``stat`` value, Pr(>|stat|), [stars]."""
        co = self.coefficients
        cols = {"Estimate": co["estimate"].map(lambda v: f"{v:.4f}"),
                "Std. Error": co["std_error"].map(lambda v: f"{v:.4f}")}
        if df:
            cols["df"] = co["df"].map(lambda v: f"{v:.2f}")
        cols[f"{stat} value"] = co["statistic"].map(lambda v: f"{v:.{digits}f}")
        cols[f"Pr(>|{stat}|)"] = co["p_value"].map(_format_p)
        if stars:
            cols[""] = co["p_value"].map(_stars)
        return pd.DataFrame(cols, index=list(co.index)).to_string()

    def _notes_lines(self):
        """A blank line, ``Notes:`` and the messages as a list (nothing without messages)."""
        notes = self.messages()
        return ["", "Notes:", *(f"- {n}" for n in notes)] if notes else []

    def messages(self) -> list:
        """Plain-language notes and warnings about this fit (also in the summary)."""
        out = list(self.notes)
        if self.nobs_dropped:
            out.append(f"{self.nobs_dropped} row(s) with missing values {self._DROPPED_WHERE}were "
                       f"dropped; {self.nobs} used.")
        if self.singular:
            out.append("Singular fit: a variance is estimated as (nearly) zero or a correlation as "
                       "(nearly) +-1. The data do not support this random-effects structure; "
                       + self._SINGULAR_ADVICE)
        if not self.converged:
            out.append(f"The optimizer did not reach the optimum: {self._shortfall()} "
                       + self._CONVERGENCE_ADVICE)
        return out + self._family_messages()

    def _family_messages(self) -> list:
        """Notes only one family has (none by default)."""
        return []

    def __str__(self) -> str:
        return self.summary()

    def _html(self, head: str, footer: str) -> str:
        """The notebook display: ``head``, random and fixed effects, ``footer``, the notes."""
        head = (f"<p>{head}: <code>{html.escape(self.formula)}</code><br>nobs = {self.nobs}; groups: "
                + ", ".join(f"{html.escape(str(g))} = {n}" for g, n in self.ngroups.items())
                + f"; logLik = {self.loglik:.3f}</p>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.messages())
        return (head + "<p><b>Random effects</b></p>" + self.varcorr.to_html(index=False, na_rep="")
                + "<p><b>Fixed effects</b></p>" + self.coefficients.to_html(float_format="%.4f")
                + f"<p><i>{html.escape(footer)}</i></p>"
                + (f"<ul>{notes}</ul>" if notes else ""))


def _stars(p: float) -> str:
    """R's significance stars."""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


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
