"""
Within, between and contextual effects
======================================

Does a student's achievement depend on their own family background, on the background of
the other students in their school, or on both? A predictor measured on students, like
socio-economic status (``ses``), carries two effects at once:

* the **within-school** effect: how a student compares with schoolmates of higher or lower
  ``ses``;
* the **between-school** effect: how schools with a richer intake compare with poorer ones.

Their difference is the **contextual effect** (Raudenbush & Bryk 2002, chapter 5;
Snijders & Bosker 2012, chapter 4): of two students with the *same* ``ses``, how much
higher does the one in the richer school score? A model with ``ses`` alone blends the two
effects into one number that answers neither question.

The formula helpers ``cwc(x, g)`` (centring within cluster: ``x`` minus its group mean) and
``gm(x, g)`` (the group mean) split a predictor without creating columns by hand.
"""

# %%
# One slope for ``ses``: a blend
# ------------------------------
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
hsb = mlm.load_dataset("hsb")
RESULTS = {}     # every number printed below, checked by tests/test_examples.py
blend = mlm.lmer("mathach ~ ses + (1 | school)", hsb)
RESULTS["conflated"] = blend.fixef["ses"]
RESULTS["conflated_se"] = blend.coefficients.loc["ses", "std_error"]
print(f"ses slope with a random intercept: {RESULTS['conflated']:.4f} (SE {RESULTS['conflated_se']:.4f})")

# %%
# Within and between, separately
# ------------------------------
# With ``cwc(ses, school)`` and ``gm(ses, school)`` the two parts of ``ses`` are
# uncorrelated, and each gets its own slope.
wb = mlm.lmer("mathach ~ cwc(ses, school) + gm(ses, school) + (1 | school)", hsb)
RESULTS.update(
    within=wb.fixef["cwc(ses, school)"], within_se=wb.coefficients.loc["cwc(ses, school)", "std_error"],
    between=wb.fixef["gm(ses, school)"], between_se=wb.coefficients.loc["gm(ses, school)", "std_error"],
    tau00=wb.varcorr["vcov"].iloc[0], sigma2=wb.sigma ** 2, loglik_cwc=wb.loglik,
    wb_coefficients=wb.coefficients[["estimate", "std_error"]])
print(RESULTS["wb_coefficients"].round(4))

# %%
# Within a school, one unit of ``ses`` goes with 2.19 points of achievement; between
# schools, one unit of mean ``ses`` goes with 5.87 points. The single slope of 2.39 above
# lies in between, closer to the within slope because most of the variation in ``ses`` is
# within schools. (OLS, which ignores the schools, gives yet another blend.)
#
# The contextual effect
# ---------------------
# The contextual effect is the between slope minus the within slope. ``mlm.test`` tests
# that difference directly, with Satterthwaite's df.
contrast = mlm.test(wb, "gm(ses, school) = cwc(ses, school)")
RESULTS.update(contrast_estimate=contrast["estimate"].iloc[0],
               contrast_se=contrast["std_error"].iloc[0], contrast_t=contrast["statistic"].iloc[0],
               contrast_df=contrast["den_df"].iloc[0], contrast_p=contrast["p_value"].iloc[0])
print(f"between - within = {RESULTS['contrast_estimate']:.4f} (SE {RESULTS['contrast_se']:.4f}); "
      f"t({RESULTS['contrast_df']:.1f}) = {RESULTS['contrast_t']:.3f}, p = {RESULTS['contrast_p']:.2g}")

# %%
# Equivalently, keep raw ``ses`` and add the school mean: the coefficient of the school
# mean is then the contextual effect itself, because ``ses`` already carries the within
# effect. The two models are the same model (same fit, same likelihood), written in two
# ways.
ctx = mlm.lmer("mathach ~ ses + gm(ses, school) + (1 | school)", hsb)
row = ctx.coefficients.loc["gm(ses, school)"]
RESULTS.update(contextual=row["estimate"], contextual_se=row["std_error"],
               contextual_t=row["statistic"], contextual_df=row["df"],
               raw_ses_within_model=ctx.fixef["ses"], loglik_raw=ctx.loglik,
               ctx_coefficients=ctx.coefficients[["estimate", "std_error", "df", "statistic"]])
print(RESULTS["ctx_coefficients"].round(4))
print(f"REML log-likelihoods: {RESULTS['loglik_cwc']:.4f} and {RESULTS['loglik_raw']:.4f}")

# %%
# Of two students with the same ``ses``, the one in a school whose mean ``ses`` is one
# unit higher scores 3.68 points higher: the school's social composition matters beyond
# the student's own background.
#
# ``explain()`` reads the model in these terms, and names the contextual effect when both
# ``cwc`` and ``gm`` are present.
print(wb.explain())
