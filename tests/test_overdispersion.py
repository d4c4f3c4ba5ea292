"""check_overdispersion (mlm/toolkit/overdispersion.py) against performance::check_overdispersion.

Reference: ``tests/reference/glmm_toolkit.json`` (``overdispersion`` of each case, from
``performance::check_overdispersion(m)``, performance 0.10.2 on lme4 1.1.31 fits with
``tolPwrss = 1e-10``). Tolerance 1e-4 relative on the chi-square, ratio and p-value (the
Pearson residuals come from estimates that agree to about 1e-5); the df exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlm
from mlm.errors import MLMError
from mlm.toolkit.overdispersion import OverdispersionTest, check_overdispersion
from test_glmm_variance import _fit

REF = json.loads((Path(__file__).parent / "reference" / "glmm_toolkit.json").read_text())["cases"]
CASES = [k for k, v in REF.items() if isinstance(v, dict) and "overdispersion" in v]
REL = 1e-4


@pytest.mark.parametrize("case", CASES)
def test_matches_performance(case):
    od, test = REF[case]["overdispersion"], check_overdispersion(_fit(case))
    assert test.df_resid == od["df"]                                     # R: check_overdispersion(m)$residual_df
    assert test.chisq == pytest.approx(od["chisq"], rel=REL)             # ...$chisq_statistic
    assert test.ratio == pytest.approx(od["ratio"], rel=REL)             # ...$dispersion_ratio
    assert test.p_value == pytest.approx(od["p_value"], rel=REL, abs=1e-10)  # ...$p_value
    assert test.detected == (od["p_value"] <= 0.05)


def test_printed_verdict_and_series():
    test = check_overdispersion(_fit("cbpp_poisson_offset"))
    text = str(test)
    assert text.startswith("# Overdispersion test")
    assert "Pearson's Chi-Squared = 57.054" in text  # R prints 57.054
    assert text.endswith("No overdispersion detected (dispersion ratio 1.12, p = 0.260).")
    s = test.to_series()
    assert list(s.index) == ["chisq", "ratio", "df_resid", "p_value"] and s.name == "overdispersion"


def test_detected_sentence_says_what_to_do():
    # the analytic rule: chi-square upper tail <= 0.05 -> detected, with the way out
    t = OverdispersionTest(chisq=120.0, ratio=120.0 / 51, df_resid=51, p_value=1e-7,
                           formula="y ~ x + (1 | g)", family="poisson")
    assert t.detected
    assert t.sentence.startswith("Overdispersion detected: the counts vary 2.35 times as much")
    assert "(1 | obs)" in t.sentence and "p = < 0.001" in str(t)


def test_bernoulli_refused():
    # performance 0.10.2's merMod method computes a number for a 0/1 glmer fit
    # (R: bernoulli_mermod in the JSON); its glm method refuses, as mlm does
    assert REF["bernoulli_glm_error"] == "Overdispersion checks cannot be used for Bernoulli models."
    with pytest.raises(MLMError, match=r"cannot test a binary \(0/1\) outcome: .* one trial per row"):
        check_overdispersion(_fit("contra_intercept"))


def test_linear_fit_refused():
    fit = mlm.lmer("Reaction ~ Days + (1 | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(MLMError, match=r"tests a Poisson or binomial glmer fit; this is a linear model"):
        check_overdispersion(fit)


@pytest.mark.parametrize("thing", [None, "y ~ x", np.arange(3)])
def test_not_a_fit_refused(thing):
    with pytest.raises(MLMError, match=r"check_overdispersion\(\)'s argument must be a fitted model"):
        check_overdispersion(thing)


def test_exported():
    assert mlm.check_overdispersion is check_overdispersion
    assert "check_overdispersion" in mlm.__all__ and "OverdispersionTest" in mlm.__all__
