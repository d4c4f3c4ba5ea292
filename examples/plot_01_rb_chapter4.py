"""
Raudenbush & Bryk, chapter 4: the High School and Beyond sequence
=================================================================

Chapter 4 of Raudenbush and Bryk's *Hierarchical Linear Models* (2nd ed., 2002) teaches
multilevel modelling with one data set and four models, each answering a question the one
before raised. 7,185 students in 160 US high schools took a mathematics test (``mathach``);
we know each student's socio-economic status (``ses``) and, for each school, its mean
``ses`` (``meanses``) and whether it is Catholic or public (``sector``).

1. **One-way ANOVA with random effects** (table 4.2): how much do schools differ at all?
2. **Means as outcomes** (table 4.3): do richer schools score higher?
3. **Random coefficients** (table 4.4): within a school, how strongly does a student's
   ``ses`` predict achievement, and does that slope vary between schools?
4. **Intercepts and slopes as outcomes** (table 4.5): can school characteristics explain
   both the school means and the slopes?

Each step prints mlm's estimates beside the values the book prints. The book used the HLM
program, which stops iterating slightly before the REML optimum that lme4 and mlm reach;
that shows in the slope variance and the chi-square tests of the last two models, and
the example points out where.
"""

# %%
# The data, and R&B's centring
# ----------------------------
# ``mlm.load_dataset("hsb")`` returns the students with the school variables merged in.
# R&B centre ``ses`` on the school's mean taken from their *school* file (``meanses``),
# not on the mean of the students present, so we do the same: ``cses = ses - meanses``.
# (The formula helper ``cwc(ses, school)`` centres on the mean of the rows instead; the
# two differ in the third decimal and the book's estimates come out only with the first.)
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
hsb = mlm.load_dataset("hsb")
hsb["cses"] = hsb["ses"] - hsb["meanses"]

RESULTS = {      # every number printed below, checked by tests/test_examples.py
    "n_students": len(hsb), "n_schools": hsb["school"].nunique()}
BOOK = {}        # the values as R&B print them (tables 4.2-4.5), with their printed digits
print(f"{RESULTS['n_students']} students in {RESULTS['n_schools']} schools")


def side_by_side(prefix):
    """Our estimates beside the book's printed values (BOOK keys starting with prefix)."""
    rows = [(key, f"{RESULTS[key]:.4f}" if isinstance(RESULTS[key], float) else str(RESULTS[key]),
             BOOK[key]) for key in BOOK if key.startswith(prefix)]
    frame = pd.DataFrame(rows, columns=["quantity", "mlm", "R&B printed"]).set_index("quantity")
    return frame.to_string()


# %%
# Step 1: the one-way ANOVA with random effects (table 4.2)
# ---------------------------------------------------------
# The null model ``mathach ~ 1 + (1 | school)`` splits the variance of achievement into a
# part between schools (``tau00``) and a part within them (``sigma2``). Their ratio, the
# *intraclass correlation*, is the share of the variance that lies between schools. The
# *reliability* of a school's sample mean as an estimate of its true mean,
# ``tau00 / (tau00 + sigma2 / n_j)``, averaged over schools, tells us how well the data
# can tell the schools apart. HLM's chi-square statistic tests ``tau00 = 0``.
m0 = mlm.lmer("mathach ~ 1 + (1 | school)", hsb)
icc0 = mlm.icc(m0).loc["school"]
vt0 = mlm.variance_tests(m0).loc["(Intercept)"]
RESULTS.update(
    anova_g00=m0.fixef["(Intercept)"], anova_g00_se=m0.coefficients.loc["(Intercept)", "std_error"],
    anova_tau00=m0.varcorr["vcov"].iloc[0], anova_sigma2=m0.sigma ** 2,
    anova_icc=icc0["icc"], anova_reliability=icc0["reliability"],
    anova_chi2=vt0["chi_square"], anova_df=int(vt0["df"]), anova_loglik=m0.loglik)
BOOK.update(anova_g00="12.64", anova_g00_se="0.24", anova_tau00="8.61", anova_sigma2="39.15",
            anova_icc="0.18", anova_reliability="0.90", anova_chi2="1660.23", anova_df="159")
print(side_by_side("anova_"))

# %%
# About 18% of the variance in mathematics achievement lies between schools, and the
# school means are measured reliably (0.90): the schools clearly differ. The test of
# ``tau00 = 0`` (chi-square 1660 on 159 df) leaves no doubt.
#
# Step 2: means as outcomes (table 4.3)
# -------------------------------------
# Do schools with richer intakes score higher? ``meanses`` enters as a predictor of the
# school mean. What is left of ``tau00`` is the variance between schools of the same
# ``meanses``; its drop from the null model is the *proportion of between-school variance
# explained*, ``1 - tau00(means) / tau00(null)``, which ``mlm.r2`` reports
# as ``prv_school``.
m1 = mlm.lmer("mathach ~ meanses + (1 | school)", hsb)
vt1 = mlm.variance_tests(m1).loc["(Intercept)"]
tau1 = m1.varcorr["vcov"].iloc[0]
RESULTS.update(
    means_g00=m1.fixef["(Intercept)"], means_g00_se=m1.coefficients.loc["(Intercept)", "std_error"],
    means_g01=m1.fixef["meanses"], means_g01_se=m1.coefficients.loc["meanses", "std_error"],
    means_tau00=tau1, means_sigma2=m1.sigma ** 2,
    means_icc=tau1 / (tau1 + m1.sigma ** 2),
    means_explained=mlm.r2(m1, baseline=m0)["prv_school"],
    means_reliability=vt1["reliability"], means_chi2=vt1["chi_square"], means_df=int(vt1["df"]),
    means_loglik=m1.loglik)
BOOK.update(means_g00="12.65", means_g00_se="0.15", means_g01="5.86", means_g01_se="0.36",
            means_tau00="2.64", means_sigma2="39.16", means_explained="0.69",
            means_reliability="0.74", means_chi2="633.52", means_df="158")
print(side_by_side("means_"))

# %%
# A school one unit higher in ``meanses`` scores 5.86 points higher, and ``meanses``
# accounts for about 69% of the variance between school means. The remaining variance is
# still clearly above zero (chi-square 633.5 on 158 df), and the conditional intraclass
# correlation is about 6%.
#
# Step 3: random coefficients (table 4.4)
# ---------------------------------------
# Within each school, regress achievement on the student's group-centred ``ses``: each
# school has its own intercept (its mean achievement) and its own slope (how unequal
# achievement is by social class inside it). ``(cses | school)`` lets both vary, with a
# covariance ``tau01``. Centring on the school mean makes the intercept the school mean and
# the slope a purely within-school effect.
m2 = mlm.lmer("mathach ~ cses + (cses | school)", hsb)
vt2 = mlm.variance_tests(m2)
vc2 = m2.varcorr.set_index(["var1", "var2"], drop=False)
RESULTS.update(
    rc_g00=m2.fixef["(Intercept)"], rc_g00_se=m2.coefficients.loc["(Intercept)", "std_error"],
    rc_g10=m2.fixef["cses"], rc_g10_se=m2.coefficients.loc["cses", "std_error"],
    rc_tau00=m2.varcorr["vcov"].iloc[0], rc_tau11=m2.varcorr["vcov"].iloc[1],
    rc_tau01=m2.varcorr["vcov"].iloc[2], rc_sigma2=m2.sigma ** 2,
    rc_explained_l1=mlm.r2(m2, baseline=m0)["prv_level1"],
    rc_reliability0=vt2.loc["(Intercept)", "reliability"],
    rc_reliability1=vt2.loc["cses", "reliability"],
    rc_chi2_0=vt2.loc["(Intercept)", "chi_square"], rc_chi2_1=vt2.loc["cses", "chi_square"],
    rc_df=int(vt2.loc["cses", "df"]), rc_loglik=m2.loglik)
BOOK.update(rc_g00="12.65", rc_g00_se="0.24", rc_g10="2.19", rc_g10_se="0.13", rc_tau00="8.68",
            rc_tau11="0.68", rc_tau01="0.05", rc_sigma2="36.70", rc_reliability0="0.907",
            rc_chi2_0="1770.86", rc_chi2_1="213.44", rc_df="159")
print(side_by_side("rc_"))

# %%
# The average within-school slope is 2.19 points per unit of ``ses``, and the slopes vary
# between schools: their variance ``tau11`` is about 0.69 (SD 0.83), and the chi-square
# test rejects ``tau11 = 0``. Adding ``cses`` removed about 6% of the within-school
# variance (``1 - sigma2 / 39.15``).
#
# Here is the first place where the book's digits and ours part: HLM printed
# ``tau11 = 0.68`` and chi-squares of 1770.86 and 213.44; lme4 and mlm both reach the REML
# optimum at 0.694 (1770.89, 213.46). HLM's default stops when the likelihood changes by
# less than a small amount, a little before the optimum; the fixed effects agree to the
# printed digits.
#
# Step 4: intercepts and slopes as outcomes (table 4.5)
# -----------------------------------------------------
# Now school characteristics predict both the school mean and the ``ses`` slope. In the
# combined (mixed) formula a predictor of the slope becomes a *cross-level interaction*
# with ``cses``: ``meanses*cses + sector*cses``.
m3 = mlm.lmer("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb)
vt3 = mlm.variance_tests(m3)
gammas = {"g00": "(Intercept)", "g01": "meanses", "g02": "sector",
          "g10": "cses", "g11": "meanses:cses", "g12": "cses:sector"}
for g, term in gammas.items():
    RESULTS[f"full_{g}"] = m3.fixef[term]
    RESULTS[f"full_{g}_se"] = m3.coefficients.loc[term, "std_error"]
RESULTS.update(
    full_tau00=m3.varcorr["vcov"].iloc[0], full_tau11=m3.varcorr["vcov"].iloc[1],
    full_tau01=m3.varcorr["vcov"].iloc[2], full_sigma2=m3.sigma ** 2,
    full_explained0=1 - m3.varcorr["vcov"].iloc[0] / RESULTS["rc_tau00"],
    full_explained1=1 - m3.varcorr["vcov"].iloc[1] / RESULTS["rc_tau11"],
    full_reliability0=vt3.loc["(Intercept)", "reliability"],
    full_reliability1=vt3.loc["cses", "reliability"],
    full_chi2_0=vt3.loc["(Intercept)", "chi_square"], full_chi2_1=vt3.loc["cses", "chi_square"],
    full_df=int(vt3.loc["cses", "df"]), full_loglik=m3.loglik)
BOOK.update(full_g00="12.11", full_g00_se="0.20", full_g01="5.34", full_g01_se="0.37",
            full_g02="1.22", full_g02_se="0.31", full_g10="2.94", full_g10_se="0.16",
            full_g11="1.04", full_g11_se="0.30", full_g12="-1.64", full_g12_se="0.24",
            full_tau00="2.38", full_tau11="0.15", full_reliability0="0.733",
            full_chi2_0="605.30", full_chi2_1="162.31", full_df="157")
print(side_by_side("full_"))

# %%
# Catholic schools score 1.22 points higher than public schools of the same ``meanses``,
# and their ``ses`` slope is 1.64 points flatter: achievement is less unequal by social
# class in Catholic schools. In richer schools the slope is steeper (1.04 per unit of
# ``meanses``). Together the two school variables explain about 73% of the variance of
# the intercepts and 85% of that of the slopes (against the random-coefficient model).
# The slope variance left over (0.10; HLM printed 0.15, again stopping early) is no
# longer distinguishable from zero.
#
# The same model as HLM prints it
# -------------------------------
# ``summary(style="hlm")`` lays the fit out as the HLM program does: the level-1 and
# level-2 equations with gamma labels, the variance components with their chi-square
# tests and the reliability of each random coefficient.
print(m3.summary(style="hlm"))

# %%
# And in words
# ------------
# ``explain()`` reads the same model as an applied textbook would, with each effect in
# the outcome's units and the cross-level interactions as simple slopes.
print(m3.explain())

# %%
# A picture of the cross-level interaction
# ----------------------------------------
# Predicted achievement against ``cses`` at low, average and high ``meanses`` (the mean
# and +- 1 SD over the 160 schools), with 95% confidence bands, for public schools
# (``sector = 0``): the richer the school, the steeper the line.
fig = mlm.plot_simple_slopes(m3, "cses", "meanses")
