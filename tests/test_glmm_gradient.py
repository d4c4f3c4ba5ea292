"""The exact gradient of the Laplace deviance (mlm.glmm.gradient) against central differences.

An analytic identity: the adjoint gradient must equal the numerical derivative of the
deviance it differentiates, for lme4's stage-2 criterion in ``(theta, beta)`` and for its
``nAGQ = 0`` criterion in ``theta``. The step (1e-5) leaves a central difference of the
deviance (PIRLS converged to rounding) accurate to about 1e-7 relative.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mlm
from mlm.glmm.design import build_glmm_design
from mlm.glmm.engine import GLMMProblem
from mlm.glmm.family import make_family
from mlm.glmm.gradient import laplace_gradient, supports_gradient


@pytest.fixture(scope="module")
def sim():
    """A 0/1 outcome with a random intercept and slope, and a Poisson count (seeded)."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(40), 15)
    x = rng.normal(size=g.size)
    b0, b1 = rng.normal(scale=0.8, size=40), rng.normal(scale=0.4, size=40)
    eta = -0.4 + 0.6 * x + b0[g] + b1[g] * x
    y = (rng.uniform(size=g.size) < special.expit(eta)).astype(int)
    t = rng.integers(1, 4, g.size)
    count = rng.poisson(t * np.exp(0.2 + 0.3 * x + b0[g] / 2))
    return pd.DataFrame({"y": y, "x": x, "g": g, "count": count, "t": t})


CASES = [
    ("y ~ x + (x | g)", "sim", "binomial"),
    ("y ~ x + (x || g)", "sim", "binomial"),
    ("y ~ x + (1 | g)", "sim", "binomial"),
    ("count ~ x + offset(np.log(t)) + (x | g)", "sim", "poisson"),
    ("use ~ age + urban + (urban | district)", "contraception", "binomial"),
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
]


def _problem(formula, data, family):
    fam = make_family(family)
    gd = build_glmm_design(formula, data, fam)
    return GLMMProblem(gd.y, gd.design.X, gd.design.pls_terms(), fam, gd.weights, gd.offset)


def _central(f, x, h=1e-5):
    out = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        out.append((f(x + e) - f(x - e)) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("formula, data, family", CASES)
def test_gradient_matches_central_differences(formula, data, family, sim):
    frame = sim if data == "sim" else mlm.load_dataset(data)
    pr = _problem(formula, frame, family)
    assert pr.has_gradient and supports_gradient(pr)
    rng = np.random.default_rng(1)
    theta = pr.rs.theta_start() * 0.7 + 0.2 * rng.random(pr.n_theta)
    beta = pr.glm_start + 0.05
    k = pr.n_theta
    with np.errstate(all="ignore"):
        u, _, eta, _ = pr.pirls(theta, beta, None)
        exact = laplace_gradient(pr, theta, u, eta)
        numeric = _central(lambda z: pr.deviance(z[:k], z[k:]), np.concatenate([theta, beta]))
        np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-6 * np.max(np.abs(numeric)))
        u, _, eta, _ = pr.pirls(theta, None, None)
        exact1 = laplace_gradient(pr, theta, u, eta, beta_fixed=False)
        numeric1 = _central(lambda z: pr.deviance_stage1(z)[0], theta)
        np.testing.assert_allclose(exact1, numeric1, rtol=1e-6, atol=1e-6 * np.max(np.abs(numeric1)))


@pytest.mark.parametrize("family, link, nagq, formula", [
    ("binomial", "probit", 1, "y ~ x + (1 | g)"),      # not canonical: observed != expected weights
    ("binomial", "logit", 5, "y ~ x + (1 | g)"),       # quadrature, not Laplace
])
def test_gradient_only_where_exact(family, link, nagq, formula, sim):
    fam = make_family(family, link)
    gd = build_glmm_design(formula, sim, fam)
    pr = GLMMProblem(gd.y, gd.design.X, gd.design.pls_terms(), fam, gd.weights, gd.offset, nagq=nagq)
    assert not pr.has_gradient


def test_crossed_factors_use_differences(sim):
    pr = _problem("y ~ x + (1 | g) + (1 | t)", sim, "binomial")
    assert not pr.has_gradient


# --- at and near the boundary: lme4 and glmmTMB (tests/reference/glmer_boundary.R) -------------
# The gradient-based optimiser replaces the vanishing derivative at a zero variance by a
# one-sided slope; these fits check that it leaves a zero variance when that lowers the
# deviance and stays there otherwise. References: lme4 (bobyqa, tolPwrss = 1e-10) and
# glmmTMB; estimates are compared with whichever reached the higher log-likelihood (on
# poisson_small lme4 stops at zero variances, 0.072 short of glmmTMB's optimum).
# Tolerances are issue 14's: log-likelihood 0.01 (and never below the better optimum by
# more than 1e-5, the precision both R fits report), fixed effects 1e-3 relative, SEs and
# variance components 1% (variances below 1e-4 absolute: zeros are reported as 1e-16 to
# 1e-8 by the two R packages).
BOUNDARY = json.loads((Path(__file__).parent / "reference" / "glmer_boundary.json").read_text())
BOUNDARY_CASES = [k for k in BOUNDARY if k != "versions"]


@pytest.fixture(scope="module")
def boundary_data():
    return pd.read_csv(Path(__file__).parent / "reference" / "glmer_boundary.csv")


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_boundary_fits_reach_the_better_optimum(case, boundary_data):
    c = BOUNDARY[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mlm.ConvergenceWarning)
        fit = mlm.glmer(c["formula"], boundary_data, family=c["family"])
    assert fit.loglik >= c["loglik_best"] - 1e-5  # R: max(logLik(m), logLik(t))
    assert fit.loglik == pytest.approx(c["loglik_best"], abs=0.01)
    tmb_best = c["loglik_glmmtmb"] > c["loglik"] + 1e-4
    fixef = c["fixef_glmmtmb"] if tmb_best else c["fixef"]          # R: fixef(m), fixef(t)$cond
    se = c["se_glmmtmb"] if tmb_best else c["se"]                   # R: sqrt(diag(vcov(m)))
    vcov = c["vcov_glmmtmb"] if tmb_best else c["vcov"]             # R: as.data.frame(VarCorr(m))$vcov
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(fixef.values()), rtol=1e-3)
    np.testing.assert_allclose(fit.coefficients["std_error"].to_numpy(), list(se.values()), rtol=0.01)
    ours = fit.varcorr["vcov"].to_numpy()
    if not tmb_best:
        np.testing.assert_allclose(ours, vcov, rtol=0.01, atol=1e-4)
    else:  # glmmTMB lists a zero covariance for (x || g); compare the terms' variances
        np.testing.assert_allclose(ours, np.asarray(vcov)[:ours.size], rtol=0.01, atol=1e-4)
    if not tmb_best:  # lme4's isSingular(m)
        assert fit.singular == c["singular"]


def test_gradient_falls_back_to_differences(sim, monkeypatch):
    """Where the adjoint solve fails (separation: a singular fixed-effects block), the
    gradient is the central difference of the deviance instead of an error."""
    import mlm.glmm.engine as engine

    pr = _problem("y ~ x + (x | g)", sim, "binomial")
    theta, beta = pr.rs.theta_start() * 0.8, pr.glm_start
    with np.errstate(all="ignore"):
        dev, exact = pr.deviance_gradient(theta, beta)
        _, exact1, _ = pr.stage1_gradient(theta)

        def fail(*args, **kwargs):
            raise np.linalg.LinAlgError("Singular matrix")

        monkeypatch.setattr(engine, "laplace_gradient", fail)
        dev2, numeric = pr.deviance_gradient(theta, beta)
        _, numeric1, _ = pr.stage1_gradient(theta)
    assert dev2 == pytest.approx(dev, rel=1e-12)
    np.testing.assert_allclose(numeric, exact, rtol=1e-5, atol=1e-5 * np.max(np.abs(exact)))
    np.testing.assert_allclose(numeric1, exact1, rtol=1e-5, atol=1e-5 * np.max(np.abs(exact1)))
