"""Tests of mlm.data: the bundled data sets and their manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mlm
from mlm.errors import DataError, MLMError

MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "datasets" / "manifest.json")
                      .read_text("utf-8"))
NAMES = sorted(MANIFEST)


def test_manifest_lists_the_expected_sets():
    assert {"hsb", "sleepstudy", "pastes", "penicillin", "exam", "chem97", "scotssec",
            "insteval"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_loads_as_described(name):
    entry = MANIFEST[name]
    d = mlm.load_dataset(name)
    assert isinstance(d, pd.DataFrame)
    assert len(d) == entry["rows"]
    assert list(d.columns) == entry["columns"]
    assert isinstance(d.index, pd.RangeIndex) and d.index.start == 0
    for group, n in entry.get("groups", {}).items():
        assert d[group].nunique() == n, group
        assert d[group].notna().all()
    for column, levels in (entry.get("categories") or {}).items():
        assert isinstance(d[column].dtype, pd.CategoricalDtype), column
        assert [str(lv) for lv in d[column].cat.categories] == levels, column
        # every value is one of the manifest's levels: none became NaN on the way
        assert d[column].notna().all(), column


def test_hsb_exactly():
    hsb = mlm.load_dataset("hsb")
    assert list(hsb.columns) == ["school", "minority", "female", "ses", "mathach", "size", "sector",
                                 "pracad", "disclim", "himinty", "meanses"]
    assert hsb.shape == (7185, 11)
    assert hsb["school"].nunique() == 160
    assert pd.api.types.is_numeric_dtype(hsb["mathach"]) and pd.api.types.is_numeric_dtype(hsb["ses"])
    assert set(hsb["sector"].unique()) == {0, 1}
    assert hsb.groupby("school")["sector"].nunique().max() == 1      # a school-level variable


CATEGORY_ORDER = [
    ("exam", "sex", ["F", "M"]),
    ("exam", "schgend", ["mixed", "boys", "girls"]),
    ("exam", "vr", ["bottom 25%", "mid 50%", "top 25%"]),
    ("chem97", "gender", ["M", "F"]),
    ("scotssec", "sex", ["M", "F"]),
    ("pastes", "cask", ["a", "b", "c"]),
    ("insteval", "dept", ["15", "5", "10", "12", "6", "7", "4", "8", "9", "14", "1", "3", "11", "2"]),
]


@pytest.mark.parametrize("name, column, levels", CATEGORY_ORDER,
                         ids=[f"{n}-{c}" for n, c, _ in CATEGORY_ORDER])
def test_category_level_order_is_the_sources(name, column, levels):
    d = mlm.load_dataset(name)
    assert [str(lv) for lv in d[column].cat.categories] == levels


def test_reference_level_is_first_category():
    """The first level is the reference category: exam's sex gives a 'sexM' coefficient."""
    d = mlm.build_design("normexam ~ sex + (1 | school)", mlm.load_dataset("exam"))
    assert d.fixed_names == ("(Intercept)", "sexM")


def test_list_datasets():
    listing = mlm.list_datasets()
    assert isinstance(listing, pd.DataFrame)
    assert listing.index.name == "name"
    assert sorted(listing.index) == NAMES
    assert {"title", "rows", "groups", "source"} <= set(listing.columns)
    assert listing.loc["hsb", "rows"] == 7185
    assert "school (160)" in listing.loc["hsb", "groups"]
    for name in listing.index:
        assert len(mlm.load_dataset(name)) == listing.loc[name, "rows"]


def test_load_returns_a_fresh_copy_each_call():
    a = mlm.load_dataset("sleepstudy")
    a.loc[0, "Reaction"] = -1.0
    a["new"] = 1
    b = mlm.load_dataset("sleepstudy")
    assert a is not b
    assert b.loc[0, "Reaction"] != -1.0 and "new" not in b.columns
    c = mlm.load_dataset("exam")
    c["sex"] = c["sex"].cat.rename_categories({"F": "female"})
    assert list(mlm.load_dataset("exam")["sex"].cat.categories) == ["F", "M"]


def test_name_is_case_insensitive():
    pd.testing.assert_frame_equal(mlm.load_dataset("SleepStudy"), mlm.load_dataset("sleepstudy"))


BAD_NAMES = [
    ("typo", "hsbb", r"no bundled data set called 'hsbb'.*Available: .*hsb.*list_datasets"),
    ("empty", "", r"no bundled data set called ''"),
    ("not-a-string", 3, r"no bundled data set called 3"),
    ("none", None, r"no bundled data set called None"),
    ("path", "hsb.csv", r"no bundled data set called 'hsb.csv'"),
]


@pytest.mark.parametrize("name, match", [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES])
def test_unknown_dataset(name, match):
    with pytest.raises(DataError, match=match) as info:
        mlm.load_dataset(name)
    assert isinstance(info.value, MLMError)
