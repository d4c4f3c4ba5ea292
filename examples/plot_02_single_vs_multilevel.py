"""
Why not just regression? Single-level workarounds against the multilevel model
==============================================================================

Applied introductions to multilevel modelling (Snijders & Bosker 2012, ch. 3-4; Gelman &
Hill 2007, ch. 12; Finch, Bolin & Kelley 2019, ch. 1-2) tell the same story before they
fit their first mixed model: students in the same school are not independent, so what
happens if we use ordinary regression anyway? This example tries the three usual
workarounds on the High School and Beyond data (7,185 students in 160 schools) and shows
what each gets wrong:

1. **OLS, ignoring the schools** ("complete pooling"): the standard errors of school-level
   predictors are far too small.
2. **OLS with a dummy per school** ("fixed effects"): honest about within-school effects,
   but it cannot estimate any school-level predictor at all.
3. **A separate regression in each school** ("no pooling"): noisy, and the spread of the
   160 slopes mixes true differences with sampling error.

Then the multilevel model ("partial pooling") does all three jobs at once. The question
throughout: how does mathematics achievement depend on a student's socio-economic status
(``ses``) and on whether the school is Catholic (``sector = 1``) or public?
"""

# %%
# Workaround 1: OLS that ignores the schools
# ------------------------------------------
# ``mlm.compare_ols`` fits the OLS regression with the same fixed part next to the
# multilevel model and lays the two side by side. We look at the OLS columns first.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
hsb = mlm.load_dataset("hsb")
ri = mlm.lmer("mathach ~ ses + sector + (1 | school)", hsb)
cmp = mlm.compare_ols(ri)
RESULTS = {}     # every number printed below, checked by tests/test_examples.py
for term, key in [("(Intercept)", "intercept"), ("ses", "ses"), ("sector", "sector")]:
    RESULTS[f"ols_{key}"] = cmp.table.loc[term, "ols_estimate"]
    RESULTS[f"ols_{key}_se"] = cmp.table.loc[term, "ols_std_error"]
print(cmp.table[["ols_estimate", "ols_std_error"]].round(4))

# %%
# OLS treats the 7,185 students as 7,185 independent pieces of information. For ``ses``,
# which varies within schools, that is nearly true. For ``sector``, which is the same for
# everyone in a school, the real amount of information is closer to 160 schools than to
# 7,185 students, and OLS's standard error of 0.15 is much too small, as we shall see.
#
# Workaround 2: a dummy variable for every school
# -----------------------------------------------
# Adding 160 school dummies (and dropping the intercept) absorbs every difference between
# schools. The ``ses`` slope is now a purely within-school slope. But ``sector`` is
# constant within each school, so it is a sum of school dummies: adding it does not raise
# the rank of the design matrix, and its effect cannot be estimated.
dummies = pd.get_dummies(hsb["school"], dtype=float).to_numpy()
X = np.column_stack([hsb["ses"].to_numpy(), dummies])
y = hsb["mathach"].to_numpy()
beta, rss, rank, _ = np.linalg.lstsq(X, y, rcond=None)
s2 = rss[0] / (len(y) - rank)
RESULTS["dummies_ses"] = beta[0]
RESULTS["dummies_ses_se"] = np.sqrt(s2 * np.linalg.inv(X.T @ X)[0, 0])
RESULTS["dummies_rank"] = int(rank)
RESULTS["dummies_rank_with_sector"] = int(np.linalg.matrix_rank(
    np.column_stack([X, hsb["sector"].to_numpy()])))
print(f"within-school ses slope {RESULTS['dummies_ses']:.4f} (SE {RESULTS['dummies_ses_se']:.4f})")
print(f"rank of [ses, dummies] = {RESULTS['dummies_rank']}; "
      f"with sector added = {RESULTS['dummies_rank_with_sector']}")

# %%
# The within-school slope (2.19) is smaller than OLS's 2.95: part of OLS's slope came
# from *richer schools* scoring higher, not from richer students within a school. That is
# the contextual effect of example 7. The dummy model gets this right, but has nothing to
# say about Catholic versus public schools.
#
# Workaround 3: a separate regression in each school
# --------------------------------------------------
# Fit ``mathach ~ ses`` in each school on its own. The 160 slopes do differ, but each
# school has only 14 to 67 students, so each slope is estimated with error. The variance
# of the estimated slopes is the variance of the true slopes *plus* the average sampling
# variance; subtracting the second gives a rough estimate of the first.
rows = []
for school, g in hsb.groupby("school"):
    Xj = np.column_stack([np.ones(len(g)), g["ses"].to_numpy()])
    bj, rssj, _, _ = np.linalg.lstsq(Xj, g["mathach"].to_numpy(), rcond=None)
    se2 = rssj[0] / (len(g) - 2) * np.linalg.inv(Xj.T @ Xj)[1, 1]
    rows.append((school, bj[1], se2))
separate = pd.DataFrame(rows, columns=["school", "slope", "se2"]).set_index("school")
RESULTS.update(
    separate_n=len(separate), separate_slope_mean=separate["slope"].mean(),
    separate_slope_sd=separate["slope"].std(), separate_slope_min=separate["slope"].min(),
    separate_slope_max=separate["slope"].max(), separate_slope_mean_se2=separate["se2"].mean())
RESULTS["separate_true_var"] = RESULTS["separate_slope_sd"] ** 2 - RESULTS["separate_slope_mean_se2"]
print(pd.Series({k: RESULTS[k] for k in RESULTS if k.startswith("separate_")}).round(4))

# %%
# The slopes range from -2.0 to 6.3, an SD of 1.63. Yet most of that spread is noise: the
# average sampling variance (2.20) is most of the observed variance (2.66), leaving about
# 0.46 for the true variance of the slopes. Ranking schools by their own slope would mostly
# rank them by luck.
#
# The multilevel model
# --------------------
# A random intercept for each school keeps ``sector`` estimable *and* treats the students
# of a school as correlated. ``compare_ols`` now prints both columns, the ratio of the
# standard errors, a test of the residuals' school differences, and the likelihood-ratio
# test of the multilevel model against OLS (a chi-bar-square, because a variance cannot
# be negative).
RESULTS.update(
    ri_intercept=ri.fixef["(Intercept)"], ri_ses=ri.fixef["ses"], ri_sector=ri.fixef["sector"],
    ri_intercept_se=cmp.table.loc["(Intercept)", "mlm_std_error"],
    ri_ses_se=cmp.table.loc["ses", "mlm_std_error"], ri_sector_se=cmp.table.loc["sector", "mlm_std_error"],
    ri_se_ratio_intercept=cmp.table.loc["(Intercept)", "se_ratio"],
    ri_se_ratio_ses=cmp.table.loc["ses", "se_ratio"], ri_se_ratio_sector=cmp.table.loc["sector", "se_ratio"],
    ri_icc=cmp.icc, lr_statistic=cmp.lr_test["statistic"], lr_p_value=cmp.lr_test["p_value"],
    ri_ml_loglik=cmp.lr_test["ml_loglik"], ols_loglik=cmp.lr_test["ols_loglik"],
    resid_anova_F=cmp.residual_anova["F"], resid_anova_df1=cmp.residual_anova["df1"],
    resid_anova_df2=cmp.residual_anova["df2"])
print(cmp)

# %%
# The standard error of ``sector`` is 2.24 times what OLS claimed: OLS would have been
# overconfident about the Catholic-school advantage by more than a factor of two. For
# ``ses`` the ratio is close to one, because it varies mostly within schools.
#
# Partial pooling of the slopes
# -----------------------------
# Letting the ``ses`` slope vary by school, ``(ses | school)``, estimates the variance of
# the true slopes directly (``tau11``, compare the rough 0.46 above) and gives each school
# a slope that is a compromise between its own regression and the average: schools with
# few students or a noisy slope are pulled ("shrunk") most towards the average.
rs = mlm.lmer("mathach ~ ses + sector + (ses | school)", hsb)
school_coef = rs.coef["school"]
RESULTS.update(
    rs_ses=rs.fixef["ses"], rs_sector=rs.fixef["sector"],
    rs_tau11=rs.varcorr["vcov"].iloc[1], rs_slope_sd=rs.varcorr["sdcor"].iloc[1],
    rs_blup_slope_sd=school_coef["ses"].std(), rs_loglik=rs.loglik)
print(pd.Series({k: RESULTS[k] for k in RESULTS if k.startswith("rs_")}).round(4))

# %%
# The model's estimate of the SD of the true slopes (0.66) sits between the raw SD of the
# separate regressions (1.63, inflated by noise) and the SD of the shrunken school slopes
# (0.39, deflated by shrinkage). The plot shows the shrinkage: each school's own OLS slope
# against its multilevel slope, with the size of the school as the dot size.
sizes = hsb.groupby("school").size()
fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
ax.scatter(separate["slope"], school_coef.loc[separate.index, "ses"], s=sizes[separate.index],
           alpha=0.5)
ax.axline((0, 0), slope=1, color="grey", lw=1, ls="--", label="no shrinkage")
ax.axhline(RESULTS["rs_ses"], color="black", lw=1, label="average slope")
ax.set_xlabel("ses slope from the school's own regression")
ax.set_ylabel("ses slope from the multilevel model")
ax.legend()
