"""The profiled deviance: identities with lme4's output and between the engine's code paths.

lme4 numbers: tests/reference/lme4_core.json (tests/reference/lme4_core.R); each case
records ``theta`` (``getME(m, "theta")``) and the criterion (``REMLcrit(m)`` or
``deviance(m)``) at lme4's optimum.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlm
from mlm.engine import pls
from mlm.engine.pls import PLSProblem, psd_cholesky

REF = {c["id"]: c for c in json.loads(
    (Path(__file__).parent / "reference" / "lme4_core.json").read_text())["cases"]}

CASES = [
    ("sleep_slope_reml", "sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("pastes_nested_reml", "pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("penicillin_crossed_reml", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("scotssec_crossed_reml", "scotssec", "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
    ("exam_interaction_group_reml", "exam", "normexam ~ standLRT + (1 | school) + (1 | school:sex)"),
    ("hsb_uncorr_terms_reml", "hsb", "mathach ~ ses + (1 | school) + (0 + ses | school)"),
    ("chem97_slope_inner_reml", "chem97", "score ~ gcsescore + (1 | lea) + (gcsescore | school)"),
]


def design(data, formula):
    return mlm.build_design(formula, mlm.load_dataset(data))


def lme4_theta(case, problem, d):
    """lme4's theta, in our term order (lme4 orders terms by number of levels)."""
    values = list(case["theta"].values())
    order = sorted(range(len(d.blocks)), key=lambda i: -d.blocks[i].n_levels)
    sizes = [len(idx) for idx in pls.theta_layout(problem.ks)]
    chunks, pos = {}, 0
    for i in order:
        chunks[i] = values[pos:pos + sizes[i]]
        pos += sizes[i]
    return np.concatenate([chunks[i] for i in range(len(d.blocks))])


@pytest.mark.parametrize("cid, data, formula", CASES)
def test_deviance_at_lme4s_theta_is_lme4s_criterion(cid, data, formula):
    case = REF[cid]
    d = design(data, formula)
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=case["reml"])
    theta = lme4_theta(case, problem, d)
    # R: REMLcrit(m) (REML) or deviance(m) (ML) at getME(m, "theta")
    assert problem.deviance(theta) == pytest.approx(-2 * case["loglik"], abs=1e-6)


MULTI_FACTOR = [c for c in CASES if c[0] not in ("sleep_slope_reml", "hsb_uncorr_terms_reml")]


@pytest.mark.parametrize("cid, data, formula", MULTI_FACTOR)
def test_every_code_path_gives_the_same_deviance(cid, data, formula, monkeypatch):
    d = design(data, formula)
    theta = None
    values = {}
    for dense_q, dense_w, blocks in [(0, 0, True), (0, 0, False), (0, 10**9, True), (1000, 0, True)]:
        monkeypatch.setattr(PLSProblem, "DENSE_Q", dense_q)
        monkeypatch.setattr(pls._Remainder, "DENSE_MAX", dense_w)
        monkeypatch.setattr(pls._Remainder, "BLOCK_DIAG", blocks)
        problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
        if theta is None:
            theta = problem.theta_start() * 0.7 + 0.05
        mode = ("whole system dense" if problem.dense
                else "remainder " + problem.rem.mode + (" blocks" if problem.rem.block_diag else ""))
        sol = problem.solve(theta, cond_var=True)
        values[mode] = (problem.deviance(theta), sol)
    assert len(values) >= 2, values.keys()  # every design here has at least two paths
    ref_dev, ref_sol = next(iter(values.values()))
    for mode, (dev, sol) in values.items():
        assert dev == pytest.approx(ref_dev, rel=1e-11), mode
        np.testing.assert_allclose(sol.beta, ref_sol.beta, rtol=1e-9)
        np.testing.assert_allclose(sol.vcov_beta, ref_sol.vcov_beta, rtol=1e-8)
        for b, rb, cv, rcv in zip(sol.b, ref_sol.b, sol.cond_var, ref_sol.cond_var):
            np.testing.assert_allclose(b, rb, rtol=1e-7, atol=1e-10)
            np.testing.assert_allclose(cv, rcv, rtol=1e-7, atol=1e-12)


def test_deviance_varpar_equals_profiled_deviance_at_sigma_hat():
    fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    varpar = np.append(fit.theta, fit.sigma)
    assert fit.problem.deviance_varpar(varpar) == pytest.approx(fit.deviance, rel=1e-12)
    # sigma-hat minimises the unprofiled deviance
    for s in (0.98, 1.02):
        assert fit.problem.deviance_varpar(np.append(fit.theta, s * fit.sigma)) > fit.deviance


@pytest.mark.parametrize("S", [
    np.array([[4.0, 2.0], [2.0, 1.0]]),            # correlation +1
    np.array([[0.0, 0.0], [0.0, 2.0]]),            # zero variance first
    np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]]),
])
def test_psd_cholesky_reproduces_singular_covariances(S):
    L = psd_cholesky(S)
    assert np.allclose(np.triu(L, 1), 0)
    np.testing.assert_allclose(L @ L.T, S, atol=1e-12)


def test_optimizer_leaves_a_zero_variance_that_is_not_optimal():
    # lme4's default optimizer stops at a school-level intercept variance of zero
    # (logLik -70748.614); bobyqa and the optimum are at -70748.573 (lme4_core.json).
    case = REF["chem97_slope_inner_reml"]
    d = design("chem97", "score ~ gcsescore + (1 | lea) + (gcsescore | school)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    theta, info = problem.optimize()
    assert -0.5 * info["deviance"] == pytest.approx(case["loglik"], abs=0.01)
    assert -0.5 * info["deviance"] > case["default_optimizer_loglik"] + 0.03
    lea = d.blocks[0]
    assert lea.group_name == "lea" and theta[0] > 0.01  # off the bound, as lme4 with bobyqa


@pytest.mark.parametrize("seed", range(12))
def test_default_fit_is_as_good_as_random_restarts(seed):
    # Small simulated designs with slopes, zero variances, || terms and crossed factors:
    # the default optimizer must find the best optimum that six random starts find.
    import pandas as pd

    rng = np.random.default_rng(seed)
    G, m = int(rng.integers(5, 40)), int(rng.integers(3, 12))
    g = np.repeat(np.arange(G), m)
    x = rng.normal(0, rng.choice([1, 10]), g.size)
    sd0, sd1 = rng.choice([0, 0.3, 1, 3]), rng.choice([0, 0.1, 0.5])
    h = rng.integers(0, 4, g.size)
    y = (2 + x + rng.normal(0, sd0, G)[g] + rng.normal(0, sd1, G)[g] * x
         + rng.normal(0, 1, g.size) + (seed % 3 == 0) * rng.normal(0, 1, 4)[h])
    data = pd.DataFrame({"y": y, "x": x, "g": g, "h": h})
    formula = ["y ~ x + (x | g) + (1 | h)", "y ~ x + (x | g)", "y ~ x + (x || g)"][seed % 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mlm.lmer(formula, data)
    best = min(fit.problem.optimize(theta0=np.abs(np.random.default_rng(100 + s).normal(
        0, 1, fit.problem.n_theta)) + 0.01)[1]["deviance"] for s in range(6))
    assert fit.deviance <= best + 2e-3
