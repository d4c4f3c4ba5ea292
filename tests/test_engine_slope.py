"""The closed forms for one grouping factor with a 2 x 2 template (mlm.engine.slope)
against the general per-level kernels they specialise: the same deviance, gradient,
gradient pieces (Satterthwaite's) and estimates to rounding, at the optimum, away from
it and on the boundary."""

from __future__ import annotations

import numpy as np
import pytest

import mlm
from mlm.engine.gradient import gradient_from_factor
from mlm.engine.slope import grad_pieces

CASES = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", False),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", True),
    ("mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)", "hsb", True),
    ("mathach ~ ses * sector + (ses | school)", "hsb", False),
    ("normexam ~ standLRT + C(sex) + (standLRT | school)", "exam", True),
]

#: theta multipliers: the optimum, away from it, and (0) every variance on its bound
FACTORS = [np.array([1.0, 1.0, 1.0]), np.array([0.3, -2.0, 1.7]), np.array([2.5, 0.5, 0.2]),
           np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])]


def general(problem, theta):
    """The per-level kernels' deviance and gradient (mlm.engine.pls / gradient)."""
    parts = problem._factor(theta)
    return problem._deviance_from(parts[7], parts[8], parts[5]), gradient_from_factor(problem, parts)


def _theta(fit, factor):
    return fit.theta * factor[:fit.theta.size]


def _close(a, b):
    b = np.asarray(b)
    return np.allclose(a, b, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("formula,data,reml", CASES)
@pytest.mark.parametrize("factor", range(len(FACTORS)))
def test_slope_path_equals_general_kernels(formula, data, reml, factor):
    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    assert problem._slope and not problem._scalar
    theta = _theta(fit, FACTORS[factor])
    dev, grad = problem.deviance_and_gradient(theta)
    dev0, grad0 = general(problem, theta)
    # both are sums over the same levels in another order: rounding only
    assert dev == pytest.approx(dev0, rel=1e-12)
    assert _close(grad, grad0)
    unsc, r2, d_f1, d_r2 = grad_pieces(problem, theta)
    parts = problem._factor(theta)
    f1_0, r2_0 = gradient_from_factor(problem, parts, pieces=True)
    assert r2 == pytest.approx(parts[7], rel=1e-12)
    assert _close(d_f1, f1_0) and _close(d_r2, r2_0)
    inv = np.linalg.inv(parts[5])
    np.testing.assert_allclose(unsc, inv.T @ inv, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("formula,data", [("mathach ~ ses + (1 | school)", "hsb"),
                                          ("score ~ gcsescore + (gcsescore | lea) + (1 | lea:school)",
                                           "chem97"),
                                          ("Reaction ~ Days + (Days + I(Days**2) | Subject)", "sleepstudy")])
def test_slope_path_is_only_for_one_factor_and_two_columns(formula, data):
    fit = mlm.lmer(formula, mlm.load_dataset(data))
    assert not fit.problem._slope


@pytest.mark.parametrize("formula,data,reml", CASES)
@pytest.mark.parametrize("cond_var", [False, True])
@pytest.mark.parametrize("factor", [0, 1, 4])
def test_slope_solve_equals_general_solve(formula, data, reml, cond_var, factor, monkeypatch):
    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    theta = _theta(fit, FACTORS[factor])
    fast = problem.solve(theta, cond_var=cond_var)
    monkeypatch.setitem(problem.__dict__, "_slope", False)   # the per-level kernels
    slow = problem.solve(theta, cond_var=cond_var)
    assert fast.deviance == pytest.approx(slow.deviance, rel=1e-12)
    assert fast.sigma2 == pytest.approx(slow.sigma2, rel=1e-11)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(fast.vcov_beta, slow.vcov_beta, rtol=1e-10, atol=1e-14)
    assert len(fast.b) == len(slow.b)
    for i in range(len(slow.b)):
        np.testing.assert_allclose(fast.b[i], slow.b[i], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(fast.templates[i], slow.templates[i])
        if cond_var:
            np.testing.assert_allclose(fast.cond_var[i], slow.cond_var[i], rtol=1e-10, atol=1e-14)
    if not cond_var:
        assert fast.cond_var is None and slow.cond_var is None


@pytest.mark.parametrize("formula,data,reml", CASES[:4])
def test_satterthwaite_through_the_slope_path_equals_general(formula, data, reml, monkeypatch):
    from mlm.engine.varpar import varpar_derivatives

    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    fast = varpar_derivatives(problem, fit.theta, fit.sigma)
    monkeypatch.setitem(problem.__dict__, "_slope", False)
    slow = varpar_derivatives(problem, fit.theta, fit.sigma)
    scale = np.abs(slow.hessian).max()
    np.testing.assert_allclose(fast.hessian, slow.hessian, rtol=1e-7, atol=1e-8 * scale)
    np.testing.assert_allclose(fast.d_unsc, slow.d_unsc, rtol=1e-6,
                               atol=1e-7 * np.abs(slow.d_unsc).max())
    np.testing.assert_allclose(fast.grad_r2, slow.grad_r2, rtol=1e-9,
                               atol=1e-9 * np.abs(slow.grad_r2).max())


@pytest.mark.parametrize("formula,data,reml", CASES[:3])
def test_refit_with_another_response_sets_the_system_up_again(formula, data, reml):
    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    y = np.asarray(fit.design.y, dtype=float)
    other = problem.with_response(y[np.random.default_rng(2).permutation(y.size)])
    problem.deviance_and_gradient(fit.theta)      # the parent's set-up exists
    dev, grad = other.deviance_and_gradient(fit.theta)
    dev0, grad0 = general(other, fit.theta)
    assert dev == pytest.approx(dev0, rel=1e-12)
    assert _close(grad, grad0)
