"""Intervals for every parameter (mlm/inference/confint.py) against lme4.

Reference numbers: ``tests/reference/inference_confint.json`` written by
``tests/reference/inference_confint.R`` (R 4.2.2, lme4 1.1.31): ``confint(m, method =
"profile", oldNames = FALSE)``, ``confint(m, method = "Wald", oldNames = FALSE)`` and
``confint(m, method = "boot", boot.type = "perc", nsim = 1000)``; and
``tests/reference/inference_profile_root.json`` written by
``tests/reference/inference_profile_root.R``: the crossings of lme4's own profiled
deviance (``devfun2`` and the offset deviance profile.merMod uses) found by ``uniroot``
instead of lme4's interpolating spline. CI does not need R.

Tolerances.

* Profile against lme4's ``confint``: 0.2% (issue 12) of the bound, or of the interval's
  width when the bound lies within one width of 0 (so a bound near 0 is not judged
  relative to a tiny number): ``|ours - lme4| <= 0.002 * max(|lme4|, width)``. lme4
  reads the crossing off a spline through a grid of about a dozen profile points; where
  the profile is strongly curved that interpolation is off by more (listed in
  ``LME4_SPLINE``, each checked against the root-found reference instead, and the gap
  explained).
* Profile against the root-found crossings of lme4's deviance: 1e-5 of the same scale.
  Both sides solve zeta = +-1.96 to about 1e-6 standard errors (a few 1e-7 of the
  interval's width); what is left is the inner optimisers' precision (relative deviance
  tolerance 1e-13 in R's nlminb, a quasi-Newton decrement below 1e-8 here, i.e. zeta to
  about 1e-8) and the ML optimum each starts from. Measured: at most 7e-7.
* Wald: the fixed effects and their SEs agree with lme4 to 1e-4 and 1e-3 relative (the
  core reference tests' tolerances), so a bound agrees within 1e-3 of its half-width plus
  1e-4 of the estimate.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.inference.confint import percentile_interval

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "inference_confint.json").read_text())
ROOT = json.loads((REF_DIR / "inference_profile_root.json").read_text())

#: (case, parameter, side) where lme4's confint misses its own profile's crossing, and why.
LME4_SPLINE = {
    # The profile of sd_ses bends sharply as it approaches 0 (the correlation becomes
    # unidentified): lme4's spline puts the crossing at 0.0849, where its own deviance
    # gives zeta = -1.954, not -1.960 (root-found reference: 0.0785).
    ("hsb_rc", "sd_ses|school", "conf_low"),
    # The correlation's profile flattens towards 1: lme4's spline gives 0.3079 where its
    # deviance gives zeta = 1.966 (root-found: 0.3065).
    ("hsb_rc", "cor_ses.(Intercept)|school", "conf_high"),
    # 3 x 3 covariance: the profile of cor(D2, intercept) flattens towards -1; lme4's
    # spline gives -0.8620 where the root-found crossing of its deviance is -0.8641.
    ("sleep_quad", "cor_D2.(Intercept)|Subject", "conf_low"),
    # An SD estimated at 0 (singular fit): zeta grows like sd^2 near 0, which the spline
    # through points starting at 0.001 follows poorly (lme4: 1.6637; zeta there 1.967).
    ("pastes_singular", "sd_(Intercept)|cask", "conf_high"),
    # lme4's fixed-effect profile restarts its optimiser at theta = 0, a stationary point
    # of the deviance, and stays there; off the bound the deviance is lower (theta about
    # 0.2 at lme4's bound), so the true profile interval is wider. lme4's numbers are
    # the crossings of the theta = 0 (linear model) deviance: see
    # test_lme4_fixed_profile_of_a_singular_fit_stays_at_theta_zero.
    ("pastes_singular", "(Intercept)", "conf_low"),
    ("pastes_singular", "(Intercept)", "conf_high"),
}


def load(name):
    data = mlm.load_dataset(name)
    if name == "hsb":  # R&B's group-mean centred ses, as the R script builds it
        data = data.assign(cses=data["ses"] - data.groupby("school")["ses"].transform("mean"))
    if name == "sleepstudy":  # Days as a grouping factor (R: factor(Days)); a centred quadratic
        data = data.assign(Dayg=data["Days"], D2=(data["Days"] - 4.5) ** 2 / 10)
    return data


_FITS = {}


def fitted(case_id):
    if case_id not in _FITS:
        case = REF["cases"][case_id]
        _FITS[case_id] = mlm.lmer(case["formula"], load(case["data"]), reml=case["REML"])
    return _FITS[case_id]


_PROFILES = {}


def profile(case_id):
    if case_id not in _PROFILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mlm.BoundaryWarning)
            _PROFILES[case_id] = mlm.confint(fitted(case_id))
    return _PROFILES[case_id]


def ref_frame(block):
    return pd.DataFrame({"conf_low": block["conf_low"], "conf_high": block["conf_high"]},
                        index=pd.Index(block["parameter"], name="parameter"), dtype=float)


def scale(ref):
    """max(|bound|, width) of each reference bound (see the module's notes)."""
    width = (ref["conf_high"] - ref["conf_low"]).to_numpy()[:, None]
    return np.maximum(np.abs(ref.to_numpy()), width)


PROFILE_CASES = sorted(REF["cases"])


@pytest.mark.parametrize("case_id", PROFILE_CASES)
def test_profile_matches_lme4(case_id):
    # R: confint(m, method = "profile", oldNames = FALSE)
    ours = profile(case_id)
    ref = ref_frame(REF["cases"][case_id]["profile"])
    assert list(ours.index) == list(ref.index)
    assert ours.index.name == "parameter" and list(ours.columns) == ["conf_low", "conf_high"]
    err = np.abs(ours.to_numpy() - ref.to_numpy()) / scale(ref)
    for i, name in enumerate(ref.index):
        for k, side in enumerate(ref.columns):
            if (case_id, name, side) in LME4_SPLINE:
                continue
            assert err[i, k] <= 2e-3, (name, side, ours.iloc[i, k], ref.iloc[i, k])


@pytest.mark.parametrize("case_id", sorted(ROOT["cases"]))
def test_profile_matches_root_found_crossings_of_lme4_deviance(case_id):
    # R: uniroot on zeta from lme4:::devfun2(refitML(m)) / the offset deviance, nlminb inside
    ours = profile(case_id)
    ref = ref_frame(ROOT["cases"][case_id])
    ours = ours.loc[ref.index]
    err = np.abs(ours.to_numpy() - ref.to_numpy()) / scale(ref)
    assert err.max() <= 1e-5, pd.DataFrame(err, index=ref.index, columns=ref.columns)


def test_lme4_fixed_profile_of_a_singular_fit_stays_at_theta_zero():
    # pastes strength ~ 1 + (1 | cask): sd estimated at 0. lme4's interval for the intercept
    # (59.2277, 60.8790) is where the deviance with theta held at 0 crosses zeta = -+1.96;
    # letting theta move lowers the deviance there, so the profile's interval is wider.
    from mlm.inference.profile import Profiler

    fit = fitted("pastes_singular")
    prof = Profiler(fit.problem, fit.theta, fit.sigma)
    lme4 = ref_frame(REF["cases"]["pastes_singular"]["profile"]).loc["(Intercept)"]
    for b, target in ((lme4["conf_low"], -1.959964), (lme4["conf_high"], 1.959964)):
        at_zero = np.sign(b - prof.beta[0]) * np.sqrt(prof.fixed_deviance([0.0], 0, b) - prof.base)
        assert at_zero == pytest.approx(target, abs=1e-4)
        assert abs(prof._zeta_fixed(0)(b)) < 1.9  # theta free: clearly inside the interval
    ours = profile("pastes_singular").loc["(Intercept)"]
    assert ours["conf_low"] < lme4["conf_low"] and ours["conf_high"] > lme4["conf_high"]


@pytest.mark.parametrize("case_id", PROFILE_CASES)
def test_wald_matches_lme4(case_id):
    # R: confint(m, method = "Wald", oldNames = FALSE): NaN for the variance parameters
    ours = mlm.confint(fitted(case_id), method="wald")
    ref = ref_frame(REF["cases"][case_id]["wald"])
    assert list(ours.index) == list(ref.index)
    nan = ref["conf_low"].isna()
    assert ours.loc[nan].isna().all().all()
    o, r = ours.loc[~nan], ref.loc[~nan]
    half = (r["conf_high"] - r["conf_low"]).to_numpy()[:, None] / 2
    mid = np.abs((r["conf_high"] + r["conf_low"]).to_numpy()[:, None] / 2)
    assert np.all(np.abs(o.to_numpy() - r.to_numpy()) <= 1e-3 * half + 1e-4 * mid)


def test_level_and_parm_as_lme4():
    fit = fitted("sleep_rc")
    # R: confint(m, level = 0.90, oldNames = FALSE)
    ours = mlm.confint(fit, level=0.90)
    ref = ref_frame(REF["sleep_rc_level90"])
    assert np.all(np.abs(ours.to_numpy() - ref.to_numpy()) <= 2e-3 * scale(ref))
    # R: confint(m, parm = "beta_", oldNames = FALSE) and parm = "theta_"
    beta = mlm.confint(fit, parm="beta_")
    assert list(beta.index) == REF["sleep_rc_parm_beta"]["parameter"]
    np.testing.assert_allclose(beta.to_numpy(), ref_frame(REF["sleep_rc_parm_beta"]).to_numpy(),
                               rtol=2e-3)
    theta = mlm.confint(fit, parm="theta_", method="wald")
    assert list(theta.index) == REF["sleep_rc_parm_theta"]["parameter"]
    # names, in the order asked; the same numbers as the full table
    two = mlm.confint(fit, parm=["sigma", "sd_Days|Subject"])
    assert list(two.index) == ["sigma", "sd_Days|Subject"]
    pd.testing.assert_frame_equal(two, profile("sleep_rc").loc[["sigma", "sd_Days|Subject"]],
                                  rtol=1e-5, check_exact=False)
    one = mlm.confint(fit, parm="Days")
    assert list(one.index) == ["Days"] and one.attrs["method"] == "profile"


def test_profile_of_a_singular_fit_warns_in_words():
    fit = fitted("pastes_singular")
    with pytest.warns(mlm.BoundaryWarning, match=r"sd_\(Intercept\)\|cask is estimated at 0.*"
                                                 r"lower limit is set to 0, as lme4 does"):
        ci = mlm.confint(fit, parm="theta_")
    assert ci.loc["sd_(Intercept)|cask", "conf_low"] == 0.0
    assert "lower limit is set to 0" in ci.attrs["notes"][0]


def test_profile_reaching_a_bound_gives_the_bound():
    # lme4: an SD whose profile reaches 0 gets 0; a correlation whose profile reaches -1, -1
    ref = REF["cases"]
    assert ref["hsb_rb"]["profile"]["conf_low"][2] == 0  # sd_cses|school
    ours = profile("hsb_rb")
    assert ours.loc["sd_cses|school", "conf_low"] == 0.0
    assert ours.loc["cor_cses.(Intercept)|school"].tolist() == [-1.0, 1.0]
    assert profile("hsb_rc").loc["cor_ses.(Intercept)|school", "conf_low"] == -1.0


def test_reml_fit_is_profiled_on_the_ml_deviance_as_lme4():
    # lme4's profile refits a REML model with ML (devfun2 calls refitML): the REML and ML
    # fits of the same model have the same profile intervals.
    reml, ml = profile("sleep_rc"), profile("sleep_rc_ml")
    np.testing.assert_allclose(reml.to_numpy(), ml.to_numpy(), rtol=1e-5)


def test_the_fit_is_not_changed():
    fit = fitted("sleep_rc")
    theta, loglik = fit.theta.copy(), fit.loglik
    mlm.confint(fit, parm="sigma")
    np.testing.assert_array_equal(fit.theta, theta)
    assert fit.loglik == loglik and fit.reml and fit.problem.reml


# --- bootstrap -----------------------------------------------------------------------------------
def test_percentile_interval_is_boots_rule():
    # boot.ci(type = "perc") with R = 9, conf 0.8: (R + 1) * 0.1 = 1 and 9 -> exact order
    # statistics; with R = 10 the 1.1-th is interpolated on the normal scale (norm.inter):
    # t1 + (qnorm(.1) - qnorm(1/11)) / (qnorm(2/11) - qnorm(1/11)) * (t2 - t1)
    t = np.arange(1.0, 10.0)
    assert percentile_interval(t, 0.8) == (1.0, 9.0)
    t = np.arange(1.0, 11.0)
    from scipy.stats import norm
    lo = 1 + (norm.ppf(0.1) - norm.ppf(1 / 11)) / (norm.ppf(2 / 11) - norm.ppf(1 / 11))
    assert percentile_interval(t, 0.8)[0] == pytest.approx(lo, rel=1e-12)
    assert np.isnan(percentile_interval(np.array([np.nan, np.inf]), 0.9)).all()  # no finite draws


def test_bootstrap_is_reproducible_and_shaped():
    fit = fitted("sleep_rc")
    a = mlm.confint(fit, method="bootstrap", nsim=20, seed=4)
    b = mlm.confint(fit, method="bootstrap", nsim=20, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == list(profile("sleep_rc").index)
    assert (a["conf_low"] <= a["conf_high"]).all() and a.attrs["method"] == "bootstrap"
    c = mlm.confint(fit, method="boot", nsim=20, seed=5, parm="beta_")
    assert list(c.index) == ["(Intercept)", "Days"]


@pytest.mark.slow
@pytest.mark.parametrize("key", ["boot_sleep_rc", "boot_pastes_nested"])
def test_bootstrap_within_monte_carlo_error_of_bootmer(key):
    # R: confint(m, method = "boot", boot.type = "perc", nsim = 1000, seed = 1)
    # Monte Carlo bound: the 2.5% / 97.5% order statistic of 1000 draws has SE about
    # sqrt(.025 * .975 / 1000) / dnorm(1.96) = 0.085 bootstrap SDs (normal shape); two
    # independent runs differ by sqrt(2) * 0.085 = 0.12 SD; 0.5 SD is four of those.
    ref = REF[key]
    fit = mlm.lmer(ref["formula"], load(ref["data"]))
    ours = mlm.confint(fit, method="bootstrap", nsim=1000, seed=1)
    r = ref_frame(ref)
    assert list(ours.index) == list(r.index)
    bound = 0.5 * np.asarray(ref["boot_sd"])[:, None]
    assert np.all(np.abs(ours.to_numpy() - r.to_numpy()) <= bound), pd.concat([ours, r], axis=1)


@pytest.mark.slow
def test_icc_bootstrap_interval_within_monte_carlo_error_of_bootmer():
    ref = json.loads((Path(__file__).parents[1] / "benchmarks" / "lme4_timings.json").read_text())
    fit = mlm.lmer("mathach ~ 1 + (1 | school)", mlm.load_dataset("hsb"))
    tab = mlm.icc(fit, ci="bootstrap", nsim=1000, seed=3)
    # bootMer(m0, icc, nsim = 1000, seed = 1): 0.14549 to 0.21610; bootstrap SD of the ICC
    # about 0.018, so 0.5 SD = 0.009 (see the bound above)
    assert tab.loc["school", "boot_conf_low"] == pytest.approx(ref["bootmer_icc_percentile_2.5"], abs=0.009)
    assert tab.loc["school", "boot_conf_high"] == pytest.approx(ref["bootmer_icc_percentile_97.5"], abs=0.009)


def test_icc_bootstrap_columns_beside_statas():
    fit = mlm.lmer("strength ~ 1 + (1 | batch/cask)", mlm.load_dataset("pastes"))
    plain = mlm.icc(fit)
    tab = mlm.icc(fit, ci="bootstrap", nsim=30, seed=2)
    pd.testing.assert_frame_equal(tab[plain.columns], plain)  # the default is unchanged
    for col in ("boot_conf_low", "boot_conf_high", "cumulative_boot_conf_low",
                "cumulative_boot_conf_high"):
        assert tab[col].notna().all()
    assert (tab["boot_conf_low"] <= tab["boot_conf_high"]).all()
    # the cumulative ICC of the inner factor is at least its own share, replicate by replicate
    inner = tab.loc["cask:batch"]
    assert inner["cumulative_boot_conf_low"] >= inner["boot_conf_low"]
    assert tab.attrs["bootstrap"]["nsim"] == 30
    again = mlm.icc(fit, ci="bootstrap", nsim=30, seed=2)
    pd.testing.assert_frame_equal(tab, again)


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(method="spline"), r"Unknown method 'spline' for confint: use 'profile'"),
    (dict(method=3), r"Unknown method 3 for confint"),
    (dict(parm="sd_Days|school"), r"parm names unknown parameter\(s\) 'sd_Days\|school'.*"
                                  r"sd_\(Intercept\)\|Subject"),
    (dict(parm=["Days", "days"]), r"unknown parameter\(s\) 'days'"),
    (dict(level=1.0), r"level must be a number between 0 and 1 \(e.g. 0.95"),
    (dict(level=0), r"level must be a number between 0 and 1"),
    (dict(level="high"), r"level must be a number between 0 and 1"),
    (dict(method="bootstrap", nsim=0), r"nsim must be a positive whole number of replicates, not 0"),
])
def test_confint_bad_input(kwargs, message):
    with pytest.raises(mlm.MLMError, match=message):
        mlm.confint(fitted("sleep_rc"), **kwargs)


def test_confint_needs_a_fit():
    with pytest.raises(mlm.MLMError, match="must be a fitted model from mlm.lmer"):
        mlm.confint("Reaction ~ Days + (Days | Subject)")


@pytest.mark.parametrize("kwargs, message", [
    (dict(ci="profile"), r"Unknown ci 'profile' for icc: use 'delta'"),
    (dict(ci="bootstrap", nsim=0), r"nsim must be a positive whole number of replicates, not 0"),
])
def test_icc_ci_bad_input(kwargs, message):
    with pytest.raises(mlm.MLMError, match=message):
        mlm.icc(fitted("sleep_rc"), **kwargs)
