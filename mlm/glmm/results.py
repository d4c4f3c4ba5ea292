"""Results of a generalized linear mixed model fit (:func:`mlm.glmer`).

Names are lme4's where they mean the same as for linear fits (``fixef``, ``vcov``,
``varcorr``, ``ranef``, ``coef``, ``loglik``, ...): what does not depend on the family is
built by their shared base, :class:`mlm.results.base.ModelResult`; this module supplies
the GLMM's numbers (PIRLS at the optimum) and what only a GLMM has.
"""

from __future__ import annotations

import html
from functools import cached_property

import numpy as np
import pandas as pd

from mlm.errors import DataError
from mlm.glmm.design import _argument_values, _expression_values
from mlm.results.base import ModelResult

__all__ = ["GLMMResult"]


class GLMMResult(ModelResult):
    """A fitted GLMM: estimates, tests, random effects, predictions and a summary.

    Attributes
    ----------
    gdesign : mlm.glmm.design.GLMMDesign
    problem : mlm.glmm.engine.GLMMProblem
    converged : bool
        No Newton step could lower -2 log-likelihood by more than 1e-3 at the answer.
    fit_info : dict
        Evaluations, largest gradient, the decrement.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("use ~ age + I(age**2) + urban + livch + (1 | district)",
    ...                 mlm.load_dataset("contraception"))
    >>> round(fit.loglik, 2), fit.ngroups
    (-1186.36, {'district': 60})
    >>> fit.odds_ratios.loc["urbanY"].round(2).tolist()
    [2.01, 1.58, 2.55]
    """

    def __init__(self, gdesign, problem, theta, beta, info, data=None):
        self.gdesign = gdesign
        self.design = gdesign.design  # the linear design (read by ModelResult)
        self.problem = problem
        self.family = gdesign.family
        self._theta = np.asarray(theta, dtype=float)
        self._beta = np.asarray(beta, dtype=float)
        self.fit_info = info
        self.converged = bool(info.get("converged", False))
        self.nagq = problem.nagq
        self.data = data
        self.notes = list(info.get("notes", []))
        u, _, eta, F = problem.pirls(self._theta, self._beta, problem._u)
        self._u, self._eta, self._factor = u, eta, F
        self._vcov = problem.vcov_beta(info["x"], info.get("hessian_scaled"), info.get("free"))

    @property
    def success(self):
        """The outcome level modelled as a success (factor or logical outcomes), else None."""
        return self.gdesign.success

    # --- sizes and fit criteria -----------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula as written."""
        return self.gdesign.formula

    @property
    def nobs(self) -> int:
        """Number of observations (rows) used."""
        return self.gdesign.nobs

    @property
    def nobs_dropped(self) -> int:
        """Rows dropped for missing values."""
        return self.gdesign.nobs_dropped

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance factors (lme4's ``getME(fit, "theta")``)."""
        return self._theta

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects and covariance parameters."""
        return self.problem.n_theta + self.problem.p

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (lme4's ``deviance``... for glmer, ``-2 * logLik``).

        The Laplace approximation, or AGQ with ``nagq`` nodes, constants included.
        """
        return float(self.fit_info["deviance"])

    # --- fixed effects ---------------------------------------------------------------------
    def coefficients_at(self, level: float = 0.95) -> pd.DataFrame:
        """The coefficient table (as :attr:`coefficients`) with intervals of another coverage.

        Parameters
        ----------
        level : float, default 0.95
            Confidence level of the Wald intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate, std_error, df, statistic, p_value, conf_low, conf_high``.
        """
        if not 0 < level < 1:
            raise DataError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}.")
        return self._wald_table(level)

    @cached_property
    def coefficients(self) -> pd.DataFrame:
        """Fixed effects (link scale) with standard errors, Wald z tests and 95% intervals.

        Columns as for linear fits: ``estimate, std_error, df, statistic, p_value,
        conf_low, conf_high`` (``df`` infinite: z tests, as lme4's ``summary`` of a glmer fit).
        """
        return self.coefficients_at(0.95)

    def _ratio_table(self, name):
        tab = self.coefficients
        return pd.DataFrame({name: np.exp(tab["estimate"]), "conf_low": np.exp(tab["conf_low"]),
                             "conf_high": np.exp(tab["conf_high"])}, index=tab.index)

    @property
    def odds_ratios(self) -> pd.DataFrame:
        """exp(fixed effects) with 95% Wald intervals (exponentiated ends): a logit model's odds ratios."""
        if self.family.link != "logit":
            raise DataError(f"Odds ratios need the logit link; this model's link is {self.family.link}.")
        return self._ratio_table("odds_ratio")

    @property
    def rate_ratios(self) -> pd.DataFrame:
        """exp(fixed effects) with 95% Wald intervals (exponentiated ends): a log-link model's rate ratios."""
        if self.family.link != "log":
            raise DataError(f"Rate ratios need the log link; this model's link is {self.family.link}.")
        return self._ratio_table("rate_ratio")

    # --- hooks of ModelResult -------------------------------------------------------------
    def _vcov_matrix(self):
        """lme4's Hessian-based ``vcov`` for glmer (NaN where the Hessian is not positive definite)."""
        return np.full((len(self.design.fixed_names),) * 2, np.nan) if self._vcov is None else self._vcov

    def _covariances(self):
        return [T @ T.T for T in self.problem.rs.templates(self._theta)]

    def _residual_row(self):
        return None  # no residual variance in a GLMM's VarCorr

    def _theta_lower(self):
        return self.problem.rs.theta_lower()

    def _effects(self):
        return self.problem.rs.effects(self._theta, self._u)

    def _cond_sds(self):
        """Conditional SDs (lme4's ``condVar``): the diagonal of ``Lambda A^-1 Lambda'``."""
        rs, F = self.problem.rs, self._factor
        blocks = []
        if hasattr(F, "inverse_blocks"):
            Ai = F.inverse_blocks()
            T = rs.template(self._theta)
            full = T @ Ai @ T.T
            for t in range(len(rs.ks)):
                c = slice(rs._cols[t], rs._cols[t + 1])
                blocks.append(np.sqrt(np.diagonal(full[:, c, c], axis1=1, axis2=2)))
        else:
            lam = rs.lam(self._theta).toarray()
            d = np.sqrt(np.diag(lam @ F.inverse() @ lam.T))
            for t, (k, G) in enumerate(zip(rs.ks, rs.n_levels)):
                blocks.append(d[rs.offsets[t]:rs.offsets[t + 1]].reshape(G, k))
        return blocks

    def _shortfall(self) -> str:
        from mlm.glmm.fitting import _shortfall

        return _shortfall(self.fit_info)

    # --- fitted values, residuals, predictions -------------------------------------------------
    @property
    def linear_predictor(self) -> pd.Series:
        """eta = offset + X beta + Z b for the rows used."""
        return pd.Series(self._eta, index=self.gdesign.index, name="eta")

    @property
    def fitted(self) -> pd.Series:
        """Fitted probabilities (binomial) or rates (Poisson), random effects included."""
        return pd.Series(self.family.linkinv(self._eta), index=self.gdesign.index, name="fitted")

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals as R's ``residuals(fit, type)``.

        Parameters
        ----------
        type : {"deviance", "pearson", "response"}, default "deviance"
            The kind of residual, as R's ``residuals.glm``.

        Returns
        -------
        pandas.Series
            Indexed like the fitted rows.
        """
        g = self.gdesign
        mu = self.family.linkinv(self._eta)
        if type == "response":
            r = g.y - mu
        elif type == "pearson":
            r = (g.y - mu) * np.sqrt(g.weights) / np.sqrt(self.family.variance(mu))
        elif type == "deviance":
            r = np.sign(g.y - mu) * np.sqrt(np.maximum(self.family.dev_resid(g.y, mu, g.weights), 0))
        else:
            raise DataError(f"type={type!r}: use 'deviance', 'pearson' or 'response'.")
        return pd.Series(r, index=g.index, name=f"{type} residual")

    def predict(self, newdata=None, type: str = "response", include_random: bool = True,
                offset=None) -> pd.Series:
        """Predicted probabilities or rates (``type="response"``) or linear predictors (``"link"``).

        Parameters
        ----------
        newdata : data frame, optional
            Rows to predict for (default: the rows fitted). A group not seen in fitting
            gets the population value (its random effects are zero), as lme4's
            ``allow.new.levels = TRUE``.
        type : {"response", "link"}
        include_random : bool, default True
            False: the population prediction (lme4's ``re.form = NA``).
        offset : column name or numbers, optional
            The offset for ``newdata`` when the model was fitted with an ``offset=``
            array; offsets written in the formula are evaluated on ``newdata``.

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...                 mlm.load_dataset("cbpp"))
        >>> fit.predict(type="link").round(3).head(2).tolist()
        [-0.809, -1.801]
        """
        if type not in ("response", "link"):
            raise DataError(f"type={type!r}: use 'response' or 'link'.")
        if newdata is None:
            eta = self._eta if include_random else self._eta - self._random_part()
            index = self.gdesign.index
        else:
            index, eta = self._predict_new(newdata, include_random, offset)
        values = eta if type == "link" else self.family.linkinv(eta)
        return pd.Series(values, index=index, name="prediction")

    def _random_part(self):
        return self.problem.rs.linpred(self._theta, self._u)

    def _predict_new(self, newdata, include_random, offset):
        from mlm.frames import as_pandas

        newdata = as_pandas(newdata, "newdata")
        index, ok, X, blocks = self._new_rows(newdata, include_random)
        eta = np.full(len(ok), np.nan)
        if X is None:
            return index, eta
        fixed = X @ self._beta
        if include_random:
            self._add_seen_groups(blocks, fixed)
        off = np.zeros(len(newdata))
        for expr in self.gdesign.offsets:
            off += _expression_values(expr, newdata, "offset")
        if offset is not None:
            off += _argument_values(offset, newdata, "offset")
        elif self.gdesign.offset_arg is not None:
            off += _argument_values(self.gdesign.offset_arg, newdata, "offset")
        elif np.any(self.gdesign.offset != 0) and not self.gdesign.offsets:
            raise DataError("The model was fitted with an offset= array: pass offset= for newdata too.")
        eta[ok] = fixed + off[ok]
        return index, eta

    def simulate(self, nsim: int = 1, seed=None) -> pd.DataFrame:
        """New outcomes from the fitted model, lme4's ``simulate()``.

        New random effects are drawn for every group, then outcomes at the fitted mean: 0/1,
        successes out of the trials, proportions or counts, as the formula gave them (see
        :func:`mlm.simulation.simulate.simulate`).

        Parameters
        ----------
        nsim : int, default 1
            Number of simulated outcome vectors (columns).
        seed : int or numpy.random.SeedSequence, optional
            Seed; the same seed gives the same outcomes, serially or in parallel.

        Returns
        -------
        pandas.DataFrame
            One column per simulation, rows as the fit's.

        Examples
        --------
        >>> import mlm
        >>> fit = mlm.glmer("use ~ urban + (1 | district)", mlm.load_dataset("contraception"))
        >>> fit.simulate(nsim=2, seed=1).shape
        (1934, 2)
        """
        from mlm.simulation.simulate import simulate

        return simulate(self, nsim=nsim, seed=seed)

    # --- display ---------------------------------------------------------------------------
    def summary(self, style: str = "lme4") -> str:
        """The fit laid out like lme4's ``summary()`` of a glmer fit, or as HLM prints it.

        Parameters
        ----------
        style : {"lme4", "hlm"}, default "lme4"
            The layout: lme4's, or HLM2's for a Bernoulli, binomial or Poisson model
            (:mod:`mlm.report.hlm_glmm`).

        Returns
        -------
        str
            The text; ``print(fit)`` prints the default.
        """
        if style != "lme4":
            from mlm.report.hlm_style import styled_summary
            return styled_summary(self, style)
        from mlm.glmm.display import summary_text

        return summary_text(self)

    def explain(self):
        """The fit in plain language (odds or rate ratios): see :func:`mlm.report.explain_glmm.explain_glmm`."""
        from mlm.report.explain_glmm import explain_glmm
        return explain_glmm(self)

    def _family_messages(self) -> list:
        from mlm.glmm.display import family_messages

        return family_messages(self)

    def __repr__(self) -> str:
        return (f"<GLMMResult {self.formula!r}: {self.family.name}({self.family.link}), "
                f"nobs={self.nobs}, groups={self.ngroups}, logLik={self.loglik:.3f}>")

    def _repr_html_(self) -> str:
        from mlm.glmm.display import method

        return self._html(f"<b>Generalized linear mixed model</b> ({html.escape(self.family.label)}) "
                          f"fit by maximum likelihood ({method(self)})",
                          "Wald z tests and intervals (df = inf), as lme4's summary of a glmer fit.")
