"""Formula transforms against R on data with missing values (issue 11).

Reference: tests/reference/transforms.json, written by tests/reference/transforms.R
(lme4 1.1.31, bobyqa with rhoend = 1e-12; each case's ``r_call`` is in the JSON), on
sleepstudy with Reaction missing in rows i % 9 == 0 and Days missing in rows
i % 13 == 5 (1-based). R evaluates every transform on the whole column before dropping
incomplete rows, and ``scale`` uses the SD with n - 1.

Tolerances: both optima are found to about 1e-7 in theta; a random-intercept model's
fixed effects move with theta by less than that times their own size, so 1e-6 relative
(and 1e-6 absolute in the log-likelihood) holds on any machine, while the n versus
n - 1 SD of ``scale`` (a factor of 1.003 here) or statistics taken after dropping rows
(about 1e-2) are caught.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.formula import ALLOWED_FUNCTIONS

REF = json.loads((Path(__file__).parent / "reference" / "transforms.json").read_text())


def sleep_with_missing() -> pd.DataFrame:
    """sleepstudy with the missing values of transforms.R (rows numbered from 1 there)."""
    d = mlm.load_dataset("sleepstudy")
    i = np.arange(1, len(d) + 1)
    d["Reaction"] = d["Reaction"].where(i % 9 != 0)
    d["Days"] = d["Days"].astype(float).where(i % 13 != 5)
    d["daygrp"] = d["Days"] // 4
    return d


@pytest.fixture(scope="module", params=REF["cases"], ids=lambda c: c["id"])
def pair(request):
    case = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlm.design.MissingDataWarning)
        fit = mlm.lmer(case["formula"], sleep_with_missing())
    return case, fit


def test_fixed_effects_match_lme4(pair):
    case, fit = pair
    assert fit.nobs == case["nobs"]                                          # R: nobs(m)
    np.testing.assert_allclose(fit.fixef.to_numpy(), case["fixef"], rtol=1e-6)  # R: fixef(m)
    assert fit.loglik == pytest.approx(case["loglik"], abs=1e-6)             # R: logLik(m)


def test_every_allowed_function_is_checked():
    """Each function the parser allows appears in a reference case (Q only quotes a name)."""
    used = " ".join(c["formula"] for c in REF["cases"])
    unchecked = {f for f in ALLOWED_FUNCTIONS - {"Q"} if f"{f}(" not in used and f"{f})" not in used}
    assert not unchecked
