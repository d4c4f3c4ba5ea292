"""mlm.variance_tests: HLM's chi-square tests of the variance components and reliabilities.

Published values: Raudenbush & Bryk (2002), Hierarchical Linear Models, 2nd ed., tables
4.2-4.5 (the High School and Beyond sequence), and the HLM 6 output of the same null
model reproduced by UCLA's statistical consulting group for Singer (1998, J. Educ.
Behav. Stat. 23(4), p. 329): "INTRCPT1, U0  2.93501  8.61431  159  1660.23264",
reliability 0.901; and HLM7's reliabilities for sleepstudy's random intercept and slope
(0.730, 0.815; Stack Overflow question 48438755). The other checks are identities: the statistic computed group by
group with numpy's own least squares, and the reliability of a random intercept equal
to icc()'s HLM reliability (itself checked against R).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm
from mlm.inference import VarianceTestError, variance_tests
from support import fit, hsb_with_cses


@pytest.fixture(scope="module")
def hsb():
    return hsb_with_cses()


@pytest.fixture(scope="module")
def hsb_rb():
    """R&B's own cses: ses minus the school file's MEANSES (not the mean of these rows).

    With it the fixed effects of tables 4.4 and 4.5 reproduce R&B's to 4 decimals
    (12.1136, 5.3391, 1.2167, 2.9388, 1.0389, -1.6426), which they do not with the
    recomputed group mean.
    """
    d = mlm.load_dataset("hsb")
    d["cses"] = d["ses"] - d["meanses"]
    return d


def _by_hand(m, data, group, level1, tested):
    """The statistic from its definition, one np.linalg.lstsq per group (an identity)."""
    fe = m.fixef
    tau = dict(zip(m.varcorr["var1"].iloc[:len(tested)], m.varcorr["vcov"].iloc[:len(tested)]))
    s2 = m.sigma ** 2
    chi = dict.fromkeys(tested, 0.0)
    rel = dict.fromkeys(tested, 0.0)
    J = 0
    for _, g in data.groupby(group):
        X = np.column_stack([np.ones(len(g))] + [g[c].to_numpy() for c in level1])
        if len(g) < X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
            continue
        J += 1
        b = np.linalg.lstsq(X, g["mathach"].to_numpy(), rcond=None)[0]
        V = s2 * np.linalg.inv(X.T @ X)
        names = ["(Intercept)"] + list(level1)
        for q, name in enumerate(names):
            if name not in tested:
                continue
            w = g.iloc[0]
            # gamma_q' W_j from the fixed part: the coefficient's own term and its
            # cross-level terms with school variables (written out for these models)
            pred = fe.get(name, 0.0)
            for t, v in fe.items():
                parts = t.split(":")
                if name == "(Intercept)" and len(parts) == 1 and t not in names:
                    pred += v * w[t]
                elif name in parts and len(parts) == 2:
                    other = parts[0] if parts[1] == name else parts[1]
                    pred += v * w[other]
            chi[name] += (b[q] - pred) ** 2 / V[q, q]
            rel[name] += tau[name] / (tau[name] + V[q, q])
    return chi, {k: v / J for k, v in rel.items()}, J


# --- published values ---------------------------------------------------------------------
def test_null_model_table_4_2(hsb):
    tab = variance_tests(fit("mathach ~ 1 + (1 | school)", hsb))
    row = tab.loc["(Intercept)"]
    assert round(row["variance"], 2) == 8.61       # R&B table 4.2: tau00 = 8.61 (HLM 8.61431)
    assert row["df"] == 159                        # HLM: df 159
    assert round(row["chi_square"], 2) == 1660.23  # HLM: chi-square 1660.23264
    assert round(row["reliability"], 3) == 0.901   # HLM: reliability estimate 0.901
    assert row["p_value"] < 1e-100                 # HLM prints 0.000
    assert tab.attrs["groups_used"] == tab.attrs["groups"] == 160


def test_means_as_outcomes_table_4_3(hsb):
    tab = variance_tests(fit("mathach ~ meanses + (1 | school)", hsb))
    row = tab.loc["(Intercept)"]
    assert round(row["variance"], 5) == pytest.approx(2.63870, abs=2e-5)  # HLM: tau 2.63870
    assert row["df"] == 158                        # R&B table 4.3: df = 160 - 1 - 1
    assert round(row["chi_square"], 2) == 633.52   # R&B table 4.3: chi-square 633.52
    assert round(row["reliability"], 2) == 0.74    # R&B table 4.3: reliability .74
    assert tab.attrs["predictors"]["(Intercept)"] == ["(Intercept)", "meanses"]


@pytest.mark.parametrize("formula, published", [
    # R&B table 4.4, random-coefficient model: chi-square 1770.86 (intercept), 213.44 (slope)
    ("mathach ~ cses + (cses | school)",
     {"(Intercept)": (159, 1770.86, 0.907), "cses": (159, 213.44, None)}),
    # R&B table 4.5, intercepts and slopes as outcomes: 605.30 and 162.31
    ("mathach ~ meanses*cses + sector*cses + (cses | school)",
     {"(Intercept)": (157, 605.30, 0.733), "cses": (157, 162.31, None)}),
])
def test_random_slope_tables_4_4_and_4_5(hsb_rb, formula, published):
    # The statistic depends on the estimates of gamma and sigma^2. HLM stops iterating at
    # a "small change in likelihood function", before the REML optimum (its tau11: 0.68 in
    # table 4.4 and 0.15 in 4.5 against lme4's and mlm's 0.694 and 0.101), so with slopes
    # the published chi-squares are matched within 0.15 (1e-4 to 5e-4 relative), not to
    # their last printed digit, and the intercept reliabilities within 1e-3 (0.9076 against
    # the printed .907). df match exactly.
    tab = variance_tests(fit(formula, hsb_rb))
    for name, (df, chi2, rel) in published.items():
        assert tab.loc[name, "df"] == df
        assert tab.loc[name, "chi_square"] == pytest.approx(chi2, abs=0.15)
        if rel is not None:
            assert tab.loc[name, "reliability"] == pytest.approx(rel, abs=1e-3)


# --- identities -----------------------------------------------------------------------------
@pytest.mark.parametrize("formula, level1, tested", [
    ("mathach ~ 1 + (1 | school)", [], ["(Intercept)"]),
    ("mathach ~ meanses + sector + (1 | school)", [], ["(Intercept)"]),
    ("mathach ~ cses + (cses | school)", ["cses"], ["(Intercept)", "cses"]),
    ("mathach ~ meanses*cses + sector*cses + (cses | school)", ["cses"], ["(Intercept)", "cses"]),
    # a level-1 predictor with a fixed slope stays in each school's regression (HLM's model)
    ("mathach ~ cses + female + (1 | school)", ["cses", "female"], ["(Intercept)"]),
])
def test_matches_the_definition_group_by_group(hsb, formula, level1, tested):
    m = fit(formula, hsb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = variance_tests(m)
    chi, rel, J = _by_hand(m, hsb, "school", level1, tested)
    assert list(tab.index) == tested
    assert tab.attrs["groups_used"] == J
    n_pred = {q: len(v) for q, v in tab.attrs["predictors"].items()}
    for q in tested:
        assert tab.loc[q, "chi_square"] == pytest.approx(chi[q], rel=1e-9)
        assert tab.loc[q, "reliability"] == pytest.approx(rel[q], rel=1e-9)
        assert tab.loc[q, "df"] == J - n_pred[q]
        assert tab.loc[q, "p_value"] == pytest.approx(stats.chi2.sf(chi[q], J - n_pred[q]))
        assert tab.loc[q, "sd"] ** 2 == pytest.approx(tab.loc[q, "variance"])


def test_intercept_reliability_is_icc_reliability(hsb):
    # a random intercept: mean of tau00 / (tau00 + sigma2 / n_j), icc()'s HLM reliability
    m = fit("mathach ~ ses + (1 | school)", hsb)
    # icc's reliability uses sigma2 / n_j, i.e. the level-1 model has the intercept only
    m0 = fit("mathach ~ meanses + (1 | school)", hsb)
    assert variance_tests(m0).loc["(Intercept)", "reliability"] == pytest.approx(
        mlm.icc(m0).loc["school", "reliability"], rel=1e-10)
    assert variance_tests(m).loc["(Intercept)", "reliability"] < 1


def test_groups_without_enough_data_are_left_out_and_counted(hsb):
    # keep one student in 5 schools: they cannot have their own intercept-and-slope regression
    first = hsb["school"].drop_duplicates().iloc[:5]
    keep = ~hsb["school"].isin(first) | ~hsb.duplicated("school")
    d = hsb[keep]
    m = fit("mathach ~ cses + (cses | school)", d)
    with pytest.warns(UserWarning, match="based on only 155 of 160 units of 'school' that had "
                                         "sufficient data"):
        tab = variance_tests(m)
    assert tab.attrs["groups_used"] == 155
    assert (tab["df"] == 154).all()
    assert "155 of 160" in tab.attrs["note"]


def test_caller_data_unchanged(hsb):
    before = hsb.copy()
    variance_tests(fit("mathach ~ cses + (cses | school)", hsb))
    pd.testing.assert_frame_equal(hsb, before)


# --- what is refused ------------------------------------------------------------------------
def test_three_level_refused():
    m = fit("score ~ gcsescore + (1 | lea/school)", mlm.load_dataset("chem97"))
    with pytest.raises(VarianceTestError, match=r"two-level models with one grouping factor; "
                       r"this model has 2 nested \(a three-level model\) grouping factors.*HLM3"):
        variance_tests(m)


def test_crossed_refused():
    m = fit("diameter ~ 1 + (1 | plate) + (1 | sample)", mlm.load_dataset("penicillin"))
    with pytest.raises(VarianceTestError, match="2 crossed grouping factors.*mlm.compare"):
        variance_tests(m)


def test_no_group_with_enough_data(hsb):
    # ses and its group-mean-centred version are collinear within every school
    m = fit("mathach ~ ses + cses + (1 | school)", hsb)
    with pytest.raises(VarianceTestError, match="no group of 'school' has enough rows"):
        variance_tests(m)


def test_not_a_fit():
    with pytest.raises(VarianceTestError, match="must be a fitted model from mlm.lmer"):
        variance_tests(None)


def test_random_slope_reliabilities_hlm7_sleepstudy():
    # HLM7 on lme4's sleepstudy, Reaction ~ Days + (Days | Subject), REML, as posted in
    # Stack Overflow question 48438755 ("How to compute reliability estimates from lmer"):
    # "INTRCPT1, G0  0.730" and "DAYS, G1  0.815" (R&B 2002, eq. 3.58, averaged over units)
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    tab = variance_tests(m)
    assert round(tab.loc["(Intercept)", "reliability"], 3) == 0.730
    assert round(tab.loc["Days", "reliability"], 3) == 0.815
    assert (tab["df"] == 17).all()
