"""The few distribution functions a fit's tables need, without importing ``scipy.stats``.

``scipy.stats`` builds every distribution class when imported: about half a second and
22 MiB of resident memory beside ``scipy.optimize``, which the engine needs anyway. It
was why the 1,000,000-row benchmark's baseline exceeded the compiled peer's by 17 MiB
(issue 16; 20 MiB less without it), and a fit's tables and summary ask for nothing but
Student's t, the normal and the chi-square distribution. ``scipy.stats`` computes those with the ``scipy.special``
functions used here (``stdtr``, ``stdtrit``, ``ndtr``, ``ndtri``, ``chdtrc``), so the
numbers are the same; the argument handling of its generic methods is copied (invalid
parameters and NaN give NaN, the ends of the support and of [0, 1] give the limits).
``tests/test_distributions.py`` compares the two on a grid of edge cases.

:data:`mlm._lazy.stats` serves ``norm``, ``t`` and ``chi2`` from here. Every other
distribution, every other method (``pdf``, ``rvs``, ...) and any call with ``loc``,
``scale`` or keywords go to ``scipy.stats`` itself, imported then.
"""

from __future__ import annotations

import importlib

import numpy as np

__all__ = ["LightDistribution", "LIGHT"]


def _special():
    # Imported with scipy.optimize, which every fit needs: no extra cost.
    return importlib.import_module("scipy.special")


class LightDistribution:
    """Some methods of one ``scipy.stats`` distribution, computed with ``scipy.special``.

    Parameters
    ----------
    name : str
        The distribution's name in ``scipy.stats`` (other methods are looked up there).
    nshapes : int
        Number of shape parameters (``t``, ``chi2``: the degrees of freedom, > 0).
    support : (float, float)
        The ends of the support.
    methods : dict
        ``"cdf"``, ``"sf"``, ``"ppf"``, ``"isf"`` -> ``f(x, *shapes)`` on arrays of valid
        arguments inside the support (for ``ppf``/``isf``: ``0 < q < 1``).

    Examples
    --------
    >>> from mlm._lazy import stats
    >>> round(float(stats.t.sf(2.0, 10)), 6)
    0.036694
    >>> round(float(stats.norm.ppf(0.975)), 6)
    1.959964
    """

    def __init__(self, name: str, nshapes: int, support: tuple, methods: dict):
        self._name, self._nshapes, self._support, self._methods = name, nshapes, support, methods

    def _scipy(self):
        return getattr(importlib.import_module("scipy.stats"), self._name)

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in self._methods:
            return lambda *args, **kwargs: self._call(attr, args, kwargs)
        return getattr(self._scipy(), attr)

    def __repr__(self) -> str:
        return f"<scipy.stats.{self._name}, served from scipy.special>"

    def _call(self, method, args, kwargs):
        if kwargs or len(args) != 1 + self._nshapes:  # loc, scale or keywords: scipy's own
            return getattr(self._scipy(), method)(*args, **kwargs)
        x, *shapes = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args])
        valid = np.ones(x.shape, dtype=bool)
        for s in shapes:
            valid &= s > 0  # False for NaN: a NaN parameter gives NaN, as in scipy.stats
        lo, hi = self._support
        if method in ("cdf", "sf"):
            inside = valid & (x > lo) & (x < hi)
            at_lo, at_hi = valid & (x <= lo), valid & (x >= hi)
            low, high = (0.0, 1.0) if method == "cdf" else (1.0, 0.0)
        else:
            inside = valid & (x > 0) & (x < 1)
            at_lo, at_hi = valid & (x == 0), valid & (x == 1)
            low, high = (lo, hi) if method == "ppf" else (hi, lo)
        out = np.full(x.shape, np.nan)
        out[at_lo] = low
        out[at_hi] = high
        out[inside] = self._methods[method](x[inside], *[s[inside] for s in shapes])
        return out[()] if out.ndim == 0 else out


def _t_methods():
    return {"cdf": lambda x, df: _special().stdtr(df, x),
            "sf": lambda x, df: _special().stdtr(df, -x),
            "ppf": lambda q, df: _special().stdtrit(df, q),
            "isf": lambda q, df: -_special().stdtrit(df, q)}


def _norm_methods():
    return {"cdf": lambda x: _special().ndtr(x),
            "sf": lambda x: _special().ndtr(-x),
            "ppf": lambda q: _special().ndtri(q),
            "isf": lambda q: -_special().ndtri(q)}


def _chi2_methods():
    return {"cdf": lambda x, df: _special().chdtr(df, x),
            "sf": lambda x, df: _special().chdtrc(df, x)}


#: The distributions served without scipy.stats (as scipy.stats' ``_cdf``, ``_sf``, ...).
LIGHT = {
    "t": LightDistribution("t", 1, (-np.inf, np.inf), _t_methods()),
    "norm": LightDistribution("norm", 0, (-np.inf, np.inf), _norm_methods()),
    "chi2": LightDistribution("chi2", 1, (0.0, np.inf), _chi2_methods()),
}
