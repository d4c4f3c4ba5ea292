"""Wrong types given to public functions' options give an MLMError naming the option
(issue 11: "no raw Python error escapes a public function"). Found by QA calling every
function in mlm.__all__ with None, a list, a string, an array, a data frame and a fit of
the other family in each argument: numpy's and pandas' "truth value is ambiguous",
``TypeError: '<' not supported`` and ``unhashable type`` escaped before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.checks import choice, flag, level
from mlm.errors import DataError, MLMError
from mlm.inference import RobustError


@pytest.fixture(scope="module")
def fit(sleep):
    return mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


ARRAY = np.array([0.9, 0.95])
FRAME = pd.DataFrame({"a": [1, 2]})

CASES = [
    ("lmer reml array", lambda f, d: mlm.lmer("Reaction ~ Days + (1 | Subject)", d, reml=ARRAY),
     MLMError, r"reml must be True or False, not array\("),
    ("lmer reml text", lambda f, d: mlm.lmer("Reaction ~ Days + (1 | Subject)", d, reml="ML"),
     MLMError, r"reml must be True or False, not 'ML'"),
    ("lmer engine frame", lambda f, d: mlm.lmer("Reaction ~ Days + (1 | Subject)", d, engine=FRAME),
     MLMError, r"Unknown engine"),
    ("fit_design not a design", lambda f, d: mlm.fit_design(d), MLMError,
     r"fit_design needs a Design from mlm.build_design\(formula, data\), not DataFrame"),
    ("update reml text", lambda f, d: f.update(reml="yes"), MLMError, r"reml must be True or False"),
    ("center columns None", lambda f, d: mlm.center(d, None), DataError,
     r"center's columns must be a column name or a list of column names, not NoneType"),
    ("center by array", lambda f, d: mlm.center(d, "Days", by=np.array(["Subject"])), DataError,
     r"center's by must be a column name or a list"),
    ("icc level text", lambda f, d: mlm.icc(f, level="95%"), DataError,
     r"level must be between 0 and 1 \(e\.g\. 0\.95\), not '95%'"),
    ("icc ci array", lambda f, d: mlm.icc(f, ci=ARRAY), DataError, r"Unknown ci"),
    ("robust type frame", lambda f, d: mlm.robust(f, type=FRAME), RobustError,
     r"type=a DataFrame is not available; use one of CR2, CR1, CR0"),
    ("robust cluster list", lambda f, d: mlm.robust(f, cluster=["Subject"]), RobustError,
     r"cluster must be the name of a grouping factor \(a string\) or None, not list"),
    ("robust level None", lambda f, d: mlm.robust(f, level=None), RobustError,
     r"level must be between 0 and 1"),
    ("summary robust array", lambda f, d: f.summary(robust=ARRAY), RobustError, r"type=.*not available"),
    ("summary style array", lambda f, d: f.summary(style=ARRAY), MLMError,
     r"style=array\(.*is not a summary layout"),
    ("pairwise adjust array", lambda f, d: mlm.pairwise(f, "Days", adjust=ARRAY), MLMError,
     r"Unknown adjust"),
    ("predict interval array", lambda f, d: f.predict(d, interval=ARRAY), DataError,
     r"interval=.*is not available"),
    ("predict include_random text", lambda f, d: f.predict(d, include_random="no"), DataError,
     r"include_random must be True or False, not 'no'"),
    ("predict level list", lambda f, d: f.predict(d, interval="confidence", level=[0.9]), DataError,
     r"level must be between 0 and 1"),
    ("list_datasets variables frame", lambda f, d: mlm.list_datasets(variables=FRAME), MLMError,
     r"variables must be True or False, not a DataFrame"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_option_types(fit, sleep, call, error, match):
    before = sleep.copy()
    with pytest.raises(error, match=match):
        call(fit, sleep)
    pd.testing.assert_frame_equal(sleep, before)


def test_helpers_accept_what_they_should():
    assert choice("CR2", ("CR2", "CR1"), "type") == "CR2"
    assert choice(None, ("a",), "x", allow_none=True) is None
    assert flag(np.True_, "reml") is True and flag(0, "reml") is False  # R's REML = 0
    assert level(np.float32(0.5)) == 0.5
    for bad in (True, 0, 1, -0.1, float("nan"), "0.9"):
        with pytest.raises(MLMError, match="level must be between 0 and 1"):
            level(bad)
    with pytest.raises(MLMError, match=r"reml must be True or False, not 2"):
        flag(2, "reml")
