"""Levels and nesting (mlm/nesting.py): group sizes, relations, reused ids, predictor levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import MLMError
from mlm.toolkit.nesting import NestingReport, describe_nesting, levels


@pytest.fixture(scope="module")
def hsb_classes(hsb):
    d = hsb.copy()
    # class numbered 1..4 inside every school: the classic reused-id layout
    d["class"] = d.groupby("school").cumcount() % 4 + 1
    d["class_id"] = d["school"].astype(str) + "_" + d["class"].astype(str)
    return d


def relation(rep, a, b):
    return rep.relations.set_index(["factor", "other"]).loc[(a, b)]


def test_reused_class_ids_in_hsb(hsb_classes):
    rep = describe_nesting(hsb_classes, ["school", "class"])
    assert isinstance(rep, NestingReport)
    assert relation(rep, "class", "school")["relation"] == "crossed with"
    assert bool(relation(rep, "class", "school")["reused_ids"])
    assert not bool(relation(rep, "school", "class")["reused_ids"])
    assert len(rep.warnings) == 1
    assert "(1 | school/class)" in rep.warnings[0] and "unique" in rep.warnings[0]
    assert "(1 | school/class)" in str(rep)


def test_unique_class_ids_are_nested(hsb_classes):
    rep = describe_nesting(hsb_classes, ["school", "class_id"])
    assert relation(rep, "class_id", "school")["relation"] == "nested in"
    assert relation(rep, "school", "class_id")["relation"] == "contains"
    assert not rep.relations["reused_ids"].any()
    assert rep.warnings == []
    assert rep.factors.loc["class_id", "n_groups"] == 640   # 160 schools x 4 classes


def test_exam_student_ids_reused_within_school():
    # mlmRev::Exam: the student number is an id within school (650 labels, 4,059 rows)
    exam = mlm.load_dataset("exam")
    rep = describe_nesting(exam, ["school", "student"])
    assert rep.factors["n_groups"].to_dict() == {"school": 65, "student": 650}
    assert bool(relation(rep, "student", "school")["reused_ids"])
    assert not bool(relation(rep, "school", "student")["reused_ids"])
    assert "(1 | school/student)" in rep.warnings[0]
    # the combination is what identifies a student
    rep2 = describe_nesting(exam, ["school", "school:student"])
    assert relation(rep2, "school:student", "school")["relation"] == "nested in"
    assert rep2.factors.loc["school:student", "n_groups"] == 4055   # 4 pairs share an id


def test_group_size_table(hsb):
    rep = describe_nesting(hsb, "school")
    row = rep.factors.loc["school"]
    sizes = hsb.groupby("school").size()
    assert row["n_groups"] == 160
    assert row["min_size"] == sizes.min() and row["max_size"] == sizes.max()
    assert row["median_size"] == sizes.median()
    assert row["mean_size"] == pytest.approx(7185 / 160)
    assert row["singletons"] == 0 and row["n_missing"] == 0
    assert rep.relations.empty


def test_nested_chem97_no_warning():
    rep = describe_nesting(mlm.load_dataset("chem97"), ["lea", "school"])
    assert relation(rep, "school", "lea")["relation"] == "nested in"
    assert rep.warnings == []
    assert rep.factors.loc["school", "singletons"] == 162


def test_crossed_scotssec_not_flagged():
    # primary and secondary schools are genuinely crossed: no restart of numbering
    rep = describe_nesting(mlm.load_dataset("scotssec"), ["primary", "second"])
    assert set(rep.relations["relation"]) == {"crossed with"}
    assert rep.warnings == []


def test_pastes_cask_flagged_only_once():
    # lme4's Pastes: casks a, b, c reused in every batch; sample = batch:cask
    rep = describe_nesting(mlm.load_dataset("pastes"), ["batch", "cask", "sample"])
    assert bool(relation(rep, "cask", "batch")["reused_ids"])
    assert not bool(relation(rep, "batch", "cask")["reused_ids"])
    assert relation(rep, "sample", "batch")["relation"] == "nested in"
    assert len(rep.warnings) == 1


def test_same_grouping_and_missing_values():
    d = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3], "b": ["x", "x", "y", "y", "z", None]})
    rep = describe_nesting(d, ["a", "b"])
    assert relation(rep, "a", "b")["relation"] == "same grouping"
    assert rep.factors.loc["b", "n_missing"] == 1
    assert rep.factors.loc["b", "singletons"] == 1


def test_caller_frame_untouched(hsb_classes):
    before = hsb_classes.copy()
    describe_nesting(hsb_classes, ["school", "class"])
    pd.testing.assert_frame_equal(hsb_classes, before)


@pytest.mark.parametrize("groups, match", [
    (["school", "nope"], "'nope' not found"),
    ([], "non-empty list"),
    (["school", "school"], "lists a factor twice"),
    (3, "column name or a list"),
])
def test_describe_nesting_errors(hsb, groups, match):
    with pytest.raises(MLMError, match=match):
        describe_nesting(hsb, groups)


def test_describe_nesting_needs_frame():
    with pytest.raises(MLMError, match="must be a pandas DataFrame"):
        describe_nesting({"a": [1]}, "a")


def test_all_missing_factor():
    d = pd.DataFrame({"a": [1, 2], "b": [np.nan, np.nan]})
    with pytest.raises(MLMError, match="'b' is missing in every row"):
        describe_nesting(d, ["a", "b"])


# --- levels ------------------------------------------------------------------------------
def test_levels_hsb(hsb):
    d = hsb.copy()
    d["school_mean_ses"] = d.groupby("school")["ses"].transform("mean")
    fit = mlm.lmer("mathach ~ ses + school_mean_ses + sector + female + (1 | school)", d)
    tab = levels(fit)
    assert tab["level"].to_dict() == {"ses": "1", "school_mean_ses": "school", "sector": "school",
                                      "female": "1"}
    assert tab.loc["sector", "between_school"] == pytest.approx(1.0)
    # between share of ses: school means' sum of squares over the total (one-way ANOVA)
    means = d.groupby("school")["ses"].transform("mean")
    expected = ((means - d["ses"].mean()) ** 2).sum() / ((d["ses"] - d["ses"].mean()) ** 2).sum()
    assert tab.loc["ses", "between_school"] == pytest.approx(expected, rel=1e-10)


def test_levels_exact_zero_and_one_shares(hsb):
    """A group-mean centred predictor has no between share: exactly 0, not 1e-16 (issue 11)."""
    fit = mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    tab = levels(fit)
    assert tab.loc["cwc(ses, school)", "between_school"] == 0.0
    assert tab.loc["gm(ses, school)", "between_school"] == 1.0


def test_levels_three_levels_names_highest():
    chem = mlm.load_dataset("chem97")
    chem["lea_mean"] = chem.groupby("lea")["gcsescore"].transform("mean")
    chem["school_mean"] = chem.groupby("school")["gcsescore"].transform("mean")
    fit = mlm.lmer("score ~ gcsescore + school_mean + lea_mean + (1 | lea/school)", chem)
    tab = levels(fit)
    assert tab.loc["gcsescore", "level"] == "1"
    assert tab.loc["school_mean", "level"] == "school:lea"
    assert tab.loc["lea_mean", "level"] == "lea"
    assert tab.loc["lea_mean", "constant_within"] == "lea, school:lea"


def test_levels_crossed_factor():
    scot = mlm.load_dataset("scotssec")
    scot["primary_mean"] = scot.groupby("primary")["verbal"].transform("mean")
    fit = mlm.lmer("attain ~ verbal + primary_mean + (1 | primary) + (1 | second)", scot)
    tab = levels(fit)
    assert tab.loc["primary_mean", "level"] == "primary"
    assert tab.loc["primary_mean", "constant_within"] == "primary"   # varies within second
    assert tab.loc["verbal", "level"] == "1"


def test_levels_intercept_only(hsb):
    tab = levels(mlm.lmer("mathach ~ 1 + (1 | school)", hsb))
    assert tab.empty and list(tab.columns) == ["level", "constant_within", "between_school"]


def test_levels_rejects_non_fit(hsb):
    with pytest.raises(MLMError, match="must be a fitted model"):
        levels(hsb)
