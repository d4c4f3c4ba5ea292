"""The glmer fits of tests/reference/report_glmm.R, fitted once per test session.

Each case's formula is R's with mlm's spelling (``I(age**2)``, ``cwc()``/``gm()`` for R's
precomputed ``age_c``/``age_m``); the fixed effects come in the same order as R's, so tests
compare them by position. Tolerances (tests/test_glmer_reference.py, issue 14): estimates
1e-3 relative, standard errors and variances 1e-2 relative; for ``logit``, where lme4 stops at
max|grad| 0.016 by its own warning (our -2 logLik is 1.7e-4 lower), the estimates within 1% of
their standard error and their exp within 2e-3 relative.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np

import mlm

ROOT = Path(__file__).resolve().parents[1]
R = json.loads((ROOT / "tests/reference/report_glmm.json").read_text())

CASES = {
    "logit": ("use ~ age + I(age**2) + urban + livch + (1 | district)", "contraception", {}),
    "centered": ("use ~ cwc(age, district) + gm(age, district) + urban + (1 | district)",
                 "contraception", {}),
    "slopes": ("use ~ cwc(age, district) + gm(age, district) + urban + gm(age, district):urban "
               "+ livch + (urban | district)", "contraception", {}),
    "probit": ("use ~ age + I(age**2) + urban + livch + (1 | district)", "contraception",
               {"link": "probit"}),
    "cloglog": ("use ~ age + I(age**2) + urban + livch + (1 | district)", "contraception",
                {"link": "cloglog"}),
    "cbind": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", {}),
    "poisson": ("incidence ~ period + offset(log(size)) + (1 | herd)", "cbpp", {"family": "poisson"}),
}
#: relative tolerance of the fixed effects (and their exp) against lme4
FIXEF_RTOL = {"logit": 2e-3}
#: absolute tolerance of the fixed effects, as a share of R's standard error
FIXEF_ATOL_SE = {"logit": 1e-2}


@functools.lru_cache(maxsize=None)
def case(name):
    formula, data, kw = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.glmer(formula, mlm.load_dataset(data), **kw)


def values(name, key):
    """R's numbers for ``key`` of case ``name``, in R's (= mlm's) order of terms."""
    v = R[name][key]
    return np.array(list(v.values()) if isinstance(v, dict) else v, dtype=float)
