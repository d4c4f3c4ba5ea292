"""``mlm._lazy.stats``' t, normal and chi-square functions equal scipy.stats' (mlm._distributions).

The authority is scipy.stats itself: on a grid of ordinary and edge-case arguments
(infinite and NaN values, invalid degrees of freedom, probabilities 0, 1 and outside
[0, 1]) the served functions must give exactly the same numbers, NaNs in the same
places, and the same kind of result (a numpy scalar for scalars, an array for arrays).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as st

from mlm._distributions import LIGHT, LightDistribution
from mlm._lazy import stats

X = np.array([-np.inf, -40.0, -5.0, -1.5, -1e-300, 0.0, 1e-300, 0.3, 1.96, 8.0, 40.0, np.inf, np.nan])
Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.025, 0.5, 0.975, 1 - 1e-12, 1.0, 1.1, np.nan])
DF = np.array([-1.0, 0.0, 1e-3, 0.5, 1.0, 2.5, 30.0, 1e6, np.inf, np.nan])

CASES = [("t", "cdf", X), ("t", "sf", X), ("t", "ppf", Q), ("t", "isf", Q),
         ("norm", "cdf", X), ("norm", "sf", X), ("norm", "ppf", Q), ("norm", "isf", Q),
         ("chi2", "cdf", X), ("chi2", "sf", X)]


@pytest.mark.parametrize("name, method, points", CASES)
def test_served_functions_equal_scipy_stats(name, method, points):
    ours, theirs = getattr(getattr(stats, name), method), getattr(getattr(st, name), method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if name == "norm":
            got, want = ours(points), theirs(points)
        else:
            x, df = np.meshgrid(points, DF)
            got, want = ours(x, df), theirs(x, df)
    np.testing.assert_array_equal(got, want)  # exact, NaN where scipy.stats has NaN


@pytest.mark.parametrize("name, method, args", [("t", "sf", (2.0, 10)), ("t", "ppf", (0.975, 7)),
                                                ("norm", "ppf", (0.975,)), ("chi2", "sf", (3.84, 1))])
def test_scalars_give_numpy_scalars(name, method, args):
    got = getattr(getattr(stats, name), method)(*args)
    want = getattr(getattr(st, name), method)(*args)
    assert type(got) is type(want) and np.ndim(got) == 0
    assert got == want


def test_arrays_broadcast_as_scipy_stats():
    got = stats.t.ppf(0.975, np.array([[3.0], [5.0]]))
    np.testing.assert_array_equal(got, st.t.ppf(0.975, np.array([[3.0], [5.0]])))
    assert got.shape == (2, 1)


def test_loc_scale_keywords_and_other_methods_go_to_scipy_stats():
    assert stats.norm.ppf(0.975, loc=1.0, scale=2.0) == st.norm.ppf(0.975, loc=1.0, scale=2.0)
    assert stats.t.sf(1.0, 5, 0.5) == st.t.sf(1.0, 5, 0.5)  # loc given by position
    assert stats.norm.pdf(0.3) == st.norm.pdf(0.3)
    assert stats.f.sf(3.0, 2, 10) == st.f.sf(3.0, 2, 10)
    assert stats.chi2.ppf(0.95, 3) == st.chi2.ppf(0.95, 3)


def test_only_t_norm_and_chi2_are_served():
    assert set(LIGHT) == {"t", "norm", "chi2"}
    assert all(isinstance(d, LightDistribution) for d in LIGHT.values())
    with pytest.raises(AttributeError):
        stats.t._no_such_thing  # noqa: B018
