"""mlm.robust against clubSandwich (tests/reference/inference_robust.R -> .json).

Required agreement (issue 12): standard errors within 0.5%, df within 1%. The fits
themselves agree with lme4 to about 1e-4 relative (the optimizer's tolerance), which
moves the robust SEs and df by far less than these bounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlm
from mlm.inference import RobustError, robust
from support import fit, hsb_with_cses

REF = json.loads((Path(__file__).parent / "reference" / "inference_robust.json").read_text())
SE_REL = 1e-3   # issue 12 asks for 0.5%; measured agreement is 3e-8
DF_REL = 1e-3   # issue 12 asks for 1%; measured agreement is 3e-8


def _data(case):
    if case.startswith("hsb"):
        return hsb_with_cses()
    if case.startswith("sleep"):
        d = mlm.load_dataset("sleepstudy")
        if case == "sleep_unbalanced":  # R: sleepstudy[seq_len(nrow(sleepstudy)) %% 7 != 0, ]
            d = d[(np.arange(len(d)) + 1) % 7 != 0]
        return d
    return mlm.load_dataset("chem97")


@pytest.fixture(scope="module", params=[k for k in REF if k != "versions"])
def case(request):
    ref = REF[request.param]
    return request.param, ref, fit(ref["formula"], _data(request.param))


@pytest.mark.parametrize("type_", ["CR2", "CR1", "CR0"])
def test_against_clubsandwich(case, type_):
    name, ref, m = case
    tab = robust(m, type_)
    assert tab.attrs["cluster"] == ref["cluster"]        # clubSandwich's get_outer_group
    assert tab.attrs["clusters"] == ref["clusters"]
    for term in tab.index:
        # sqrt(diag(vcovCR(m, type = type_)))
        assert tab.loc[term, "std_error"] == pytest.approx(ref[type_]["se"][term], rel=SE_REL)
        # coef_test(m, vcov = type_, test = "Satterthwaite")$df_Satt
        assert tab.loc[term, "df"] == pytest.approx(ref[type_]["df"][term], rel=DF_REL)
        # the estimates are the model's (lme4's fixef)
        assert tab.loc[term, "estimate"] == pytest.approx(ref["fixef"][term], rel=1e-4, abs=1e-6)


def test_table_is_consistent():
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    tab = robust(m, "CR2", level=0.9)
    assert tab.index.name == "term"
    assert list(tab.columns) == ["estimate", "std_error", "df", "statistic", "p_value",
                                 "conf_low", "conf_high"]
    from scipy import stats
    t = tab["estimate"] / tab["std_error"]
    np.testing.assert_allclose(tab["statistic"], t)
    np.testing.assert_allclose(tab["p_value"], 2 * stats.t.sf(np.abs(t), tab["df"]))
    half = stats.t.ppf(0.95, tab["df"]) * tab["std_error"]
    np.testing.assert_allclose(tab["conf_high"] - tab["estimate"], half)
    V = tab.attrs["vcov"]
    np.testing.assert_allclose(np.sqrt(np.diag(V)), tab["std_error"])


def test_cr0_is_what_hlm_prints():
    # HLM 6, R&B's null model on HSB (UCLA's reproduction of Singer 1998, p. 329), "Final
    # estimation of fixed effects (with robust standard errors)": G00 12.636972, SE 0.243628
    m = fit("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    tab = robust(m, "CR0")
    assert round(tab.loc["(Intercept)", "std_error"], 6) == 0.243628
    assert round(tab.loc["(Intercept)", "estimate"], 5) == 12.63697


def test_cr1_is_cr0_times_j_over_j_minus_1():
    # clubSandwich: CR1 multiplies the CR0 estimating matrices by sqrt(J / (J - 1))
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    J = 18
    np.testing.assert_allclose(robust(m, "CR1")["std_error"],
                               robust(m, "CR0")["std_error"] * np.sqrt(J / (J - 1)), rtol=1e-12)


def test_named_cluster_and_summary():
    d = mlm.load_dataset("chem97")
    m = fit("score ~ gcsescore + (1 | lea/school)", d)
    tab = robust(m, "CR0", cluster="lea")
    assert tab.attrs["cluster"] == "lea"
    m2 = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    text = m2.summary(robust="CR2")
    assert "cluster-robust standard errors (CR2, clustered on Subject, 18 clusters" in text
    assert "Robust SE" in text and "Model SE" in text
    assert "Robust SE" not in m2.summary()


@pytest.mark.parametrize("kwargs, message", [
    ({"type": "HC3"}, "type='HC3' is not available; use one of CR2, CR1, CR0"),
    ({"cluster": "school"}, "cluster='school' is not a grouping factor of this model"),
    ({"level": 95}, "level must be between 0 and 1"),
])
def test_bad_arguments(kwargs, message):
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(RobustError, match=message):
        robust(m, **kwargs)


def test_summary_rejects_unknown_type():
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(RobustError, match="type='HC1' is not available"):
        m.summary(robust="HC1")


def test_crossed_refused():
    m = fit("strength ~ 1 + (1 | sample) + (1 | batch)", mlm.load_dataset("pastes"))
    # sample is nested in batch in pastes; a truly crossed design: penicillin
    p = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", mlm.load_dataset("penicillin"))
    with pytest.raises(RobustError, match="is not nested in the cluster 'sample'.*crossed design"):
        robust(p)
    assert robust(m).attrs["cluster"] == "batch"


def test_nested_cluster_must_contain_the_others():
    m = fit("score ~ gcsescore + (1 | lea/school)", mlm.load_dataset("chem97"))
    with pytest.raises(RobustError, match="'lea' is not nested in the cluster 'school:lea'"):
        robust(m, cluster="school:lea")


def test_not_a_fit():
    with pytest.raises(RobustError, match="must be a fitted model from mlm.lmer"):
        robust("mathach ~ 1")
