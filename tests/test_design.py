"""Tests of mlm.design: input checks, missing values, and the caller's data left alone.

Every user-facing error is matched on its message: it must name the culprit and be an
:class:`mlm.MLMError`.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.design import DesignWarning, MissingDataWarning
from mlm.errors import DataError, FormulaError, MLMError

SLEEP_F = "Reaction ~ Days + (Days | Subject)"


def _sleep():
    s = mlm.load_dataset("sleepstudy")
    s["Days_f"] = s["Days"].astype(float)
    return s


def _with(**columns):
    """sleepstudy with extra columns, each given as a function of the frame."""
    def make():
        s = _sleep()
        for name, fn in columns.items():
            s[name] = fn(s)
        return s
    return make


def _set(column, rows, value):
    def make():
        s = _sleep()
        s[column] = s[column].astype(float) if isinstance(value, float) else s[column]
        s.loc[rows, column] = value
        return s
    return make


# ---------------------------------------------------------------------------
# Bad input: (id, formula, data factory, error class, message pattern)
# ---------------------------------------------------------------------------

BAD_INPUT = [
    ("list", SLEEP_F, lambda: [[1, 2], [3, 4]], DataError,
     r"must be a pandas DataFrame or another data frame \(polars.*not list"),
    ("dict", SLEEP_F, lambda: {"Reaction": [1.0], "Days": [0], "Subject": [1]}, DataError,
     r"must be a pandas DataFrame or another data frame \(polars.*not dict"),
    ("ndarray", SLEEP_F, lambda: np.zeros((10, 3)), DataError,
     r"must be a pandas DataFrame or another data frame \(polars.*not ndarray"),
    ("none", SLEEP_F, lambda: None, DataError,
     r"must be a pandas DataFrame or another data frame \(polars.*not NoneType"),
    ("empty-no-columns", SLEEP_F, lambda: pd.DataFrame(), DataError, r"data has no rows"),
    ("empty-with-columns", SLEEP_F, lambda: _sleep().iloc[:0], DataError, r"data has no rows"),
    ("unknown-column", "Reaction ~ Dayz + (Days | Subject)", _sleep, FormulaError,
     r"(?s)Unknown variable 'Dayz'.*Did you mean 'Days'\?"),
    ("unknown-group", "Reaction ~ Days + (1 | Subjct)", _sleep, FormulaError,
     r"(?s)Unknown variable 'Subjct'.*Did you mean 'Subject'\?"),
    ("string-outcome", "r ~ Days + (1 | Subject)",
     _with(r=lambda s: s["Reaction"].round().astype(int).astype(str)), DataError,
     r"Column 'r' is text, yet all its values are numbers.*pandas\.to_numeric"),
    ("word-outcome", "r ~ Days + (1 | Subject)",
     _with(r=lambda s: np.where(s["Reaction"] > 300, "slow", "fast")), DataError,
     r"outcome 'r' is not numeric \(dtype .*\).*binary \(yes/no\) outcome must be coded 0/1"),
    ("categorical-outcome", "r ~ Days + (1 | Subject)",
     _with(r=lambda s: pd.Categorical(s["Reaction"].round().astype(int))), DataError,
     r"outcome 'r' is not numeric \(dtype category\)"),
    ("bool-outcome", "r ~ Days + (1 | Subject)", _with(r=lambda s: s["Reaction"] > 300), DataError,
     r"outcome 'r' is logical \(True/False\).*binary outcome"),
    ("all-missing-outcome", "r ~ Days + (1 | Subject)", _with(r=lambda s: np.nan), DataError,
     r"outcome 'r' is missing in every row"),
    ("every-row-missing", "Reaction ~ x + (1 | Subject)",
     _with(x=lambda s: np.where(s.index % 2 == 0, np.nan, 1.0),
           Reaction=lambda s: s["Reaction"].where(s.index % 2 == 0)), DataError,
     r"Every row has a missing value.*most missing"),
    ("infinite-outcome", "Reaction ~ Days + (1 | Subject)", _set("Reaction", [3, 9], np.inf),
     DataError, r"Column 'Reaction' has 2 infinite value"),
    ("infinite-predictor", "Reaction ~ Days_f + (1 | Subject)", _set("Days_f", [5], -np.inf),
     DataError, r"Column 'Days_f' has 1 infinite value"),
    ("one-level", "Reaction ~ Days + (1 | one)", _with(one=lambda s: "a"), DataError,
     r"grouping factor 'one' has only one level"),
    ("one-level-after-na", "Reaction ~ Days + (1 | g)",
     _with(g=lambda s: np.where(s["Subject"] == 308, "a", None)), DataError,
     r"grouping factor 'g' has only one level"),
    ("levels-as-rows", "Reaction ~ Days + (1 | rowid)", _with(rowid=lambda s: np.arange(len(s))),
     DataError, r"grouping factor 'rowid' has as many levels \(180\) as there are rows"),
    ("too-many-random-effects", SLEEP_F, lambda: _sleep().query("Days < 2"), DataError,
     r"\(1 \+ Days \| Subject\) has 36 random effects for 36 rows"),
    ("no-random-term", "Reaction ~ Days", _sleep, FormulaError,
     r"no random-effects term.*statsmodels OLS"),
    ("collinear-constant", "Reaction ~ Days + const + (1 | Subject)", _with(const=lambda s: 1.0),
     DataError, r"collinear: 'const' is a linear combination"),
    ("collinear-multiple", "Reaction ~ Days + d2 + (1 | Subject)",
     _with(d2=lambda s: 2 * s["Days"] + 1), DataError,
     r"collinear: '(Days|d2)' is a linear combination"),
    ("log-zero-outcome", "np.log(y0) ~ Days + (1 | Subject)",
     _with(y0=lambda s: s["Reaction"].where(s.index != 0, 0.0)), DataError,
     r"outcome 'np\.log\(y0\)' has infinite or undefined values.*log of zero"),
    ("log-zero-predictor", "Reaction ~ log(Days) + (1 | Subject)", _sleep, DataError,
     r"fixed-effects columns have infinite or undefined values.*log of zero"),
]


@pytest.mark.parametrize("formula, make, error, match",
                         [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_lmer(formula, make, error, match):
    data = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        with pytest.raises(error, match=match) as info:
            mlm.lmer(formula, data)
    assert isinstance(info.value, MLMError)


@pytest.mark.parametrize("formula, make, error, match",
                         [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_build_design(formula, make, error, match):
    """build_design raises the same errors as lmer (it is where they come from)."""
    data = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        with pytest.raises(error, match=match):
            mlm.build_design(formula, data)


def test_log_zero_raises_no_numpy_warning(sleep):
    s = sleep.copy()
    s.loc[0, "Reaction"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DataError, match="log of zero"):
            mlm.build_design("np.log(Reaction) ~ Days + (1 | Subject)", s)


def test_constant_random_slope_warns(sleep):
    s = sleep.copy()
    s["subj_level"] = s["Subject"].astype(int) % 7
    with pytest.warns(DesignWarning, match=r"'subj_level' does not vary within levels of 'Subject'"):
        mlm.build_design("Reaction ~ subj_level + (subj_level | Subject)", s)


# ---------------------------------------------------------------------------
# The design itself
# ---------------------------------------------------------------------------

DESIGNS = [
    ("sleep", "sleepstudy", SLEEP_F, (180, 2), ("(Intercept)", "Days"),
     [("Subject", ("(Intercept)", "Days"), 18)]),
    ("hsb-formula-order", "hsb", "mathach ~ ses + sector + (1 | school)", (7185, 3),
     ("(Intercept)", "ses", "sector"), [("school", ("(Intercept)",), 160)]),
    ("exam-categorical", "exam", "normexam ~ standLRT + sex + (1 | school)", (4059, 3),
     ("(Intercept)", "standLRT", "sexM"), [("school", ("(Intercept)",), 65)]),
    ("pastes-nested", "pastes", "strength ~ (1 | batch/cask)", (60, 1), ("(Intercept)",),
     [("batch", ("(Intercept)",), 10), ("cask:batch", ("(Intercept)",), 30)]),
    ("sleep-double-bar", "sleepstudy", "Reaction ~ Days + (Days || Subject)", (180, 2),
     ("(Intercept)", "Days"), [("Subject", ("(Intercept)",), 18), ("Subject", ("Days",), 18)]),
]


@pytest.mark.parametrize("dataset, formula, shape, fixed, blocks",
                         [c[1:] for c in DESIGNS], ids=[c[0] for c in DESIGNS])
def test_design_matrices(dataset, formula, shape, fixed, blocks):
    d = mlm.build_design(formula, mlm.load_dataset(dataset))
    assert d.X.shape == shape
    assert d.y.shape == (shape[0],)
    assert d.fixed_names == fixed
    assert [(b.group_name, b.columns, b.n_levels) for b in d.blocks] == blocks
    for b in d.blocks:
        assert b.Z.shape == (shape[0], len(b.columns))
        assert b.codes.min() == 0 and b.codes.max() == b.n_levels - 1
    assert d.nobs == shape[0] and d.nobs_dropped == 0


def test_nested_group_labels_are_lme4s():
    d = mlm.build_design("strength ~ (1 | batch/cask)", mlm.load_dataset("pastes"))
    inner = d.blocks[1]
    assert inner.group_name == "cask:batch"
    assert list(inner.levels[:3]) == ["a:A", "a:B", "a:C"]   # lme4's labels of cask:batch


# ---------------------------------------------------------------------------
# Missing values
# ---------------------------------------------------------------------------

def _with_missing():
    s = mlm.load_dataset("sleepstudy")
    s["Reaction"] = s["Reaction"].astype(float)
    s["Days"] = s["Days"].astype(float)
    s.loc[[3, 50], "Reaction"] = np.nan
    s.loc[7, "Days"] = np.nan
    s["unused"] = 1.0
    s.loc[10:40, "unused"] = np.nan        # not in the model: must not drop rows
    return s


def test_missing_rows_dropped_counted_and_warned():
    s = _with_missing()
    with pytest.warns(MissingDataWarning,
                      match=r"3 of 180 rows dropped because of missing values "
                            r"\(missing per variable: Reaction: 2, Days: 1\)"):
        d = mlm.build_design(SLEEP_F, s)
    assert d.nobs == 177 and d.nobs_dropped == 3
    assert list(d.dropped_index) == [3, 7, 50]
    assert not d.frame.index.isin([3, 7, 50]).any()


def test_missing_rows_in_fit_and_summary():
    s = _with_missing()
    with pytest.warns(MissingDataWarning, match=r"3 of 180 rows dropped"):
        fit = mlm.lmer(SLEEP_F, s)
    assert fit.nobs == 177 and fit.nobs_dropped == 3
    assert "3 row(s) with missing values in model variables were dropped; 177 used." in fit.summary()
    assert "Number of obs: 177" in fit.summary()
    clean = mlm.lmer(SLEEP_F, s.dropna(subset=["Reaction", "Days"]))
    np.testing.assert_allclose(fit.fixef.to_numpy(), clean.fixef.to_numpy(), rtol=0, atol=1e-10)
    assert abs(fit.loglik - clean.loglik) < 1e-10
    assert fit.fitted.index.equals(clean.fitted.index)


def test_na_in_unused_column_keeps_rows(sleep):
    s = sleep.copy()
    s["unused"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDataWarning)
        d = mlm.build_design(SLEEP_F, s)
    assert d.nobs == 180 and d.nobs_dropped == 0


def test_missing_group_drops_row(sleep):
    s = sleep.copy()
    s["Subject"] = s["Subject"].astype(object)
    s.loc[[0, 1], "Subject"] = None
    with pytest.warns(MissingDataWarning, match=r"2 of 180 rows dropped.*Subject: 2"):
        d = mlm.build_design(SLEEP_F, s)
    assert d.nobs == 178


# ---------------------------------------------------------------------------
# The caller's data is never modified
# ---------------------------------------------------------------------------

def _messy_exam():
    e = mlm.load_dataset("exam").iloc[:1500].copy()
    e.index = pd.Index(np.arange(len(e))[::-1] * 3 + 5, name="row")   # not a RangeIndex
    e.loc[e.index[[2, 40]], "normexam"] = np.nan
    e.loc[e.index[[5]], "standLRT"] = np.nan
    e.loc[e.index[[9]], "sex"] = np.nan
    e["note"] = pd.Series(["x"] * len(e), index=e.index, dtype=object)
    return e


UNCHANGED_CALLS = [
    ("lmer", lambda d: mlm.lmer("normexam ~ standLRT + sex + (1 | school)", d)),
    ("lmer-categoricals", lambda d: mlm.lmer("normexam ~ sex + vr + (1 | schgend/school)", d)),
    ("lmer-cwc", lambda d: mlm.lmer("normexam ~ cwc(standLRT, school) + gm(standLRT, school) "
                                    "+ (1 | school)", d)),
    ("build_design", lambda d: mlm.build_design("normexam ~ standLRT * sex + (standLRT | school)", d)),
    ("predict", lambda d: _exam_fit().predict(d)),
    ("predict-fixed", lambda d: _exam_fit().predict(d, include_random=False)),
    ("center", lambda d: mlm.center(d, "standLRT")),
    ("center-by", lambda d: mlm.center(d, ["standLRT", "normexam"], by="school")),
]

_CACHE = {}


def _exam_fit():
    if "exam" not in _CACHE:
        _CACHE["exam"] = mlm.lmer("normexam ~ standLRT + sex + (standLRT | school)",
                                  mlm.load_dataset("exam").iloc[:1500])
    return _CACHE["exam"]


@pytest.mark.parametrize("call", [c[1] for c in UNCHANGED_CALLS], ids=[c[0] for c in UNCHANGED_CALLS])
def test_callers_data_not_modified(call):
    data = _messy_exam()
    before = data.copy(deep=True)
    dtypes, index, columns = data.dtypes.copy(), data.index.copy(), list(data.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        call(data)
    pd.testing.assert_frame_equal(data, before, check_exact=True)
    assert list(data.columns) == columns
    assert data.dtypes.equals(dtypes)
    assert data.index.equals(index) and data.index.name == "row"
    assert list(data["sex"].cat.categories) == ["F", "M"]


# ---------------------------------------------------------------------------
# Issue 11: what can only fail when patsy evaluates a term on the data is reported
# as one MLMError naming the term (never patsy's, Python's, numpy's or pandas' own)
# ---------------------------------------------------------------------------

def _text_column():
    s = _sleep()
    s["txt"] = np.where(s["Days"] % 2 == 0, "even", "odd")
    return s


EVALUATION_ERRORS = [
    ("text-arithmetic", "Reaction ~ I(txt + 1) + (1 | Subject)", FormulaError,
     r"Could not build 'I\(txt \+ 1\)' in the fixed effects: TypeError: .*Check that the "
     r"columns it uses hold the kind of values it needs"),
    ("text-outcome-arithmetic", "I(txt - 2) ~ Days + (1 | Subject)", FormulaError,
     r"Could not build 'I\(txt - 2\)' in the fixed effects"),
    ("unknown-level", "Reaction ~ C(txt, Treatment('none')) + (1 | Subject)", FormulaError,
     r"Could not build the fixed effects from 'Reaction ~ C\(txt, Treatment\('none'\)\)': "
     r"specified level 'none' not found"),
    ("repeated-level", "Reaction ~ C(txt, levels=('even', 'odd', 'odd')) + (1 | Subject)",
     FormulaError, r"Could not build the fixed effects from .*ValueError"),
    ("contrast-level-not-iterable", "Reaction ~ C(txt, Helmert, levels=1) + (1 | Subject)",
     FormulaError, r"Could not build the fixed effects from .*TypeError"),
    ("text-centered", "Reaction ~ center(txt) + (1 | Subject)", FormulaError,
     r"Could not build 'center\(txt\)' in the fixed effects: ValueError"),
    ("log-negative", "Reaction ~ np.log(Days - 5) + (1 | Subject)", DataError,
     r"Could not build 'np\.log\(Days - 5\)' in the fixed effects: it gives missing \(NaN\) "
     r"values on some rows \(e\.g\. the log of a negative number\)"),
    ("random-slope-text", "Reaction ~ Days + (I(txt + 1) | Subject)", FormulaError,
     r"Could not build 'I\(txt \+ 1\)' in the random-effects columns of "
     r"\(1 \+ I\(txt \+ 1\) \| Subject\)"),
]


@pytest.mark.parametrize("formula, error, match", [c[1:] for c in EVALUATION_ERRORS],
                         ids=[c[0] for c in EVALUATION_ERRORS])
@pytest.mark.parametrize("call", ["lmer", "build_design"])
def test_evaluation_errors_name_the_term(formula, error, match, call):
    data = _text_column()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match) as info:
            getattr(mlm, call)(formula, data)
    assert isinstance(info.value, MLMError)
    lines = str(info.value).splitlines()
    if isinstance(info.value, FormulaError) and info.value.position is not None:
        # the patsy formula is reprinted with the term marked
        term = re.search(r"Could not build '(.*)' in", lines[0]).group(1)
        assert lines[-2][4:][info.value.position:].startswith(term)
        assert lines[-1].strip() == "^" * len(term)


@pytest.mark.parametrize("formula", ["Reaction ~ 0 + (1 | Subject)", "Reaction ~ (1 | Subject) - 1"])
def test_no_fixed_columns_is_an_mlm_error(sleep, formula):
    # lme4 allows it; the engine needs a column (it ended in scipy's ValueError; issue 11)
    with pytest.raises(mlm.FitError, match=r"has no fixed effects \('0 \+' or '- 1' removed"):
        mlm.lmer(formula, sleep)


@pytest.mark.parametrize("formula, names", [
    # R: names(fixef(lmer(attain ~ factor(social) + (1 | primary), ScotsSec)))
    #    "(Intercept)" "factor(social)1" "factor(social)20" "factor(social)31"
    ("attain ~ C(social) + (1 | primary)",
     ["(Intercept)", "C(social)1", "C(social)20", "C(social)31"]),
    ("attain ~ C(social, Treatment(reference=20)) + (1 | primary)",
     ["(Intercept)", "C(social, Treatment(reference=20))0", "C(social, Treatment(reference=20))1",
      "C(social, Treatment(reference=20))31"]),
])
def test_whole_number_codes_name_their_dummies_as_r_does(formula, names):
    """C() of a column of whole numbers: levels 1, 20, not 1.0, 20.0 (R's factor(x)1)."""
    d = mlm.load_dataset("scotssec")
    assert list(mlm.build_design(formula, d).fixed_names) == names
