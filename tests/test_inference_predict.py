"""fit.predict(newdata, interval=...) against lme4's quantities combined by hand in R
(tests/reference/inference_predict.R -> .json: vcov, ranef(condVar = TRUE), VarCorr, sigma)
and against the analytic variance of a new group's observation.

Tolerances: the fits agree with lme4 to about 1e-4 relative in the fixed effects and 1e-3
in the variance components (the reference tests' bounds), so interval ends are compared
within 1e-3 of the interval's half-width.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm
from mlm.errors import DataError
from support import fit

REF = json.loads((Path(__file__).parent / "reference" / "inference_predict.json").read_text())
DATA = {"sleep": "sleepstudy", "hsb": "hsb", "chem97": "chem97"}


@pytest.fixture(scope="module", params=["sleep", "hsb", "chem97"])
def case(request):
    ref = REF[request.param]
    m = fit(ref["formula"], mlm.load_dataset(DATA[request.param]))
    new = pd.DataFrame(ref["newdata"])
    new.index = [f"r{i}" for i in range(len(new))]
    return ref, m, new


@pytest.mark.parametrize("interval", ["confidence", "prediction"])
def test_against_lme4(case, interval):
    ref, m, new = case
    out = m.predict(new, interval=interval)
    assert list(out.columns) == ["fit", "lower", "upper"]
    assert list(out.index) == list(new.index)
    r = ref[interval]
    half = (np.array(r["upper"]) - np.array(r["lower"])) / 2
    # confidence: predict(m, newdata, re.form = NA) -+ qnorm(.975) sqrt(x' vcov(m) x)
    # prediction: predict(m, newdata, allow.new.levels = TRUE) -+ qnorm(.975) sqrt(x'Vx +
    #             z' postVar_j z (seen) or z' VarCorr z (unseen) + sigma(m)^2)
    np.testing.assert_allclose(out["fit"], r["fit"], rtol=1e-4, atol=1e-3 * half.min())
    np.testing.assert_allclose(out["lower"], r["lower"], atol=1e-3 * half.max())
    np.testing.assert_allclose(out["upper"], r["upper"], atol=1e-3 * half.max())


def test_unseen_group_variance_is_the_marginal_variance():
    # analytic identity: for a group not seen in fitting, Var(y_new - fit) =
    # x'Vx + z'Tz + sigma^2 with T the random-effects covariance; at Days = 0 in
    # Reaction ~ Days + (Days | Subject), z'Tz = tau00
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    new = pd.DataFrame({"Days": [0.0, 3.0], "Subject": ["new", "new"]})
    out = m.predict(new, interval="prediction", level=0.9)
    T = m.solution.covariances()[0]
    V = m.vcov.to_numpy()
    z = np.array([[1.0, 0.0], [1.0, 3.0]])
    var = np.einsum("ia,ab,ib->i", z, V, z) + np.einsum("ia,ab,ib->i", z, T, z) + m.sigma ** 2
    half = stats.norm.ppf(0.95) * np.sqrt(var)
    np.testing.assert_allclose(out["upper"] - out["fit"], half, rtol=1e-12)
    np.testing.assert_allclose(out["fit"], z @ m.fixef.to_numpy(), rtol=1e-12)
    # include_random=False treats every group as unseen: same interval for a seen subject
    seen = pd.DataFrame({"Days": [0.0, 3.0], "Subject": [308, 308]})
    marg = m.predict(seen, interval="prediction", level=0.9, include_random=False)
    np.testing.assert_allclose(marg.to_numpy(), out.to_numpy(), rtol=1e-12)


def test_defaults_and_missing_rows():
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    new = pd.DataFrame({"Days": [1.0, np.nan], "Subject": [308, 308]}, index=[10, 11])
    out = m.predict(new, interval="confidence")
    assert out.index.tolist() == [10, 11]
    assert out.loc[11].isna().all() and out.loc[10].notna().all()
    assert isinstance(m.predict(new), pd.Series)            # interval=None keeps the Series
    own = m.predict(interval="prediction")                  # the fitted rows
    np.testing.assert_allclose(own["fit"], m.fitted, rtol=1e-12)
    assert (own["lower"] < own["fit"]).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"interval": "credible"}, "interval='credible' is not available; use None, 'confidence' or "
                               "'prediction'"),
    ({"interval": "prediction", "level": 1.5}, "level must be between 0 and 1"),
])
def test_bad_arguments(kwargs, message):
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(DataError, match=message):
        m.predict(pd.DataFrame({"Days": [1.0], "Subject": [308]}), **kwargs)


def test_group_column_needed_only_for_seen_groups():
    m = fit("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    with pytest.raises(DataError, match="newdata lacks the column\\(s\\) 'Subject'"):
        m.predict(pd.DataFrame({"Days": [1.0]}), interval="prediction")
    # population-level intervals need no group column
    no_group = pd.DataFrame({"Days": [1.0]})
    assert m.predict(no_group, interval="confidence").notna().all().all()
    marg = m.predict(no_group, interval="prediction", include_random=False)
    new_group = m.predict(no_group.assign(Subject="new"), interval="prediction")
    np.testing.assert_allclose(marg.to_numpy(), new_group.to_numpy(), rtol=1e-12)
