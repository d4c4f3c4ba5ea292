"""Response families and links of the generalized linear mixed models (:func:`mlm.glmer`).

Each link gives the inverse link and its derivative with R's numerical guards
(``binomial()$linkinv`` keeps probabilities inside ``[eps, 1 - eps]``), so that
probabilities of exactly 0 or 1 never reach a logarithm and results match lme4's.
The family gives the variance function and the conditional log-likelihood of one
observation *including* its normalising constant (the binomial coefficient, ``log y!``),
as R's ``logLik`` does for a glmer fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from mlm._lazy import stats
from mlm.errors import MLMError

__all__ = ["Family", "make_family", "FAMILIES"]

_EPS = np.finfo(float).eps
_PROBIT_THRESH = -special.ndtri(_EPS)  # = -stats.norm.ppf(eps); scipy.stats is imported on use


def _logit_inv(eta):
    mu = special.expit(eta)
    np.maximum(mu, _EPS, out=mu)
    return np.minimum(mu, 1.0 - _EPS, out=mu)


def _logit_mu_eta(eta):
    e = np.exp(-np.abs(eta))
    return np.maximum(e / (1.0 + e) ** 2, _EPS)


def _probit_inv(eta):
    return stats.norm.cdf(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))


def _probit_mu_eta(eta):
    return np.maximum(stats.norm.pdf(eta), _EPS)


def _probit_link(mu):
    return stats.norm.ppf(mu)


def _cloglog_inv(eta):
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1.0 - _EPS)


def _cloglog_mu_eta(eta):
    eta = np.minimum(eta, 700.0)
    return np.maximum(np.exp(eta - np.exp(eta)), _EPS)


def _log_inv(eta):
    return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)


def _log_mu_eta(eta):
    return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)


_LINKS = {
    "logit": (_logit_inv, _logit_mu_eta, special.logit),
    "probit": (_probit_inv, _probit_mu_eta, _probit_link),
    "cloglog": (_cloglog_inv, _cloglog_mu_eta, lambda mu: np.log(-np.log1p(-mu))),
    "log": (_log_inv, _log_mu_eta, np.log),
}

#: Families and the links each allows (the first is the default, as in R).
FAMILIES = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}


@dataclass(frozen=True)
class Family:
    """A response family with its link.

    Attributes
    ----------
    name : str
        ``"binomial"`` or ``"poisson"``.
    link : str
        The link's name (``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"``).
    """

    name: str
    link: str

    def linkinv(self, eta):
        """The mean (probability or rate) for linear predictor ``eta``."""
        return _LINKS[self.link][0](eta)

    def mu_eta(self, eta):
        """d mu / d eta."""
        return _LINKS[self.link][1](eta)

    def linkfun(self, mu):
        """The link: ``eta`` for mean ``mu``."""
        return _LINKS[self.link][2](mu)

    def variance(self, mu):
        """Variance function: ``mu (1 - mu)`` (binomial) or ``mu`` (Poisson)."""
        if self.name == "binomial":
            return mu * (1.0 - mu)
        return mu

    def loglik(self, y, mu, weights, const=None):
        """Log-likelihood of each observation, normalising constants included.

        Binomial: ``y`` is the proportion of successes out of ``weights`` trials, so the
        count is ``weights * y`` (R's convention for ``cbind`` and weighted proportions).
        ``const`` is :meth:`constant` for these ``y`` and ``weights``, if already known.
        """
        if const is None:
            const = self.constant(y, weights)
        # mu is kept inside [eps, 1 - eps] (or >= eps) by the inverse links, so the logs
        # are finite and a zero count times its log is zero (xlogy's rule, at lower cost)
        if self.name == "binomial":
            k = weights * y
            return const + k * np.log(mu) + (weights - k) * np.log1p(-mu)
        return const + weights * (y * np.log(mu) - mu)

    def constant(self, y, weights):
        """The part of each observation's log-likelihood free of ``mu``."""
        if self.name == "binomial":
            k = weights * y
            return special.gammaln(weights + 1) - special.gammaln(k + 1) - special.gammaln(weights - k + 1)
        return -weights * special.gammaln(y + 1)

    def dev_resid(self, y, mu, weights):
        """Squared deviance residuals (R's ``family$dev.resids``)."""
        if self.name == "binomial":
            return 2 * weights * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))
        return 2 * weights * (special.xlogy(y, y / mu) - (y - mu))

    @property
    def label(self) -> str:
        """lme4's words: ``binomial  ( logit )``."""
        return f"{self.name}  ( {self.link} )"


def make_family(family, link=None) -> Family:
    """Check a family and link given by name and return the :class:`Family`."""
    if isinstance(family, Family):
        return family
    if not isinstance(family, str) or family.lower() not in FAMILIES:
        raise MLMError(f"Unknown family {family!r}: glmer fits family='binomial' (0/1 outcomes, "
                       "proportions with trials, cbind(successes, failures)) or family='poisson' "
                       "(counts).")
    name = family.lower()
    allowed = FAMILIES[name]
    if link is None:
        return Family(name, allowed[0])
    if not isinstance(link, str) or link.lower() not in allowed:
        raise MLMError(f"Unknown link {link!r} for the {name} family: use one of "
                       f"{', '.join(repr(a) for a in allowed)}.")
    return Family(name, link.lower())
