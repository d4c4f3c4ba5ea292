"""Tests of mlm.results.base.ModelResult: what both families share (issue 14, item 2).

The numbers themselves are checked against lme4 in test_lme4_reference.py and
test_glmer_reference.py; here: that both result classes extend the one base, that the
members a GLMM gained from it (``ranef_table``, ``df_resid``, the notebook display) agree
with the members they are built from, and ``require_fit``'s ``glmm`` switch.
"""

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import DataError
from mlm.results.linear import require_fit
from mlm.results.base import ModelResult


@pytest.fixture(scope="module")
def fits():
    cbpp = mlm.load_dataset("cbpp")
    return {
        "linear": mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"),
                           reml=False),
        "binomial": mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp),
        "poisson": mlm.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp,
                             family="poisson"),
    }


@pytest.mark.parametrize("key", ["linear", "binomial", "poisson"])
def test_both_families_extend_the_base(fits, key):
    assert isinstance(fits[key], ModelResult)


@pytest.mark.parametrize("key", ["linear", "binomial", "poisson"])
def test_ranef_table_is_ranef_and_ranef_sd(fits, key):
    f = fits[key]
    t = f.ranef_table()
    assert list(t.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    for (g, term), part in t.groupby(["grpvar", "term"], sort=False):
        np.testing.assert_array_equal(part["condval"].to_numpy(), f.ranef[g][term].to_numpy())
        np.testing.assert_array_equal(part["condsd"].to_numpy(), f.ranef_sd[g][term].to_numpy())
        assert part["grp"].tolist() == f.ranef[g].index.astype(str).tolist()


@pytest.mark.parametrize("key", ["linear", "binomial", "poisson"])
def test_df_resid_is_nobs_minus_npar(fits, key):
    # lme4: df.residual(fit) = nobs - npar, the df.resid printed by summary()
    f = fits[key]
    assert f.df_resid == f.nobs - f.npar
    assert f"{f.df_resid:9d}" in f.summary()


def test_sleepstudy_ml_df_resid(fits):
    # R: df.residual(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)) = 174
    assert fits["linear"].df_resid == 174


@pytest.mark.parametrize("key", ["binomial", "poisson"])
def test_glmm_html(fits, key):
    f = fits[key]
    h = f._repr_html_()
    assert h.startswith("<p><b>Generalized linear mixed model</b>") and f.family.label in h
    assert h.count("<table") == 2 and "Wald z tests" in h
    assert f"logLik = {f.loglik:.3f}" in h


def test_require_fit_linear_only_by_default(fits):
    require_fit(fits["linear"])
    with pytest.raises(DataError, match=r"fit must be a fitted model from mlm\.lmer \(a MixedResult\), "
                                        r"not GLMMResult"):
        require_fit(fits["binomial"])


def test_require_fit_glmm_switch(fits):
    require_fit(fits["linear"], glmm=True)
    require_fit(fits["binomial"], glmm=True)
    with pytest.raises(DataError, match=r"mlm\.lmer or mlm\.glmer .* not DataFrame"):
        require_fit(pd.DataFrame(), glmm=True)
