"""Agreement with lme4 on every grammar item, for every engine that can fit the model.

Reference numbers: ``tests/reference/lme4_core.json``, written by
``tests/reference/lme4_core.R`` (R 4.2.2, lme4 1.1.31; the ``r_call`` of every case is in
the JSON and printed by the parametrize ids). CI does not need R.

Tolerances (issue 2): log-likelihood within 0.01 (absolute); fixed effects within 1e-4
relative; standard errors and variance components within 1e-3 relative. Correlations,
and variances that lme4 puts at zero (singular fits), are compared on an absolute
scale: 2e-3 for correlations, 1e-3 x the residual variance for variances.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_core.json").read_text())
CASES = {c["id"]: c for c in REF["cases"]}

# R formulas that patsy spells differently (R's ^ is patsy's **); the rest are the same.
PY_FORMULA = {
    "exam_transform_reml": "normexam ~ standLRT + I(standLRT**2) + (1 + I(standLRT**2) | school)",
    "sleep_double_bar_reml": "Reaction ~ Days + (Days || Subject)",
}
SLOW = {"insteval_crossed_ml"}


def case_data(case):
    data = mlm.load_dataset(case["data"])
    if case["id"].startswith("hsb_slopes_outcomes"):
        # R: cses = ses - ave(ses, school) (the JSON's "derived" field)
        data["cses"] = data["ses"] - data.groupby("school")["ses"].transform("mean")
    return data


def case_formula(case):
    return PY_FORMULA.get(case["id"], case["formula"])


def norm(name: str) -> str:
    return re.sub(r"\s+", "", name).replace("**", "^")


def engines_for(case):
    design = mlm.build_design(case_formula(case), case_data(case))
    from mlm.engine.mixedlm import statsmodels_layout
    layout, _ = statsmodels_layout(design)
    out = ["pls"]
    if layout is not None and case["id"] not in SLOW:
        out.append("statsmodels")
    return out


PARAMS = []
for cid, case in CASES.items():
    marks = [pytest.mark.slow] if cid in SLOW else []
    for engine in engines_for(case):
        PARAMS.append(pytest.param(cid, engine, id=f"{cid}-{engine}", marks=marks))


_FITS = {}


def fitted(cid, engine):
    key = (cid, engine)
    if key not in _FITS:
        case = CASES[cid]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITS[key] = mlm.lmer(case_formula(case), case_data(case), reml=case["reml"], engine=engine)
    return _FITS[key]


@pytest.mark.parametrize("cid, engine", PARAMS)
def test_loglik_and_information_criteria(cid, engine):
    case, fit = CASES[cid], fitted(cid, engine)
    assert fit.loglik == pytest.approx(case["loglik"], abs=0.01)          # R: logLik(m)
    assert fit.aic == pytest.approx(case["aic"], abs=0.02)                # R: AIC(m)
    assert fit.bic == pytest.approx(case["bic"], abs=0.02)                # R: BIC(m)
    assert fit.nobs == case["nobs"]                                       # R: nobs(m)
    assert fit.ngroups == {k: v for k, v in case["ngroups"].items()}      # R: ngrps(m)
    assert fit.singular == case["singular"]                               # R: isSingular(m)


@pytest.mark.parametrize("cid, engine", PARAMS)
def test_fixed_effects_and_standard_errors(cid, engine):
    case, fit = CASES[cid], fitted(cid, engine)
    names = list(case["fixef"])
    assert [norm(n) for n in fit.fixef.index] == [norm(n) for n in names]
    est = np.array([case["fixef"][n] for n in names])                     # R: fixef(m)
    se = np.array([case["se"][n] for n in names])                         # R: sqrt(diag(vcov(m)))
    np.testing.assert_allclose(fit.fixef.to_numpy(), est, rtol=1e-4, atol=1e-8 * np.abs(est).max())
    np.testing.assert_allclose(fit.coefficients["std_error"].to_numpy(), se, rtol=1e-3)


@pytest.mark.parametrize("cid, engine", PARAMS)
def test_variance_components(cid, engine):
    case, fit = CASES[cid], fitted(cid, engine)
    def key_of(grp, var1, var2):
        return (grp, norm(var1) if isinstance(var1, str) else None, norm(var2) if isinstance(var2, str) else None)

    ours = {key_of(r.grp, r.var1, r.var2): (r.vcov, r.sdcor) for r in fit.varcorr.itertuples()}
    sigma2 = case["sigma"] ** 2
    theirs = case["varcorr"]                                              # R: as.data.frame(VarCorr(m))
    assert len(ours) == len(theirs)
    for row in theirs:
        key = key_of(row["grp"], row["var1"], row["var2"])
        assert key in ours, f"{key} missing from {list(ours)}"
        vcov, sdcor = ours[key]
        if row["var2"] is None:
            assert vcov == pytest.approx(row["vcov"], rel=1e-3, abs=1e-3 * sigma2 if case["singular"] else 1e-9)
        else:
            assert sdcor == pytest.approx(row["sdcor"], abs=2e-3)
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-3)            # R: sigma(m)


@pytest.mark.parametrize("cid, engine", PARAMS)
def test_conditional_modes_fitted_and_residuals(cid, engine):
    case, fit = CASES[cid], fitted(cid, engine)
    if case["singular"]:
        pytest.skip("conditional modes of a singular fit depend on where the optimizer stopped")
    scale = case["sigma"]
    for g, ref in case["ranef"].items():                                  # R: ranef(m, condVar = TRUE)
        modes, sds = fit.ranef[g], fit.ranef_sd[g]
        labels = [str(x) for x in modes.index]
        for level in ref["first_levels"]:
            i = labels.index(level)
            for col, value in ref["modes"][level].items():
                j = [norm(c) for c in modes.columns].index(norm(col))
                assert modes.iloc[i, j] == pytest.approx(value, rel=2e-3, abs=2e-4 * scale)
                assert sds.iloc[i, j] == pytest.approx(ref["cond_sd"][level][col], rel=2e-3)
    np.testing.assert_allclose(fit.fitted.to_numpy()[:5], case["fitted_head"], rtol=1e-4)  # R: fitted(m)
    np.testing.assert_allclose(fit.residuals.to_numpy()[:5], case["resid_head"], atol=1e-3 * scale)


@pytest.mark.parametrize("cid", [c for c in CASES if "predict_new" in CASES[c]])
def test_predictions_fall_back_to_population_for_new_groups(cid):
    case = CASES[cid]
    fit = fitted(cid, "auto")
    new = pd.DataFrame(case["predict_newdata"])
    group = next(iter(case["ngroups"]))
    data = case_data(case)
    new[group] = new[group].astype(data[group].dtype)
    # R: predict(m, newdata, allow.new.levels = TRUE) and predict(m, newdata, re.form = NA)
    np.testing.assert_allclose(fit.predict(new).to_numpy(), case["predict_new"], rtol=1e-4)
    np.testing.assert_allclose(fit.predict(new, include_random=False).to_numpy(),
                               case["predict_new_fixed"], rtol=1e-4)
