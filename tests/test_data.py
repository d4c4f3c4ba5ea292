"""Tests of mlm.data: the bundled data sets and their manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


# --- codebooks (issue 15) -------------------------------------------------------------------
CODEBOOK_NAMES = [n for n in NAMES if "levels" in MANIFEST[n]]
REFERENCE = json.loads((Path(__file__).resolve().parent / "reference" / "datasets.json")
                       .read_text("utf-8"))


def test_every_bundled_set_of_this_release_has_a_codebook():
    assert {"hsb", "sleepstudy", "exam", "chem97", "scotssec", "pastes", "penicillin",
            "insteval", "egsingle"} <= set(CODEBOOK_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_describe_dataset_is_the_frames_description(name):
    entry = MANIFEST[name]
    text = mlm.describe_dataset(name)
    assert mlm.load_dataset(name).attrs["description"] == text
    assert text.startswith(f"{name}: ")
    for column in entry["columns"]:
        assert f"\n  {column} " in text, column
    if isinstance(entry.get("source"), dict) and entry["source"].get("citation"):
        assert "Citation: " + entry["source"]["citation"][:40] in " ".join(text.split())
    assert f"Licence: {entry['license']}" in text


@pytest.mark.parametrize("name", CODEBOOK_NAMES)
def test_codebook_levels_agree_with_the_data(name):
    """A variable said to describe a unit is constant within that unit's id column."""
    entry, d = MANIFEST[name], mlm.load_dataset(name)
    ids = {u["unit"]: u["id"] for u in entry["levels"]}
    assert set(entry["variable_levels"]) == set(entry["columns"])
    text = mlm.describe_dataset(name)
    for column, unit in entry["variable_levels"].items():
        assert f"[{unit}]" in text
        id_column = ids[unit]
        if id_column is None or id_column == column:
            continue
        per_unit = d.groupby(id_column, observed=True)[column].nunique(dropna=False)
        assert per_unit.max() == 1, (column, unit)
    # the id columns exist and the top unit's id is a grouping column
    for unit in entry["levels"]:
        assert unit["id"] is None or unit["id"] in d.columns
    assert mlm.list_datasets().loc[name, "levels"].split(" < ")[0] in {
        u["unit"] for u in entry["levels"] if u["level"] == 1}


def test_levels_text_marks_crossed_units():
    listing = mlm.list_datasets()
    assert listing.loc["hsb", "levels"] == "student < school"
    assert listing.loc["egsingle", "levels"] == "test < child < school"
    assert listing.loc["penicillin", "levels"] == "test < plate x sample"
    assert "nested" in listing.loc["chem97", "structure"]
    assert "crossed" in listing.loc["scotssec", "structure"]


def test_list_of_variables():
    table = mlm.list_datasets(variables=True)
    assert table.index.names == ["name", "variable"]
    assert len(table) == sum(len(MANIFEST[n]["columns"]) for n in NAMES)
    assert table.loc[("hsb", "meanses"), "level"] == "school"
    assert table.loc[("hsb", "mathach"), "level"] == "student"
    assert table.loc[("exam", "sex"), "categories"] == "F, M"
    assert table.loc[("egsingle", "female"), "level"] == "child"


def test_entry_without_a_codebook_still_renders(monkeypatch):
    """Other helpers' entries may carry only the older fields (file, title, variables...)."""
    from mlm import data as data_module
    bare = {"file": "x.csv", "title": "A bare entry", "rows": 3, "columns": ["y", "g"],
            "groups": {"g": 2}, "variables": {"y": "outcome"}}
    minimal = {"file": "z.csv", "columns": []}
    fake = dict(data_module._manifest(), bare=bare, minimal=minimal)
    monkeypatch.setattr(data_module, "_manifest", lambda: fake)
    text = mlm.describe_dataset("bare")
    assert text.startswith("bare: A bare entry") and "  y  outcome" in text and "  g" in text
    assert "Levels" not in text and "Known quirks" not in text
    assert mlm.describe_dataset("minimal").startswith("minimal:")
    listing = mlm.list_datasets()
    assert listing.loc["bare", "levels"] == "" and listing.loc["bare", "structure"] == ""
    assert mlm.list_datasets(variables=True).loc[("bare", "g"), "level"] == ""


def test_describe_unknown_dataset():
    with pytest.raises(DataError, match=r"no bundled data set called 'egsingel'.*egsingle"):
        mlm.describe_dataset("egsingel")


def test_egsingle_levels_and_sizes():
    ref = REFERENCE["egsingle_levels"]   # levels(mlmRev::egsingle$female) etc.
    d = mlm.load_dataset("egsingle")
    assert d.shape == (7230, 12)
    assert d["childid"].nunique() == ref["n_children"] and d["schoolid"].nunique() == ref["n_schools"]
    assert [str(v) for v in d["female"].cat.categories] == ref["female"]
    assert [str(v) for v in d["retained"].cat.categories] == ref["retained"]
    assert d.groupby("childid")["schoolid"].nunique().max() == 1    # children in one school


@pytest.mark.parametrize("key", ["egsingle_help", "egsingle_growth"])
def test_egsingle_fits_as_mlmrevs(key):
    """tests/reference/datasets.R: lmer on our CSV, which R checks equals mlmRev::egsingle's fit.

    Tolerances: lme4 (bobyqa) and our optimizer both stop within about 1e-6 of the optimum
    of the log-likelihood; estimates then agree to about 1e-4 relative.
    """
    ref = REFERENCE[key]
    fit = mlm.lmer(ref["formula"], mlm.load_dataset("egsingle"), reml=ref.get("reml", True))
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-3)     # logLik(m)
    for name, value in ref["fixef"].items():                          # fixef(m)
        assert fit.fixef[name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    v = fit.varcorr
    resid = v.loc[v["grp"] == "Residual", "vcov"].iloc[0]
    assert resid == pytest.approx(ref["vcov"]["Residual|NA|NA"], rel=1e-3)


def test_every_data_file_is_shipped_in_the_wheel():
    """pyproject's package-data patterns cover every file the manifest names."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["mlm.datasets"]
    assert "manifest.json" in patterns
    for name, entry in MANIFEST.items():
        assert any(fnmatch.fnmatch(entry["file"], p) for p in patterns), name
        assert (root / "datasets" / entry["file"]).is_file(), name


def test_glmm_codebooks_state_what_the_data_show():
    """The facts the contraception and cbpp codebooks state, recomputed from the data."""
    contra, cbpp = mlm.load_dataset("contraception"), mlm.load_dataset("cbpp")
    text = " ".join(mlm.describe_dataset("contraception").split())
    assert 54 not in set(contra["district"]) and contra["district"].nunique() == 60
    assert "there is no district 54" in text
    mixed = int((contra.groupby("district")["urban"].nunique() == 2).sum())
    assert f"{mixed} of the 60 districts have both urban and rural women" in text
    ages = contra["age"] + 30.56
    assert np.abs(ages - ages.round()).max() < 1.1e-3 and (ages.round().min(), ages.round().max()) == (17, 50)
    cells = pd.crosstab(cbpp["herd"], cbpp["period"])
    assert sorted((h, int(p)) for h, p in zip(*np.nonzero(cells.to_numpy() == 0))) == \
        [(1, 3), (7, 1), (7, 2), (7, 3)]  # 0-based: herd 2 period 4, herd 8 periods 2-4
    assert "herd 2 (period 4) and herd 8 (periods 2, 3, 4)" in " ".join(
        mlm.describe_dataset("cbpp").split())
    assert (cbpp.groupby("herd")["size"].nunique() > 1).any()  # size is a period-level variable
