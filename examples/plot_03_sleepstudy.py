"""
Random slopes: reaction times under sleep deprivation
=====================================================

Eighteen volunteers were allowed only three hours of sleep a night after a first, normal
night (Belenky et al. 2003, *Journal of Sleep Research* 12, 1-12). Each day, from day 0
to day 9, their average reaction time was measured. lme4's
``sleepstudy`` data are the classic first example of a *random slope*: every subject
starts at a different reaction time, and every subject slows down at a different rate.

The questions:

* How much slower, on average, does a driver get per day of sleep deprivation?
* How much do drivers differ in their starting point and in their rate of decline, and
  are the two related?
* Is a random slope needed at all, or would a random intercept do?
"""

# %%
# The model
# ---------
# Days are the level-1 predictor (10 measurements per subject, days 0 to 9); subjects are
# the groups. ``(Days | Subject)`` gives each subject an intercept and a slope, drawn from
# a bivariate normal distribution with standard deviations and a correlation to estimate.
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
sleep = mlm.load_dataset("sleepstudy")
m = mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
RESULTS = {}     # every number printed below, checked by tests/test_examples.py
for term, key in [("(Intercept)", "intercept"), ("Days", "days")]:
    row = m.coefficients.loc[term]
    RESULTS[key], RESULTS[f"{key}_se"], RESULTS[f"{key}_df"] = (
        row["estimate"], row["std_error"], row["df"])
vc = m.varcorr
RESULTS.update(sd_intercept=vc["sdcor"].iloc[0], sd_days=vc["sdcor"].iloc[1],
               cor=vc["sdcor"].iloc[2], sigma=m.sigma, loglik=m.loglik)
print(pd.DataFrame({"estimate": [RESULTS["intercept"], RESULTS["days"]],
                    "std_error": [RESULTS["intercept_se"], RESULTS["days_se"]],
                    "df (Satterthwaite)": [RESULTS["intercept_df"], RESULTS["days_df"]]},
                   index=["(Intercept)", "Days"]).round(3))
print(pd.Series({k: RESULTS[k] for k in ["sd_intercept", "sd_days", "cor", "sigma", "loglik"]}).round(4))

# %%
# On day 0 the average reaction time is about 251 ms, and it grows by about 10.5 ms per
# day of sleep deprivation. With 18 subjects the t-tests have about 17 degrees of freedom
# (Satterthwaite's method, as lmerTest): the slope is estimated from 18 subjects, not
# from 180 measurements.
#
# The subjects differ a lot. The SD of the slopes, 5.9 ms per day, means that the middle
# 95% of drivers slow down by between about -1 and 22 ms a day: some barely change, some
# deteriorate twice as fast as the average. The intercepts and slopes are almost
# uncorrelated (0.07).
RESULTS["slope_range_low"] = RESULTS["days"] - 1.959964 * RESULTS["sd_days"]
RESULTS["slope_range_high"] = RESULTS["days"] + 1.959964 * RESULTS["sd_days"]
print(f"middle 95% of slopes: {RESULTS['slope_range_low']:.2f} to {RESULTS['slope_range_high']:.2f} ms/day")

# %%
# Each subject's own line
# -----------------------
# ``fit.coef`` adds each subject's random effects to the fixed effects (lme4's
# ``coef()``). Subject 308 deteriorates fast; subject 335 not at all.
coef = m.coef["Subject"]
for s in (308, 335):
    RESULTS[f"subject_{s}_intercept"] = coef.loc[s, "(Intercept)"]
    RESULTS[f"subject_{s}_days"] = coef.loc[s, "Days"]
print(coef.loc[[308, 335]].round(3))
fig = mlm.plot_groups(sleep, "Days", "Reaction", "Subject", fit=m, highlight=[308, 335])

# %%
# Is the random slope needed?
# ---------------------------
# Compare with the random-intercept model by a likelihood-ratio test. lme4's ``anova()``
# and ``mlm.compare`` refit REML fits with maximum likelihood first (and say so); here we
# fit both with ML (``reml=False``) ourselves. The test is conservative: the null value of
# the slope variance lies on the boundary of its space.
m_int_ml = mlm.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
m_ml = mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
lrt = mlm.compare(m_int_ml, m_ml)
RESULTS.update(lrt_chisq=lrt["chisq"].iloc[1], lrt_df=int(lrt["df"].iloc[1]),
               lrt_p=lrt["p_value"].iloc[1])
print(f"LR test of the random slope: chi2({RESULTS['lrt_df']}) = {RESULTS['lrt_chisq']:.2f}, "
      f"p = {RESULTS['lrt_p']:.2e}")

# %%
# The slope variance is clearly needed. Is the correlation? ``(Days || Subject)`` fits the
# intercept and slope as independent. Both models have the same fixed part, so the REML
# likelihoods can be compared directly (``refit=False``).
m_uncor = mlm.lmer("Reaction ~ Days + (Days || Subject)", sleep)
lrt2 = mlm.compare(m_uncor, m, refit=False)
RESULTS.update(uncorrelated_loglik=m_uncor.loglik, cor_lrt_chisq=lrt2["chisq"].iloc[1],
               cor_lrt_p=lrt2["p_value"].iloc[1])
print(f"REML log-likelihood without the correlation: {RESULTS['uncorrelated_loglik']:.4f}; "
      f"LR test chi2(1) = {RESULTS['cor_lrt_chisq']:.4f}, p = {RESULTS['cor_lrt_p']:.3f}")

# %%
# The correlation adds nothing (p = 0.84): a driver's starting speed says nothing about
# how fast they deteriorate.
