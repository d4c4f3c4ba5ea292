"""The exact gradient of the profiled deviance (mlm.engine.gradient, gradient_rem) and the
optimiser that uses it (mlm.engine.optimize).

The gradient is checked against central differences of the deviance itself, an analytic
identity: with step ``h = 1e-5`` (relative) the truncation error is O(h^2) ~ 1e-10 and the
rounding error about ``eps |dev| / h`` ~ 1e-6 absolute for deviances near 1e5, so the
two agree to 1e-6 relative (``max(1, |slope|)``), the bound the issue asks for.
Fits are compared with lme4 through tests/reference/lme4_core.json (lme4_core.R).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.engine import pls
from mlm.engine.pls import PLSProblem

REF = {c["id"]: c for c in json.loads(
    (Path(__file__).parent / "reference" / "lme4_core.json").read_text())["cases"]}

MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)"),
    ("hsb", "mathach ~ ses + (1 | school) + (0 + ses | school)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("chem97", "score ~ gcsescore + (1 | lea/school)"),
    ("chem97", "score ~ gcsescore + (1 | lea) + (gcsescore | school)"),
    ("scotssec", "attain ~ verbal + sex + (verbal | primary) + (1 | second)"),
    ("exam", "normexam ~ standLRT + (1 | school) + (1 | school:sex)"),
]
IDS = [f"{d}:{f.split('~')[1].strip()}" for d, f in MODELS]

_DESIGNS = {}


def design(data, formula):
    key = (data, formula)
    if key not in _DESIGNS:
        _DESIGNS[key] = mlm.build_design(formula, mlm.load_dataset(data))
    return _DESIGNS[key]


def central(problem, theta, h=1e-5):
    out = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h * max(1.0, abs(theta[j]))
        out[j] = (problem.deviance(theta + e) - problem.deviance(theta - e)) / (2 * e[j])
    return out


def assert_gradient(problem, theta):
    dev, g = problem.deviance_and_gradient(theta)
    assert g is not None, "this layout has an exact gradient"
    assert dev == pytest.approx(problem.deviance(theta), abs=1e-9)
    num = central(problem, theta)
    np.testing.assert_array_less(np.abs(g - num), 1e-6 * np.maximum(1.0, np.abs(num)))


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("data, formula", MODELS, ids=IDS)
def test_gradient_matches_central_differences(data, formula, reml):
    d = design(data, formula)
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=reml)
    theta = problem.theta_start() * 0.6 + np.random.default_rng(1).uniform(0.05, 0.3, problem.n_theta)
    assert_gradient(problem, theta)


# (DENSE_Q, DENSE_MAX, BLOCK_DIAG): the whole system dense; the remainder nested batched,
# nested dense, dense W, sparse W
PATHS = [(1000, 0, True), (0, 0, True), (0, 0, False), (0, 10**9, True)]


MULTI_FACTOR = MODELS[3:]


@pytest.mark.parametrize("data, formula", MULTI_FACTOR, ids=IDS[3:])
def test_every_code_path_gives_the_same_gradient(data, formula, monkeypatch):
    d = design(data, formula)
    grads = {}
    for dense_q, dense_w, blocks in PATHS:
        monkeypatch.setattr(PLSProblem, "DENSE_Q", dense_q)
        monkeypatch.setattr(pls._Remainder, "DENSE_MAX", dense_w)
        monkeypatch.setattr(pls._Remainder, "BLOCK_DIAG", blocks)
        problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
        theta = problem.theta_start() * 0.7 + 0.05
        mode = ("dense" if problem.dense else problem.rem.mode
                + (" blocks" if problem.rem.block_diag else ""))
        g = problem.deviance_and_gradient(theta)[1]
        if g is not None:
            grads[mode] = g
    assert len(grads) >= 2, grads.keys()
    first = next(iter(grads.values()))
    for g in grads.values():
        np.testing.assert_allclose(g, first, rtol=1e-8, atol=1e-8 * np.max(np.abs(first)))


def test_gradient_on_the_boundary():
    # a singular fit: sleepstudy's slope SD at zero (T[1, 1] = 0) and a zero intercept
    # variance in Pastes. The deviance is even in a diagonal entry at 0 (it enters through
    # T T'), so its slope there is exactly 0; the other slopes are still exact.
    d = design("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    theta = np.array([0.9, 0.2, 0.0])
    assert_gradient(problem, theta)
    assert problem.deviance_and_gradient(theta)[1][2] == 0.0
    d = design("pastes", "strength ~ 1 + (1 | batch/cask)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=False)
    theta = np.array([2.0, 0.0])
    assert_gradient(problem, theta)


def test_gradient_vanishes_at_lme4s_optimum():
    # R: m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy); getME(m, "theta")
    # (lme4_core.json). lme4 stops at a relative tolerance of about 1e-6 in theta, so the
    # slope there is small against the curvature: a Newton step gains < 1e-6.
    case = REF["sleep_slope_reml"]
    d = design("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    theta = np.array(list(case["theta"].values()))
    check = problem.check_convergence(theta)
    assert check["converged"] and check["decrement"] < 1e-6


def test_optimum_matches_lme4_with_fewer_evaluations():
    # R: lmer(mathach ~ ses + (1 | school) + (0 + ses | school), hsb): logLik in lme4_core.json
    case = REF["hsb_uncorr_terms_reml"]
    d = design("hsb", "mathach ~ ses + (1 | school) + (0 + ses | school)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    theta, info = problem.optimize()
    assert -0.5 * info["deviance"] == pytest.approx(case["loglik"], abs=1e-6)
    assert info["converged"] and info["gradient"] < 1e-3
    # the exact gradient replaces n_theta + 1 evaluations per iteration; counted here
    # so that a regression to differencing shows (the differencing optimiser took 113)
    assert info["evaluations"] < 40


def test_check_convergence_flags_a_point_short_of_the_optimum():
    d = design("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    theta, info = problem.optimize()
    assert problem.check_convergence(theta)["converged"]
    off = problem.check_convergence(theta * 1.2)
    assert not off["converged"] and off["decrement"] > 1e-3


def _crossed_slopes_design(formula):
    # crossed factors a (300 levels) and b (8) with random slopes
    rng = np.random.default_rng(3)
    n = 3000
    a, b = rng.integers(0, 300, n), rng.integers(0, 8, n)
    x = rng.standard_normal(n)
    y = (1 + x + rng.normal(0, 1, 300)[a] + rng.normal(0, 0.4, 300)[a] * x
         + rng.normal(0, 0.5, 8)[b] * x + rng.normal(0, 1, n))
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    return mlm.build_design(formula, data)


SLOPES = ["y ~ x + (1 | a) + (x | b)", "y ~ x + (x | a) + (x | b)"]


@pytest.mark.parametrize("dense_w", [0, 10**9], ids=["sparse", "dense"])
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("formula", SLOPES)
def test_gradient_of_a_crossed_remainder_with_two_columns(formula, dense_w, reml, monkeypatch):
    # b's two columns make Lambda2 non-diagonal (mlm.engine.gradient_crossed)
    monkeypatch.setattr(pls._Remainder, "DENSE_MAX", dense_w)
    d = _crossed_slopes_design(formula)
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=reml)
    assert problem.rem.mode == ("sparse" if dense_w == 0 else "dense")
    assert [problem.group_names[i] for i in problem.primary] == ["a"]
    theta = problem.theta_start() * 0.6 + np.random.default_rng(2).uniform(0.05, 0.3, problem.n_theta)
    assert_gradient(problem, theta)
    theta[-1] = 0.0  # on the boundary: b's slope variance at zero
    assert_gradient(problem, theta)


@pytest.mark.parametrize("formula", SLOPES)
def test_elimination_order_changes_neither_deviance_nor_gradient(formula):
    # the same criterion through another factorisation: b eliminated first, or a
    d = _crossed_slopes_design(formula)
    by_size = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    b_first = PLSProblem(d.y, d.X, d.pls_terms(), reml=True, primary="b")
    assert [by_size.group_names[i] for i in by_size.primary] == ["a"]
    assert by_size.has_gradient and b_first.has_gradient
    for theta in (by_size.theta_start(), by_size.theta_start() * 0.7 + 0.1):
        dev, g = by_size.deviance_and_gradient(theta)
        dev_b, g_b = b_first.deviance_and_gradient(theta)
        assert dev == pytest.approx(dev_b, rel=1e-12)
        np.testing.assert_allclose(g, g_b, rtol=1e-7, atol=1e-7 * np.abs(g).max())


@pytest.mark.parametrize("exact", [True, False], ids=["exact gradient", "differences"])
def test_crossed_slopes_fit_finds_the_optimum_of_random_restarts(exact, monkeypatch):
    # both optimisers (the differencing one is what a layout without a gradient would get)
    if not exact:
        monkeypatch.setattr(PLSProblem, "has_gradient", property(lambda self: False))
    d = _crossed_slopes_design(SLOPES[1])
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=True)
    assert problem.has_gradient is exact
    theta, info = problem.optimize()
    assert info["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = min(problem.optimize(theta0=np.abs(np.random.default_rng(s).normal(0, 1, problem.n_theta))
                                    + 0.01)[1]["deviance"] for s in range(4))
    assert info["deviance"] <= best + 1e-6
