"""Overdispersion of a Poisson or binomial-count GLMM: performance's ``check_overdispersion``.

A Poisson model fixes the variance at the mean, a binomial one at n p (1 - p); counts
that vary more (overdispersion) make standard errors too small. The test (Gelman & Hill
2007, p. 115; as R's ``performance::check_overdispersion`` for glmer fits) sums the
squared Pearson residuals and compares the sum with a chi-square distribution on the
residual degrees of freedom, ``nobs - (fixed effects + covariance parameters)``. A ratio
near 1 is what the model expects; well above 1 (and a small p-value) is overdispersion.
It is approximate for a GLMM (the random effects use up some of the variation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.errors import DataError
from mlm.results.linear import require_fit

__all__ = ["check_overdispersion", "OverdispersionTest"]

#: performance prints "Overdispersion detected." when p <= 0.05.
ALPHA = 0.05


@dataclass(frozen=True)
class OverdispersionTest:
    """What :func:`check_overdispersion` found.

    Attributes
    ----------
    chisq : float
        Pearson's chi-square: the sum of squared Pearson residuals.
    ratio : float
        ``chisq / df_resid``, the dispersion ratio (1 when the family's variance holds).
    df_resid : int
        Residual degrees of freedom, ``nobs - npar`` (R's ``df.residual`` of a glmer fit).
    p_value : float
        Upper tail of chi-square(``df_resid``) at ``chisq``.
    formula, family : str
        The model tested.
    """

    chisq: float
    ratio: float
    df_resid: int
    p_value: float
    formula: str
    family: str

    @property
    def detected(self) -> bool:
        """True when the p-value is at most 0.05 (performance's rule)."""
        return bool(self.p_value <= ALPHA)

    @property
    def sentence(self) -> str:
        """The verdict in words."""
        if self.detected:
            return (f"Overdispersion detected: the counts vary {self.ratio:.2f} times as much as the "
                    f"{self.family} model expects (p = {_p_text(self.p_value)}), so its standard errors "
                    "are too small. Add an observation-level random effect, e.g. + (1 | obs) with "
                    "obs = one level per row, or use a negative binomial model.")
        return (f"No overdispersion detected (dispersion ratio {self.ratio:.2f}, "
                f"p = {_p_text(self.p_value)}).")

    def to_series(self) -> pd.Series:
        """The numbers as a Series (``chisq, ratio, df_resid, p_value``)."""
        return pd.Series({"chisq": self.chisq, "ratio": self.ratio, "df_resid": float(self.df_resid),
                          "p_value": self.p_value}, name="overdispersion")

    def __str__(self) -> str:
        rows = [("dispersion ratio", f"{self.ratio:.3f}"),
                ("Pearson's Chi-Squared", f"{self.chisq:.3f}"),
                ("residual df", f"{self.df_resid:d}"),
                ("p-value", _p_text(self.p_value))]
        width = max(len(v) for _, v in rows)
        return "\n".join(["# Overdispersion test", ""]
                         + [f"{k:>23} = {v:>{width}}" for k, v in rows] + ["", self.sentence])

    def _repr_html_(self) -> str:
        import html
        return self.to_series().to_frame().to_html() + f"<p>{html.escape(self.sentence)}</p>"


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def check_overdispersion(fit) -> OverdispersionTest:
    """Test a Poisson or binomial-count glmer fit for overdispersion, as R's performance.

    Parameters
    ----------
    fit : GLMMResult
        A :func:`mlm.glmer` fit: Poisson, or binomial with more than one trial per row
        (``cbind(successes, failures)`` or a proportion with ``weights=`` the trials).

    Returns
    -------
    OverdispersionTest
        ``chisq`` (sum of squared Pearson residuals), ``ratio`` (``chisq / df_resid``),
        ``df_resid`` (``nobs`` minus fixed effects and covariance parameters, R's
        ``df.residual``), ``p_value`` (chi-square upper tail), ``detected`` (p <= 0.05) and
        ``sentence``; ``str()`` prints them as ``performance::check_overdispersion`` does,
        with the verdict in words; ``to_series()`` gives the numbers.

    Raises
    ------
    MLMError
        For a linear fit (its residual variance is estimated: there is nothing to test),
        for a binary (0/1, one trial per row) outcome (a Bernoulli variance cannot exceed
        p (1 - p): overdispersion is not identifiable; performance refuses such glm fits),
        or for anything that is not a fitted model.

    Notes
    -----
    performance 0.10.2 computes the statistic for a 0/1 glmer fit anyway (its Bernoulli
    check looks at glm objects only); the number means nothing there, so mlm refuses.
    The test is approximate for mixed models: the random effects absorb some variation,
    so a ratio well below 1 is common and harmless.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.glmer("incidence ~ period + offset(log(size)) + (1 | herd)",
    ...                 mlm.load_dataset("cbpp"), family="poisson")
    >>> test = mlm.check_overdispersion(fit)
    >>> round(test.chisq, 2), test.df_resid, round(test.p_value, 2), test.detected
    (57.05, 51, 0.26, False)
    >>> print(test.sentence)
    No overdispersion detected (dispersion ratio 1.12, p = 0.260).
    """
    from mlm.glmm.results import GLMMResult

    require_fit(fit, "check_overdispersion()'s argument", glmm=True)
    if not isinstance(fit, GLMMResult):
        raise DataError("check_overdispersion() tests a Poisson or binomial glmer fit; this is a "
                        "linear model (mlm.lmer), whose residual variance is estimated from the data, "
                        "so there is no fixed variance to exceed. For counts or successes out of "
                        "trials fit mlm.glmer(..., family='poisson' or 'binomial') first.")
    fam = fit.family
    if fam.name == "binomial" and np.all(fit.gdesign.weights == 1):
        raise DataError(
            f"check_overdispersion() cannot test a binary (0/1) outcome: '{fit.formula}' has one trial "
            "per row (Bernoulli), whose variance p (1 - p) is fixed by its mean, so overdispersion "
            "cannot be seen in it (performance refuses Bernoulli models too). It applies to "
            "Poisson counts and to binomial counts out of several trials, "
            "cbind(successes, failures) ~ ...")
    r = fit.residuals("pearson").to_numpy()
    chisq = float(np.sum(r ** 2))
    df = int(fit.df_resid)
    if df < 1:
        raise DataError(f"check_overdispersion(): '{fit.formula}' has {fit.nobs} rows and {fit.npar} "
                        "parameters, leaving no residual degrees of freedom to test with.")
    return OverdispersionTest(chisq=chisq, ratio=chisq / df, df_resid=df,
                              p_value=float(stats.chi2.sf(chisq, df)), formula=fit.formula,
                              family=fam.name)
