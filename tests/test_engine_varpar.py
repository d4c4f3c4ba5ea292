"""Second derivatives of the deviance in (theta, sigma) from the exact gradient
(mlm.engine.varpar), against numDeriv's genD scheme (lmerTest's) and central differences.

Tolerances.

* Gradient pieces ``d f1`` and ``d r2`` against central differences of ``f1`` and ``r2``
  (step ``h = 1e-5`` relative): truncation O(h^2) ~ 1e-10, rounding ~ 1e-12 |f| / h, as for
  the whole gradient in tests/test_engine_gradient.py; both stay below
  ``1e-6 max(1, |slope|)`` (measured: 2e-8 at worst, r2 of ScotsSec).
* Hessian and Jacobian of ``(R_X'R_X)^{-1}`` against genD (Richardson over relative steps
  0.1 to 0.0125). Ours errs by ~1e-9 (the error analysis at
  ``mlm.engine.varpar.REL_STEP``); genD's truncation is removed to O(h^8) but its second
  differences of the deviance lose ``eps_D |D| / h^2`` to rounding, ``eps_D`` ~ 1e-13 for
  r2 (a difference of sums of squares), ``|D| / |H|`` up to ~1e2 and ``h`` down to
  ``0.0125 |theta|``, which is ~1e-7 of the largest Hessian entry for theta ~ 0.1 (HSB's
  off-diagonal entry -0.004 moves genD's estimate by 1e-7 when its step changes from 0.1
  to 0.03). So the two agree to 1e-6 of the largest entry (Hessian) and 1e-6 of the
  largest derivative (Jacobian, whose differences are of the smooth (R_X'R_X)^{-1}).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.engine import varpar
from mlm.engine.gradient import gradient_from_factor
from mlm.engine.pls import PLSProblem
from mlm.inference import ddf
from support import fit as quiet_fit

# one factor (random slope); nested (batched remainder); nested and crossed with the whole
# system dense (small q); crossed with a sparse remainder; a crossed slope fit on the
# boundary (ScotsSec's slope variance term at 0)
LAYOUTS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)"),
    ("chem97", "score ~ gcsescore + (1 | lea/school)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("scotssec", "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
    ("scotssec", "attain ~ verbal + sex + (verbal | primary) + (1 | second)"),
]
IDS = [f"{d}:{f.split('~')[1].strip()}" for d, f in LAYOUTS]

_FITS = {}


def get_fit(data, formula, reml):
    key = (data, formula, reml)
    if key not in _FITS:
        _FITS[key] = quiet_fit(formula, mlm.load_dataset(data), reml=reml)
    return _FITS[key]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("data, formula", LAYOUTS, ids=IDS)
def test_hessian_and_jacobian_match_gen_d(data, formula, reml):
    fit = get_fit(data, formula, reml)
    problem, theta, sigma = fit.problem, np.asarray(fit.theta), fit.sigma
    assert problem.has_gradient
    new = varpar.varpar_derivatives(problem, theta, sigma)
    ref = varpar.varpar_derivatives(problem, theta, sigma, method="genD")
    assert new.method == "gradient" and ref.method == "genD"
    scale_h = np.max(np.abs(ref.hessian))
    np.testing.assert_allclose(new.hessian, ref.hessian, rtol=0, atol=1e-6 * scale_h)
    np.testing.assert_allclose(new.d_unsc, ref.d_unsc, rtol=0, atol=1e-6 * np.max(np.abs(ref.d_unsc)))
    np.testing.assert_allclose(new.grad_r2, ref.grad_r2, rtol=0, atol=1e-6 * np.max(np.abs(ref.grad_r2)))
    # the centre is the fit's own: vcov(beta) = sigma^2 (R_X'R_X)^{-1}, r2 = m sigma^2
    np.testing.assert_allclose(sigma ** 2 * new.unsc, fit.solution.vcov_beta, rtol=1e-10)
    m = problem.n - problem.p if reml else problem.n
    assert new.r2 == pytest.approx(m * sigma ** 2, rel=1e-10)


def test_boundary_fit_steps_across_zero():
    # ScotsSec's slope fit has theta = (0.26, 0.002, 0, 0.054): the lone diagonal entry at 0.
    # The deviance is even in it, so the central differences of every other gradient entry
    # across 0 cancel exactly, and its own curvature is grad(h) / h = H + O(h^2).
    fit = get_fit(*LAYOUTS[-1], True)
    theta = np.asarray(fit.theta)
    assert theta[2] == 0.0
    der = varpar.varpar_derivatives(fit.problem, theta, fit.sigma)
    assert np.all(der.hessian[2, [0, 1, 3, 4]] == 0.0)
    assert np.all(der.d_unsc[2] == 0.0)
    assert der.hessian[2, 2] > 0


def test_satterthwaite_parts_use_the_gradient_and_fall_back_to_gen_d(monkeypatch):
    # two crossed factors with two columns each (q > DENSE_Q): the remainder term has two
    # columns, which the exact gradient covers (mlm.engine.gradient_crossed); genD, as
    # before, for a layout without one, and both agree to 1e-6 of the largest entry (the
    # module's tolerances)
    rng = np.random.default_rng(3)
    n = 1500
    a, b = rng.integers(0, 150, n), rng.integers(0, 8, n)
    x = rng.standard_normal(n)
    y = (1 + x + rng.normal(0, 1, 150)[a] + rng.normal(0, 0.4, 150)[a] * x
         + rng.normal(0, 0.5, 8)[b] * x + rng.normal(0, 1, n))
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    fit = quiet_fit("y ~ x + (x | a) + (x | b)", data)
    assert fit.problem.has_gradient
    exact = varpar.varpar_derivatives(fit.problem, fit.theta, fit.sigma)
    assert exact.method == "gradient"
    monkeypatch.setattr(PLSProblem, "has_gradient", property(lambda self: False))
    der = varpar.varpar_derivatives(fit.problem, fit.theta, fit.sigma)
    assert der.method == "genD"
    np.testing.assert_allclose(exact.hessian, der.hessian, rtol=0,
                               atol=1e-6 * np.abs(der.hessian).max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.all(np.isfinite(fit.coefficients["df"]))


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("data, formula", LAYOUTS, ids=IDS)
def test_gradient_pieces_match_central_differences(data, formula, reml):
    d = mlm.build_design(formula, mlm.load_dataset(data))
    problem = PLSProblem(d.y, d.X, d.pls_terms(), reml=reml)
    theta = problem.theta_start() * 0.6 + np.random.default_rng(1).uniform(0.05, 0.3, problem.n_theta)
    parts = problem._factor(theta)
    g_f1, g_r2 = gradient_from_factor(problem, parts, pieces=True)
    num_f1, num_r2 = np.empty_like(theta), np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = 1e-5 * max(1.0, abs(theta[j]))
        _, f_up, r_up = varpar._pieces(problem, theta + e)
        _, f_dn, r_dn = varpar._pieces(problem, theta - e)
        num_f1[j] = (f_up - f_dn) / (2 * e[j])
        num_r2[j] = (r_up - r_dn) / (2 * e[j])
    np.testing.assert_array_less(np.abs(g_f1 - num_f1), 1e-6 * np.maximum(1.0, np.abs(num_f1)))
    np.testing.assert_array_less(np.abs(g_r2 - num_r2), 1e-6 * np.maximum(1.0, np.abs(num_r2)))
    # the pieces make the gradient: d f1 + (m / r2) d r2
    m = problem.n - problem.p if reml else problem.n
    whole = gradient_from_factor(problem, parts)
    np.testing.assert_allclose(g_f1 + m / parts[7] * g_r2, whole, rtol=1e-12,
                               atol=1e-12 * np.max(np.abs(g_f1)))


def test_varpar_covariance_is_the_satterthwaite_hessian(monkeypatch):
    # the delta-method covariance of (theta, sigma) and Satterthwaite's A are one quantity:
    # twice the inverse Hessian (A is a pseudo-inverse, equal when H is regular)
    fit = get_fit(*LAYOUTS[1], True)
    cov = fit.problem.varpar_covariance(fit.theta, fit.sigma)
    np.testing.assert_allclose(cov, ddf.satterthwaite_parts(fit).A, rtol=1e-8,
                               atol=1e-10 * np.max(np.abs(cov)))
    # the second differences of the deviance it used before (step 1e-4: rounding
    # eps |D| / h^2 ~ 1e-4 of the Hessian) agree to 1e-3
    monkeypatch.setattr(PLSProblem, "has_gradient", property(lambda self: False))
    old = fit.problem.varpar_covariance(fit.theta, fit.sigma)
    np.testing.assert_allclose(cov, old, rtol=0, atol=1e-3 * np.max(np.abs(cov)))


@pytest.mark.parametrize("data, formula", [LAYOUTS[0], LAYOUTS[3], LAYOUTS[6]], ids=[IDS[0], IDS[3], IDS[6]])
def test_profiled_deviance_curvature_is_the_schur_complement(data, formula):
    # the profiler's Hessian of the ML deviance with sigma profiled out, now the Schur
    # complement D_tt - D_ts D_ss^-1 D_st of the (theta, sigma) Hessian, against central
    # second differences of that deviance (steps 1e-4 relative: rounding eps |D| / h^2 ~
    # 1e-4 of the largest entry, measured 1.4e-4 on sleepstudy)
    from mlm.inference.profile import Profiler, _hessian

    fit = get_fit(data, formula, True)
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    H, _ = prof._theta_curvature()
    h = 1e-4 * np.maximum(np.abs(prof.theta), 1e-2)
    num = _hessian(prof.ml.deviance, prof.theta, h)
    np.testing.assert_allclose(H, num, rtol=0, atol=1e-3 * np.max(np.abs(H)))
