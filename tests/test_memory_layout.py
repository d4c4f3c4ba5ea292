"""What a fit keeps of the rows, checked structurally (issue 16: peak memory at a million rows).

No memory figures are asserted (they depend on the machine and the allocator): the tests
check which arrays of the rows exist and which are views of others. ``y ~ x + (x | g)``
needs the outcome (the caller's column, shared), ``X`` (intercept and ``x``), the group
codes and nothing else of length n: the random-effects columns are ``X``'s, the engine
keeps no copy of them, and a one-factor model builds no sparse ``Z``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.design import group_codes
from mlm.engine.pls import PLSProblem


def _slopes(n_groups: int = 40, per: int = 6, first_id: int = 0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per) + first_id
    x = rng.standard_normal(g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 1, n_groups)[g - first_id] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_engine_keeps_no_copy_of_the_random_columns():
    d = mlm.build_design("y ~ x + (x | g)", _slopes())
    problem = PLSProblem(d.y, d.X, d.pls_terms())
    assert np.shares_memory(d.blocks[0].Z, d.X)  # Z is X's columns ...
    assert np.shares_memory(problem._Z1, d.X)    # ... and so is the engine's copy of them
    np.testing.assert_array_equal(problem._Z1, d.X[:, :2])


def test_one_factor_fit_builds_no_sparse_z(monkeypatch):
    # One grouping factor: the per-level sums are all the engine needs (lme4's blocks);
    # an (n, G k) sparse matrix would hold three arrays of n k entries.
    def refuse(*args, **kwargs):
        raise AssertionError("a one-factor fit built a sparse Z")

    monkeypatch.setattr(PLSProblem, "_sparse_z", staticmethod(refuse))
    fit = mlm.lmer("y ~ x + (x | g)", _slopes(n_groups=60))
    assert fit.problem.rem is None and not fit.problem.dense
    assert fit.coefficients.shape[0] == 2 and fit.ranef["g"].shape == (60, 2)


def test_random_columns_held_by_x_are_not_built_again(monkeypatch):
    # On the column path, (x | g) beside y ~ x reads X's columns by name: no second
    # matrix of the rows is built (and then compared and thrown away).
    import mlm.design as design_mod

    built = []
    real = design_mod.build_matrix

    def spy(info, *args, **kwargs):
        built.append(tuple(info.column_names))
        return real(info, *args, **kwargs)

    monkeypatch.setattr(design_mod, "build_matrix", spy)
    d = mlm.build_design("y ~ x + (x | g)", _slopes())
    assert built == [("Intercept", "x")]  # X only
    assert np.shares_memory(d.blocks[0].Z, d.X)


def test_random_columns_built_only_when_x_lacks_them():
    # (z | g) beside y ~ x: Z's z column is not in X, so Z is built (and is not a view).
    data = _slopes().assign(z=lambda d: d["x"] ** 2)
    d = mlm.build_design("y ~ x + (z | g)", data)
    assert not np.shares_memory(d.blocks[0].Z, d.X)
    np.testing.assert_array_equal(d.blocks[0].Z, np.column_stack([np.ones(len(data)), data["z"]]))


@pytest.mark.parametrize("first_id, drop", [(0, None), (7, None), (0, 3), (-5, 10)],
                         ids=["0..G-1", "offset", "gap", "negative-with-gap"])
def test_integer_ids_give_fresh_writable_codes(first_id, drop):
    # np.bincount copies a read-only array at every call, and a column of the caller's
    # frame is read-only under pandas' copy-on-write: the codes must be our own array.
    data = _slopes(first_id=first_id)
    if drop is not None:
        data = data[data["g"] != drop + first_id].reset_index(drop=True)
    codes, levels = group_codes(data, ["g"])
    column = data["g"].to_numpy()
    assert codes.dtype == np.intp and codes.flags.writeable and codes.flags.c_contiguous
    assert not np.shares_memory(codes, column)
    # the codes number the sorted distinct ids 0, 1, 2, ... (what pandas.factorize says)
    want, uniques = pd.factorize(column, sort=True)
    np.testing.assert_array_equal(codes, want)
    np.testing.assert_array_equal(levels.to_numpy(), uniques)
    assert levels.dtype == column.dtype


def test_fit_leaves_the_callers_frame_alone():
    data = _slopes()
    before = data.copy(deep=True)
    fit = mlm.lmer("y ~ x + (x | g)", data)
    fit.coefficients, fit.ranef, fit.fitted, fit.residuals
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("formula", ["y ~ x + (x | g)", "y ~ x + (0 + x | g)", "y ~ x + (1 | g)",
                                     "y ~ x + (x | g) + (1 | h)"])
def test_per_level_sums_formed_in_place_are_the_definitions(formula):
    # The engine skips the intercept's products (1.0 * v is v) and, with one factor,
    # writes the outcome's last product over the shifted outcome: the sums must still be
    # sum over the rows of each level of Z1[:, a] Z1[:, c], Z1[:, a] X[:, j] and
    # Z1[:, a] (y - X beta_shift), and the outcome passed in must be left alone.
    data = _slopes(n_groups=30).assign(h=lambda d: np.arange(len(d)) % 7)
    d = mlm.build_design(formula, data)
    y = np.array(d.y)  # writable, so that a write into it would not fail silently
    y_before = y.copy()
    problem = PLSProblem(y, d.X, d.pls_terms())
    np.testing.assert_array_equal(y, y_before)
    Z1, codes, G = problem._Z1, problem._codes1, problem.G1
    onehot = np.zeros((G, len(codes)))
    onehot[codes, np.arange(len(codes))] = 1.0
    shifted = y_before - d.X @ problem.beta_shift
    tol = dict(rtol=1e-12, atol=1e-12)  # sums of a few rows: rounding only
    np.testing.assert_allclose(problem.Mc, np.einsum("gi,ia,ic->acg", onehot, Z1, Z1), **tol)
    np.testing.assert_allclose(problem.ZXc, np.einsum("gi,ia,ij->ajg", onehot, Z1, d.X), **tol)
    np.testing.assert_allclose(problem.Zyc, np.einsum("gi,ia,i->ag", onehot, Z1, shifted), **tol)
