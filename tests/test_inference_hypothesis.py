"""mlm.test: linear hypotheses as text or matrices, against lmerTest's contest.

Reference: tests/reference/inference_ddf.json (tests/reference/inference_ddf.R), case
``hsb_sector_slope``: ``mathach ~ ses * sector + meanses + (ses | school)`` on HSB with
sector a factor (Public, Catholic), REML. Tolerances as in test_inference_ddf.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.inference.hypothesis import parse_hypothesis
from test_inference_ddf import CASES, get_fit

NAMES = ["(Intercept)", "ses", "sectorCatholic", "meanses", "ses:sectorCatholic"]
RTOL = 2e-3


@pytest.fixture(scope="module")
def hsb_fit():
    f = get_fit("hsb_sector_slope")
    assert list(f.fixef.index) == NAMES
    return f


@pytest.mark.parametrize("text,row,rhs", [
    ("sectorCatholic = 0", [0, 0, 1, 0, 0], 0.0),
    ("sectorCatholic", [0, 0, 1, 0, 0], 0.0),
    ("ses = meanses", [0, 1, 0, -1, 0], 0.0),
    ("ses - meanses = 0", [0, 1, 0, -1, 0], 0.0),
    ("2*ses + meanses*0.5 = 1", [0, 2, 0, 0.5, 0], 1.0),
    ("ses:sectorCatholic == -1 + ses", [0, -1, 0, 0, 1], -1.0),
    ("`(Intercept)` - 10 = 2", [1, 0, 0, 0, 0], 12.0),
])
def test_parse(text, row, rhs):
    L, r, texts = parse_hypothesis(text, NAMES)
    np.testing.assert_array_equal(L, [row])
    np.testing.assert_array_equal(r, [rhs])


def test_one_equation_matches_contest(hsb_fit):
    for text, k in (("sectorCatholic = 0", 0), ("ses = meanses", 1)):
        ref = CASES["hsb_sector_slope"]["contest_satterthwaite"][k]   # R: contest(m, L, joint = TRUE)
        out = mlm.test(hsb_fit, text)
        assert list(out.index) == [text] and out["test"].iloc[0] == "t"
        np.testing.assert_allclose(out["statistic"].iloc[0] ** 2, ref["F"], rtol=RTOL)
        np.testing.assert_allclose(out["den_df"].iloc[0], ref["den_df"], rtol=RTOL)
        np.testing.assert_allclose(np.log(out["p_value"].iloc[0]), np.log(ref["p"]), rtol=1e-2)


@pytest.mark.parametrize("method", ["satterthwaite", "kenward_roger"])
def test_joint_matches_contest(hsb_fit, method):
    ref = CASES["hsb_sector_slope"][f"contest_{method}"][2]   # R: contest(m, L, joint = TRUE, ddf)
    out = mlm.test(hsb_fit, "sectorCatholic = 0, ses:sectorCatholic = 0", ddf=method.replace("_", "-"))
    assert list(out.index) == ["sectorCatholic = 0", "ses:sectorCatholic = 0", "joint"]
    joint = out.loc["joint"]
    assert joint["test"] == "F" and joint["num_df"] == 2
    np.testing.assert_allclose(joint["statistic"], ref["F"], rtol=RTOL)
    np.testing.assert_allclose(joint["den_df"], ref["den_df"], rtol=RTOL)


def test_matrix_and_text_agree(hsb_fit):
    text = mlm.test(hsb_fit, "ses = meanses")
    mat = mlm.test(hsb_fit, [0, 1, 0, -1, 0])
    frame = mlm.test(hsb_fit, pd.DataFrame({"ses": [1.0], "meanses": [-1.0]}, index=["ses - meanses"]))
    for other in (mat, frame):
        np.testing.assert_allclose(other[["estimate", "std_error", "statistic", "den_df", "p_value"]]
                                   .to_numpy(dtype=float),
                                   text[["estimate", "std_error", "statistic", "den_df", "p_value"]]
                                   .to_numpy(dtype=float), rtol=1e-12)
    shifted = mlm.test(hsb_fit, "ses = 2")
    by_rhs = mlm.test(hsb_fit, [0, 1, 0, 0, 0], rhs=2.0)
    np.testing.assert_allclose(shifted["statistic"], by_rhs["statistic"], rtol=1e-12)
    est = hsb_fit.fixef["ses"] - 2
    assert shifted["estimate"].iloc[0] == pytest.approx(est, rel=1e-12)


@pytest.mark.parametrize("text,match", [
    ("sectorcatholic = 0", r"Unknown coefficient 'sectorcatholic'.*sectorCatholic"),
    ("ses = mean_ses", r"Unknown coefficient 'mean_ses'"),
    ("sesx = 0", r"Unknown coefficient 'sesx'"),
    ("ses = meanses = 0", "one '=' per equation"),
    ("= 1", "one side of an equation is empty"),
    ("3 = 1", "involves no coefficient"),
    ("", "non-empty string"),
    ("ses * = 1", "after '\\*' a number is expected"),
    ("2 ses = 0", "write a weight and its coefficient with '\\*'"),
])
def test_bad_hypotheses(hsb_fit, text, match):
    with pytest.raises(mlm.MLMError, match=match):
        mlm.test(hsb_fit, text)


def test_bad_matrices(hsb_fit):
    with pytest.raises(mlm.MLMError, match=r"has 4 column\(s\) but the model has 5 fixed effects"):
        mlm.test(hsb_fit, [0, 1, 0, 0])
    with pytest.raises(mlm.MLMError, match="Unknown coefficient 'sector'"):
        mlm.test(hsb_fit, pd.DataFrame({"sector": [1.0]}))
    with pytest.raises(mlm.MLMError, match="rhs goes with a contrast matrix"):
        mlm.test(hsb_fit, "ses = 0", rhs=1)
    with pytest.raises(mlm.MLMError, match="a fitted model"):
        mlm.test("not a fit", "ses = 0")


def test_bad_rhs_and_empty_rows(hsb_fit):
    """Found by QA: an rhs of the wrong length escaped as numpy's broadcasting ValueError,
    and a row of zeros gave NaN statistics with a raw RuntimeWarning."""
    L = np.eye(5)[1:3]
    with pytest.raises(mlm.MLMError, match=r"rhs must be a number or one number per row of the "
                                           r"contrast \(2 row\(s\)\), not \[1, 2, 3\]"):
        mlm.test(hsb_fit, L, rhs=[1, 2, 3])
    with pytest.raises(mlm.MLMError, match=r"rhs must be a number .* not 'a'"):
        mlm.test(hsb_fit, L, rhs="a")
    with pytest.raises(mlm.MLMError, match=r"Row 2 of the contrast has every weight 0"):
        mlm.test(hsb_fit, np.vstack([L[:1], np.zeros(5)]))


def test_comma_inside_a_term_name_does_not_split_the_hypothesis():
    """One splitter for names and hypotheses (mlm.formula.split_top_level): the comma in
    cwc(ses, school) is inside brackets, not between two equations."""
    hsb = mlm.load_dataset("hsb")
    f = mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
    one = mlm.test(f, "cwc(ses, school) = gm(ses, school)")
    assert len(one) == 1
    both = mlm.test(f, "`cwc(ses, school)` = 0, gm(ses, school) = 0")
    assert len(both) == 3  # two equations and their joint F
