"""The augmented-matrix path for one-column terms (mlm.engine.augmented) against the
blocked and dense kernels it replaces: the same deviance, gradient and gradient pieces
(Satterthwaite's) to rounding, at the optimum, away from it and on the boundary, REML
and ML, for whole-dense (Penicillin, Pastes) and blocked (ScotsSec) designs."""

from __future__ import annotations

import numpy as np
import pytest

import mlm
from mlm.engine.augmented import grad_pieces
from mlm.engine.gradient import gradient_from_factor

CASES = [
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    ("strength ~ 1 + (1 | batch/cask)", "pastes"),
    ("attain ~ verbal + sex + (1 | primary) + (1 | second)", "scotssec"),
    ("attain ~ verbal + (1 | primary) + (1 | second) + (1 | sex)", "scotssec"),
    ("Reaction ~ Days + (1 | Subject) + (1 | Days)", "sleepstudy"),
    ("normexam ~ standLRT + (1 | school) + (1 | student)", "exam"),
]

#: theta multipliers (as many as the model has entries are used): the optimum, away
#: from it, and variances on their bound of 0
FACTORS = [np.array([1.0, 1.0, 1.0]), np.array([0.3, 2.0, 0.7]), np.array([0.0, 1.0, 1.0]),
           np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0])]


def _close(a, b, rel=1e-9):
    b = np.asarray(b)
    return np.allclose(a, b, rtol=rel, atol=rel * max(1.0, np.abs(b).max()))


@pytest.fixture(scope="module", params=[(c, reml) for c in CASES for reml in (True, False)],
                ids=lambda p: f"{p[0][1]}-{p[0][0][:20]}-{'REML' if p[1] else 'ML'}")
def fitted(request):
    (formula, data), reml = request.param
    with _quiet():
        fit = mlm.lmer(formula, mlm.load_dataset(data), reml=reml)
    return fit


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


@pytest.mark.parametrize("factor", range(len(FACTORS)))
def test_augmented_path_equals_general_kernels(fitted, factor):
    problem = fitted.problem
    assert problem._augmented and not problem._scalar and not problem._slope
    theta = fitted.theta * FACTORS[factor][:fitted.theta.size]
    dev, grad = problem.deviance_and_gradient(theta)
    parts = problem._factor(theta)
    dev0 = problem._deviance_from(parts[7], parts[8], parts[5])
    grad0 = gradient_from_factor(problem, parts)
    # the same sums in another order, r2 from the factor's last diagonal entry: rounding
    assert dev == pytest.approx(dev0, rel=1e-12)
    assert _close(grad, grad0)
    unsc, r2, d_f1, d_r2 = grad_pieces(problem, theta)
    f1_0, r2_0 = gradient_from_factor(problem, parts, pieces=True)
    assert r2 == pytest.approx(parts[7], rel=1e-11)
    assert _close(d_f1, f1_0) and _close(d_r2, r2_0)
    inv = np.linalg.inv(parts[5])
    np.testing.assert_allclose(unsc, inv.T @ inv, rtol=1e-10, atol=1e-14)


def test_satterthwaite_through_the_augmented_path_equals_general(fitted, monkeypatch):
    from mlm.engine.varpar import varpar_derivatives

    problem = fitted.problem
    fast = varpar_derivatives(problem, fitted.theta, fitted.sigma)
    monkeypatch.setitem(problem.__dict__, "_augmented", False)
    slow = varpar_derivatives(problem, fitted.theta, fitted.sigma)
    # differences of gradients equal to 1e-12: the Hessian to 1e-12 / step (5e-5 relative)
    scale = np.abs(slow.hessian).max()
    np.testing.assert_allclose(fast.hessian, slow.hessian, rtol=1e-7, atol=1e-8 * scale)
    np.testing.assert_allclose(fast.d_unsc, slow.d_unsc, rtol=1e-6,
                               atol=1e-7 * max(np.abs(slow.d_unsc).max(), 1e-300))
    np.testing.assert_allclose(fast.grad_r2, slow.grad_r2, rtol=1e-9,
                               atol=1e-9 * np.abs(slow.grad_r2).max())


def test_refit_with_another_response_sets_the_system_up_again(fitted):
    problem = fitted.problem
    y = np.asarray(fitted.design.y, dtype=float)
    rng = np.random.default_rng(1)
    other = problem.with_response(y[rng.permutation(y.size)])
    theta = fitted.theta
    problem.deviance_and_gradient(theta)          # the parent's setup exists
    dev, grad = other.deviance_and_gradient(theta)
    parts = other._factor(theta)
    assert dev == pytest.approx(other._deviance_from(parts[7], parts[8], parts[5]), rel=1e-12)
    assert _close(grad, gradient_from_factor(other, parts))


@pytest.mark.parametrize("formula,data", [("mathach ~ ses + (1 | school)", "hsb"),
                                          ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
                                          ("score ~ gcsescore + (1 | lea/school)", "chem97"),
                                          ("normexam ~ standLRT + (standLRT | school) + (1 | student)",
                                           "exam")])
def test_augmented_path_is_only_for_small_one_column_designs(formula, data):
    fit = mlm.lmer(formula, mlm.load_dataset(data))
    assert not fit.problem._augmented
