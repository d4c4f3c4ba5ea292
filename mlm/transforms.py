"""Centering and scaling inside formulas, computed as R computes them.

R evaluates ``scale(x)`` in ``model.frame`` on the whole variable, before ``na.omit``
drops the rows with a missing value in some other model variable, and ``scale`` divides
by the standard deviation with n - 1 over the non-missing values of ``x``
(``scale.default``). patsy's ``scale``/``standardize`` divide by the SD with n and see
only the rows kept; its ``center`` does not skip missing values. These replacements are
patsy stateful transforms (the mean and SD are memorised, so predictions on new data
use the fitting data's values, as R's ``makepredictcall`` does for ``scale``), and
:mod:`mlm.design` memorises them on every row of the data (issue 11).
"""

from __future__ import annotations

import numpy as np
import patsy

__all__ = ["scale", "standardize", "center", "TRANSFORMS"]


class _Moments:
    """Collect the values of x (chunks), missing values left out."""

    def __init__(self):
        self._chunks = []

    def memorize_chunk(self, x, *args, **kwargs):
        self._chunks.append(np.asarray(x, dtype=float))

    def _values(self):
        x = np.concatenate(self._chunks) if self._chunks else np.empty(0)
        return x.reshape(len(x), -1)


def _mean(x):
    ok = ~np.isnan(x)
    n = ok.sum(axis=0)
    return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan), ok, n


class _Scale(_Moments):
    def memorize_finish(self, center=True, scale=True):
        x = self._values()
        if center is True:
            self.center, ok, n = _mean(x)
        elif center is False:
            self.center, ok, n = np.zeros(x.shape[1]), ~np.isnan(x), (~np.isnan(x)).sum(axis=0)
        else:
            self.center = np.broadcast_to(np.asarray(center, dtype=float), (x.shape[1],))
            ok = ~np.isnan(x)
            n = ok.sum(axis=0)
        if scale is True:
            # R's scale.default: sqrt(sum(v^2) / max(1, n - 1)) of the centred values
            dev = np.where(ok, x - self.center, 0.0)
            self.scale = np.sqrt((dev ** 2).sum(axis=0) / np.maximum(1, n - 1))
        elif scale is False:
            self.scale = np.ones(x.shape[1])
        else:
            self.scale = np.broadcast_to(np.asarray(scale, dtype=float), (x.shape[1],))

    def transform(self, x, center=True, scale=True):
        arr = np.asarray(x, dtype=float)
        out = (arr.reshape(len(arr), -1) - self.center) / self.scale
        return out if arr.ndim > 1 else out[:, 0]


class _Standardize(_Moments):
    def memorize_finish(self, center=True, rescale=True, ddof=0):
        x = self._values()
        mean, ok, n = _mean(x)
        self.center = mean if center else np.zeros(x.shape[1])
        dev = np.where(ok, x - mean, 0.0)
        self.scale = (np.sqrt((dev ** 2).sum(axis=0) / np.maximum(1, n - ddof)) if rescale
                      else np.ones(x.shape[1]))

    def transform(self, x, center=True, rescale=True, ddof=0):
        arr = np.asarray(x, dtype=float)
        out = (arr.reshape(len(arr), -1) - self.center) / self.scale
        return out if arr.ndim > 1 else out[:, 0]


class _Center(_Moments):
    def memorize_finish(self):
        self.center, _, _ = _mean(self._values())

    def transform(self, x):
        arr = np.asarray(x, dtype=float)
        out = arr.reshape(len(arr), -1) - self.center
        return out if arr.ndim > 1 else out[:, 0]


scale = patsy.stateful_transform(_Scale)
scale.__doc__ = """R's ``scale(x, center=TRUE, scale=TRUE)``: minus the mean, divided by the SD
    (n - 1), both over the non-missing values of x in all rows of the data.

    Use inside a formula: ``Reaction ~ scale(Days) + (1 | Subject)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mlm.transforms import scale
    >>> scale(np.array([1.0, 2.0, np.nan, 3.0])).round(6).tolist()
    [-1.0, 0.0, nan, 1.0]
    """
standardize = patsy.stateful_transform(_Standardize)
standardize.__doc__ = """patsy's ``standardize(x, center=True, rescale=True, ddof=0)`` (SD with n - ddof),
    computed like :func:`scale` over the non-missing values of x in all rows of the data."""
center = patsy.stateful_transform(_Center)
center.__doc__ = """x minus its mean over the non-missing values in all rows of the data
    (R: ``scale(x, scale = FALSE)``)."""

#: The formula functions this module provides, for :func:`mlm.design.eval_environment`.
TRANSFORMS = {"scale": scale, "standardize": standardize, "center": center}
