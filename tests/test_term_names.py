"""Issue 11: term and coefficient names given to the toolkit are matched regardless of
spaces, through the one normalisation :func:`mlm.formula.match_term`.

Each spelling is checked against the model's own spelling of the same call, so the
numbers are the ones the toolkit's own tests check against R.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlm

FORMULA = "mathach ~ cwc(ses, school) + C(sector) + (1 | school)"


@pytest.fixture(scope="module")
def fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.lmer(FORMULA, mlm.load_dataset("hsb"))


def test_confint_parm(fit):
    a = mlm.confint(fit, method="wald", parm="cwc(ses, school)")
    b = mlm.confint(fit, method="wald", parm="cwc(ses,school)")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(mlm.MLMError, match=r"parm names unknown parameter\(s\) 'cwc\(ses,schol\)'"):
        mlm.confint(fit, method="wald", parm="cwc(ses,schol)")


def test_test_with_a_contrast_frame_and_backticks(fit):
    names = list(fit.fixef.index)
    L = pd.DataFrame([[0.0] * len(names)], columns=names)
    L.loc[0, "cwc(ses, school)"] = 1.0
    a = mlm.test(fit, L)
    b = mlm.test(fit, L.rename(columns={"cwc(ses, school)": "cwc(ses,school)"}))
    np.testing.assert_allclose(a["estimate"], b["estimate"])
    c = mlm.test(fit, "`cwc( ses,school )` = 0")
    np.testing.assert_allclose(c["estimate"].iloc[0], fit.fixef["cwc(ses, school)"])
    with pytest.raises(mlm.MLMError, match=r"Unknown coefficient 'cwc\(ses,schol\)'"):
        mlm.test(fit, "`cwc(ses,schol)` = 0")


def test_marginal_means_specs(fit):
    a = mlm.marginal_means(fit, "sector")
    b = mlm.marginal_means(fit, " sector ")
    np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float))
