"""mlm.anova against lmerTest's anova(m, type, ddf): types III and I, Satterthwaite and
Kenward-Roger, on two-level, three-level and crossed models.

Reference: tests/reference/inference_ddf.json (tests/reference/inference_ddf.R) and, for
factor x factor and three-way interactions, tests/reference/inference_anova.json
(tests/reference/inference_anova.R); lmerTest
3.1-3, pbkrtest 0.5.2). Tolerances as in test_inference_ddf.py (2e-3 relative on df, F,
sums of squares; p-values 1e-2 on the log scale).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlm
from mlm.inference.anova import _doolittle_lower, _zapsmall
from support import fit as quiet_fit
from test_inference_ddf import CASES, _close, _logp, as_list, get_fit

ANOVA = [(k, t, m) for k, c in CASES.items() for t in (3, 1)
         for m in (("satterthwaite", "kenward_roger") if c["reml"] else ("satterthwaite",))]


@pytest.mark.parametrize("case_id,type_,method", ANOVA)
def test_anova(case_id, type_, method):
    ref = CASES[case_id][f"anova{type_}_{method}"]   # R: anova(m, type = type_, ddf = method)
    out = mlm.anova(get_fit(case_id), type=type_, ddf=method.replace("_", "-"))
    assert list(out.index) == as_list(ref["term"])
    assert list(out.columns) == ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]
    if not ref["term"]:
        return
    _close(out["num_df"], ref["num_df"], rtol=0)
    _close(out["den_df"], ref["den_df"])
    _close(out["F"], ref["F"])
    _close(out["sum_sq"], ref["sum_sq"])
    _close(out["mean_sq"], ref["mean_sq"])
    _logp(out["p_value"], ref["p"])



def test_doolittle_and_zapsmall_identities():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4))
    S = X.T @ X
    Lw = _doolittle_lower(S)
    U = np.linalg.solve(Lw, S)           # S = L U with L unit lower triangular
    np.testing.assert_allclose(np.tril(Lw), Lw)
    np.testing.assert_allclose(np.diag(Lw), 1.0)
    np.testing.assert_allclose(np.tril(U, -1), 0.0, atol=1e-9)
    # R: zapsmall(c(1, 1e-9, 0.123456789)) -> 1.0000000 0.0000000 0.1234568
    np.testing.assert_array_equal(_zapsmall(np.array([1, 1e-9, 0.123456789])), [1.0, 0.0, 0.1234568])


def test_intercept_only_model_has_no_rows():
    out = mlm.anova(get_fit("penicillin_crossed"))
    assert out.empty and list(out.columns) == ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]


def test_bad_input():
    m = get_fit("sleep_slope")
    with pytest.raises(mlm.MLMError, match="Unknown ANOVA type 2"):
        mlm.anova(m, type=2)
    with pytest.raises(mlm.MLMError, match="use mlm.compare"):
        mlm.anova(m, get_fit("sleep_slope_ml"))
    with pytest.raises(mlm.MLMError, match="a fitted model"):
        mlm.anova("m")


# --- where containment matters: tests/reference/inference_anova.json (inference_anova.R) ------
REF2 = json.loads((Path(__file__).parent / "reference" / "inference_anova.json").read_text())
CASES2 = {c["id"]: c for c in REF2["cases"]}
_FITS2 = {}


def get_fit2(case_id):
    if case_id not in _FITS2:
        c = CASES2[case_id]
        _FITS2[case_id] = quiet_fit(c["formula"], mlm.load_dataset(c["data"]), reml=c["reml"])
    return _FITS2[case_id]


ANOVA2 = [(k, t, m) for k, c in CASES2.items() for t in (3, 1)
          for m in (("satterthwaite", "kenward_roger") if c["reml"] else ("satterthwaite",))]


@pytest.mark.parametrize("case_id,type_,method", ANOVA2)
def test_anova_interactions(case_id, type_, method):
    c = CASES2[case_id]
    ref = c[f"anova{type_}_{method}"]   # R: anova(m, type = type_, ddf = method)
    assert get_fit2(case_id).loglik == pytest.approx(c["loglik"], abs=0.01)   # R: logLik(m)
    out = mlm.anova(get_fit2(case_id), type=type_, ddf=method.replace("_", "-"))
    assert list(out.index) == as_list(ref["term"])
    _close(out["num_df"], ref["num_df"], rtol=0)
    _close(out["den_df"], ref["den_df"])
    _close(out["F"], ref["F"])
    _close(out["sum_sq"], ref["sum_sq"])
    _logp(out["p_value"], ref["p"])
