"""The design stage's column path (mlm.design_columns) against patsy's path.

For formulas whose factors are all bare column names, :func:`mlm.build_design` reads
the columns straight into the model matrices instead of evaluating them with patsy
(issue 16). The two paths must agree exactly: the same outcome, fixed and random
matrices (bit for bit), column names and orders, patsy design information (used by
predictions), grouping codes and model frame. Each formula below is built both ways
(``mlm.design.DIRECT_COLUMNS`` switches the column path off) and compared, and the test
checks that the column path was really taken, so the comparison is never vacuous.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
import mlm.design as design_mod
from mlm import design_columns


def _mixed(seed: int = 3, n: int = 240) -> pd.DataFrame:
    """Numbers, integers, text, logical, ordered and unordered categoricals, with a
    categorical level no row uses and missing values in several columns."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(24), n // 24)
    d = pd.DataFrame({
        "y": rng.normal(size=n) + g % 5,
        "x": rng.normal(size=n),
        "z": rng.normal(size=n) * 3 + 1,
        "k": rng.integers(0, 4, size=n),                       # integer predictor
        "txt": rng.choice(["lo", "mid", "hi"], size=n),         # text factor
        "flag": rng.random(n) < 0.4,                           # logical factor
        "cat": pd.Categorical(rng.choice(["b", "a", "c"], size=n),
                              categories=["c", "b", "a", "unused"]),
        "ord": pd.Categorical(rng.choice(["low", "high"], size=n), categories=["low", "high"],
                              ordered=True),
        "g": g,
        "h": np.tile(np.arange(4), n // 4),
        "gt": np.array([f"s{i:02d}" for i in g]),               # text grouping factor
    })
    return d


def _with_missing() -> pd.DataFrame:
    d = _mixed(seed=5)
    d.loc[[3, 17, 40], "x"] = np.nan
    d.loc[[8, 99], "txt"] = None
    d.loc[[11], "y"] = np.nan
    # The only rows holding level "c" are dropped: R's drop.unused.levels removes it.
    d["cat"] = d["cat"].astype(object)
    d.loc[d["cat"] == "c", "x"] = np.nan
    d["cat"] = pd.Categorical(d["cat"], categories=["c", "b", "a", "unused"])
    return d


MIXED = [
    "y ~ x + (1 | g)",
    "y ~ x + z + k + (x | g)",
    "y ~ 0 + x + (1 | g)",
    "y ~ x - 1 + (1 | g)",
    "y ~ txt + (1 | g)",
    "y ~ 0 + txt + (1 | g)",
    "y ~ x + txt + flag + cat + ord + (1 | g)",
    "y ~ x * txt + (1 | g)",
    "y ~ x:txt + (1 | g)",
    "y ~ txt:cat + (1 | g)",
    "y ~ txt * flag + (1 | g)",
    "y ~ x * z + (1 | g)",
    "y ~ x * z * k + (x + z | g)",
    "y ~ z + x:z + x + (1 | g)",
    "y ~ txt * x * z + (1 | g)",
    "y ~ cat * flag + ord + (1 | gt)",
    "y ~ x + (0 + x | g)",
    "y ~ x + (x || g)",
    "y ~ x + (1 + x | g) + (1 | h)",
    "y ~ x + (0 + txt | g)",
    "y ~ x + (txt | g)",
    "y ~ x + (1 | g/h)",
    "y ~ x + (1 | g:h)",
    "y ~ k + (1 + k | gt)",
]

BUNDLED = [
    ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)"),
    ("hsb", "mathach ~ meanses * ses + sector * ses + (ses | school)"),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("scotssec", "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
    ("scotssec", "attain ~ verbal * sex + social + (sex | primary)"),
    ("chem97", "score ~ gcsescore + gender + (1 | lea/school)"),
    ("insteval", "y ~ service + lectage + (1 | s) + (1 | d)"),  # categoricals of integers
]

# Factors patsy must evaluate: these take patsy's path (no column plan).
PATSY_ONLY = [
    "y ~ np.log(z + 10) + (1 | g)",
    "y ~ scale(x) + (1 | g)",
    "y ~ C(k) + (1 | g)",
    "y ~ I(x ** 2) + (1 | g)",
    "y ~ x + (scale(z) | g)",
    "np.exp(y) ~ x + (1 | g)",
]


def _build(formula, data, direct: bool, monkeypatch):
    monkeypatch.setattr(design_mod, "DIRECT_COLUMNS", direct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.build_design(formula, data)


def _assert_same(a, b) -> None:
    """Two designs identical in everything an engine or a prediction reads."""
    np.testing.assert_array_equal(a.y, b.y)
    assert a.X.dtype == b.X.dtype == np.float64
    np.testing.assert_array_equal(a.X, b.X)
    assert a.fixed_names == b.fixed_names
    assert a.x_order == b.x_order
    assert a.x_info.column_names == b.x_info.column_names
    assert [t.name() for t in a.x_info.terms] == [t.name() for t in b.x_info.terms]
    assert a.nobs_dropped == b.nobs_dropped
    assert a.dropped_index.equals(b.dropped_index)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert len(a.blocks) == len(b.blocks)
    for p, q in zip(a.blocks, b.blocks):
        assert p.columns == q.columns and p.group_name == q.group_name
        np.testing.assert_array_equal(p.Z, q.Z)
        np.testing.assert_array_equal(p.codes, q.codes)
        assert p.levels.equals(q.levels)
        assert p.order == q.order
        assert p.design_info.column_names == q.design_info.column_names


def _spy_plan(monkeypatch):
    """Record whether build_design got a column plan (the column path was taken)."""
    taken = []
    real = design_columns.column_plan

    def spy(*args, **kwargs):
        plan = real(*args, **kwargs)
        taken.append(plan is not None)
        return plan

    monkeypatch.setattr(design_mod, "column_plan", spy)
    return taken


@pytest.mark.parametrize("make", [_mixed, _with_missing], ids=["complete", "missing"])
@pytest.mark.parametrize("formula", MIXED)
def test_column_path_equals_patsy_path(formula, make, monkeypatch):
    data = make()
    before = data.copy(deep=True)
    slow = _build(formula, data, False, monkeypatch)
    taken = _spy_plan(monkeypatch)
    fast = _build(formula, data, True, monkeypatch)
    assert taken == [True]
    _assert_same(fast, slow)
    pd.testing.assert_frame_equal(data, before)  # the caller's data untouched


@pytest.mark.parametrize("name, formula", BUNDLED)
def test_column_path_equals_patsy_path_bundled(name, formula, monkeypatch):
    data = mlm.load_dataset(name)
    slow = _build(formula, data, False, monkeypatch)
    taken = _spy_plan(monkeypatch)
    fast = _build(formula, data, True, monkeypatch)
    assert taken == [True]
    _assert_same(fast, slow)


@pytest.mark.parametrize("formula", PATSY_ONLY)
def test_transforms_take_patsy_path(formula, monkeypatch):
    taken = _spy_plan(monkeypatch)
    d = _build(formula, _with_missing(), True, monkeypatch)
    assert taken in ([False], [])  # no plan: patsy evaluated the factors
    assert d.X.shape[0] == d.nobs


def test_nullable_and_arrow_columns_take_the_column_path(monkeypatch):
    # Nullable integers with a missing value, pyarrow text: the numpy twins are read.
    pytest.importorskip("pyarrow")
    base = _mixed(seed=11)
    data = base.assign(k=pd.array(base["k"].where(base.index % 13 != 0), dtype="Int64"),
                       txt=base["txt"].astype("string[pyarrow]"))
    slow = _build("y ~ k + txt + (k | g)", data, False, monkeypatch)
    taken = _spy_plan(monkeypatch)
    fast = _build("y ~ k + txt + (k | g)", data, True, monkeypatch)
    assert taken == [True]
    assert fast.nobs_dropped == 19  # rows 0, 13, ..., 234
    _assert_same(fast, slow)


def test_predictions_from_column_path(monkeypatch):
    # The design information comes from a one-row prototype: predictions on new data
    # (which rebuild X and Z with patsy from it) must be the patsy path's.
    data = _mixed(seed=7)
    formula = "y ~ x * txt + flag + (x | g)"
    new = data.iloc[::7].copy()
    new.loc[new.index[:3], "g"] = 999  # unseen group: population prediction
    fits = {}
    for direct in (False, True):
        monkeypatch.setattr(design_mod, "DIRECT_COLUMNS", direct)
        fits[direct] = mlm.lmer(formula, data)
    np.testing.assert_array_equal(fits[True].fixef.to_numpy(), fits[False].fixef.to_numpy())
    pd.testing.assert_series_equal(fits[True].predict(new),
                                   fits[False].predict(new))


def test_plan_cache_tells_true_from_one():
    # Python's True == 1, but patsy names the columns g[T.True] and g[T.1]: the cache of
    # design information must keep the two apart.
    a = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "f": [True, False, True, False]})
    b = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "f": pd.Categorical([1, 0, 1, 0])})
    names_a = design_columns.column_plan(a, "y ~ f", []).infos["y ~ f"].column_names
    names_b = design_columns.column_plan(b, "y ~ f", []).infos["y ~ f"].column_names
    assert names_a == ["Intercept", "f[T.True]"]
    assert names_b == ["Intercept", "f[T.1]"]


@pytest.mark.parametrize("write", ["loc", "iloc", "column"])
def test_caller_writing_later_leaves_the_design_alone(write):
    # The design shares the caller's numeric columns (no copy of the rows, issue 16);
    # pandas' copy-on-write must make a later write by the caller copy on their side.
    data = _mixed(seed=13)
    d = mlm.build_design("y ~ x + k + (x | g)", data)
    assert np.shares_memory(d.y, data["y"].to_numpy())  # shared, not copied
    y, X, frame = d.y.copy(), d.X.copy(), d.frame.copy()
    if write == "loc":
        data.loc[0, "y"] = -99.0
        data.loc[1, "k"] = 7
    elif write == "iloc":
        data.iloc[0, 0] = -99.0
    else:
        data["y"] += 1.0
    assert data["y"].iloc[0] != y[0]  # the caller's write took effect
    np.testing.assert_array_equal(d.y, y)
    np.testing.assert_array_equal(d.X, X)
    pd.testing.assert_frame_equal(d.frame, frame)


def test_random_columns_held_by_x_are_a_view():
    # (x | g) with x in the fixed part: Z is X's intercept and x columns, not a copy.
    d = mlm.build_design("y ~ x + k + (x | g)", _mixed(seed=17))
    (block,) = d.blocks
    assert block.columns == d.fixed_names[:2] == ("(Intercept)", "x")
    assert np.shares_memory(block.Z, d.X)
    np.testing.assert_array_equal(block.Z, d.X[:, :2])
