"""The closed forms for one grouping factor with one random column (mlm.engine.scalar)
against the general per-level kernels they specialise: the same deviance and gradient
to rounding, at the optimum, away from it and on the boundary."""

from __future__ import annotations

import numpy as np
import pytest

import mlm
from mlm.engine.gradient import gradient_from_factor

CASES = [
    ("mathach ~ 1 + (1 | school)", "hsb", True),
    ("mathach ~ ses * sector + (1 | school)", "hsb", False),
    ("Reaction ~ Days + (0 + Days | Subject)", "sleepstudy", True),
    ("normexam ~ standLRT + C(sex) + (1 | school)", "exam", True),
]


def general(problem, theta):
    """The per-level kernels' deviance and gradient (mlm.engine.pls / gradient)."""
    parts = problem._factor(theta)
    return problem._deviance_from(parts[7], parts[8], parts[5]), gradient_from_factor(problem, parts)


@pytest.mark.parametrize("formula,data,reml", CASES)
@pytest.mark.parametrize("factor", [1.0, 0.3, 2.5, 0.0])
def test_scalar_path_equals_general_kernels(formula, data, reml, factor):
    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    assert problem._scalar
    theta = fit.theta * factor
    dev, grad = problem.deviance_and_gradient(theta)
    dev0, grad0 = general(problem, theta)
    # both are sums over the same levels in another order: rounding only
    assert dev == pytest.approx(dev0, rel=1e-13)
    assert np.allclose(grad, grad0, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(grad0).max()))


@pytest.mark.parametrize("formula,data", [("mathach ~ ses + (ses | school)", "hsb"),
                                          ("score ~ gcsescore + (1 | lea/school)", "chem97")])
def test_scalar_path_is_only_for_one_factor_and_one_column(formula, data):
    fit = mlm.lmer(formula, mlm.load_dataset(data))
    assert not fit.problem._scalar


@pytest.mark.parametrize("formula,data,reml", CASES)
@pytest.mark.parametrize("cond_var", [False, True])
def test_scalar_solve_equals_general_solve(formula, data, reml, cond_var, monkeypatch):
    fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    problem = fit.problem
    fast = problem.solve(fit.theta, cond_var=cond_var)
    monkeypatch.setitem(problem.__dict__, "_scalar", False)   # the per-level kernels
    slow = problem.solve(fit.theta, cond_var=cond_var)
    assert fast.deviance == pytest.approx(slow.deviance, rel=1e-13)
    assert fast.sigma2 == pytest.approx(slow.sigma2, rel=1e-12)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(fast.vcov_beta, slow.vcov_beta, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(fast.b[0], slow.b[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.templates[0], slow.templates[0])
    if cond_var:
        np.testing.assert_allclose(fast.cond_var[0], slow.cond_var[0], rtol=1e-11)
    else:
        assert fast.cond_var is None and slow.cond_var is None
