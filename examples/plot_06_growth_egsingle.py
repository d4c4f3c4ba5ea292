"""
Growth curves at three levels: mathematics over six school years
================================================================

Raudenbush & Bryk (2002, chapter 8) model the mathematics growth of 1,721 children in 60
schools, tested once a year for up to six years (the US Sustaining Effects Study;
``egsingle`` in mlmRev). Tests are nested in children and children in schools:

* level 1, a test: ``math = pi0 + pi1 * year + e`` (each child's growth line),
* level 2, a child: ``pi0`` and ``pi1`` vary between children of the same school,
* level 3, a school: the school averages of ``pi0`` and ``pi1`` vary between schools.

``year`` is centred (-2.5 to 2.5), so ``pi0`` is a child's status in the middle of the
study and ``pi1`` its yearly growth. The questions: how fast do children grow on
average, how much of the differences in status and in growth lie between schools, and
do ethnicity and a school's share of low-income students explain them?
"""

# %%
# The children's trajectories
# ---------------------------
# A random sample of 40 children: each line joins one child's yearly scores.
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
eg = mlm.load_dataset("egsingle")
fig = mlm.plot_groups(eg, "year", "math", "childid", max_groups=40, seed=1)

# %%
# The unconditional growth model
# ------------------------------
# Random intercepts and slopes at both the child and the school level, each pair with its
# own correlation: ``(year | childid) + (year | schoolid)``. Child ids are unique across
# schools, so ``childid`` alone identifies a child.
g0 = mlm.lmer("math ~ year + (year | childid) + (year | schoolid)", eg)
RESULTS = {}     # every number printed below, checked by tests/test_examples.py


def components(fit, prefix):
    vc = fit.varcorr
    for grp, short in [("childid", "child"), ("schoolid", "school")]:
        rows = vc[vc["grp"] == grp]
        RESULTS[f"{prefix}_{short}_intercept"] = rows["vcov"].iloc[0]
        RESULTS[f"{prefix}_{short}_year"] = rows["vcov"].iloc[1]
        if prefix == "uncond":
            RESULTS[f"{prefix}_{short}_cor"] = rows["sdcor"].iloc[2]
    RESULTS[f"{prefix}_sigma2"] = fit.sigma ** 2
    RESULTS[f"{prefix}_loglik"] = fit.loglik


for term, key in [("(Intercept)", "intercept"), ("year", "year")]:
    RESULTS[f"uncond_{key}"] = g0.fixef[term]
    RESULTS[f"uncond_{key}_se"] = g0.coefficients.loc[term, "std_error"]
components(g0, "uncond")
print(pd.Series({k: v for k, v in RESULTS.items() if k.startswith("uncond_")}).round(4))

# %%
# Children gain 0.76 points a year on average. Their status in the middle of the study
# varies (variance 0.64 between children of a school, 0.17 between schools), and so does
# their growth (0.011 between children, 0.011 between schools). Children who score higher
# also tend to grow faster (correlation 0.55 within schools, 0.40 between schools).
#
# The share of the differences that lies between schools is quite different for status
# and for growth: about a fifth of the variance in status, but half of the variance in
# growth rates. Schools matter more for how fast children learn than for where they
# stand.
RESULTS["uncond_school_share_status"] = RESULTS["uncond_school_intercept"] / (
    RESULTS["uncond_school_intercept"] + RESULTS["uncond_child_intercept"])
RESULTS["uncond_school_share_growth"] = RESULTS["uncond_school_year"] / (
    RESULTS["uncond_school_year"] + RESULTS["uncond_child_year"])
print(f"school share of status variance {RESULTS['uncond_school_share_status']:.3f}, "
      f"of growth variance {RESULTS['uncond_school_share_growth']:.3f}")

# %%
# Explaining status and growth
# ----------------------------
# Child characteristics (``black``, ``hispanic``) and a school characteristic (``lowinc``,
# the percentage of low-income students) predict both status and growth: in the combined
# formula each enters alone (status) and in interaction with ``year`` (growth).
g1 = mlm.lmer("math ~ year * (black + hispanic + lowinc) + (year | childid) + (year | schoolid)", eg)
terms = {"intercept": "(Intercept)", "year": "year", "black": "black1", "hispanic": "hispanic1",
         "lowinc": "lowinc", "year_black": "year:black1", "year_hispanic": "year:hispanic1",
         "year_lowinc": "year:lowinc"}
for key, term in terms.items():
    RESULTS[f"cond_{key}"] = g1.fixef[term]
    RESULTS[f"cond_{key}_se"] = g1.coefficients.loc[term, "std_error"]
components(g1, "cond")
print(g1.coefficients[["estimate", "std_error"]].round(4))

# %%
# Black and Hispanic children score about half and a third of a point lower in the middle
# of the study, but do not grow at clearly different rates. Schools with more low-income
# students score lower (0.0076 per percentage point) *and* have children who grow more
# slowly (0.0014 per point a year).
#
# How much of the school-level variance do these predictors explain?
RESULTS["cond_explained_school_intercept"] = 1 - RESULTS["cond_school_intercept"] / RESULTS["uncond_school_intercept"]
RESULTS["cond_explained_school_year"] = 1 - RESULTS["cond_school_year"] / RESULTS["uncond_school_year"]
print(pd.DataFrame({
    "unconditional": [RESULTS["uncond_school_intercept"], RESULTS["uncond_school_year"]],
    "conditional": [RESULTS["cond_school_intercept"], RESULTS["cond_school_year"]],
    "explained": [RESULTS["cond_explained_school_intercept"], RESULTS["cond_explained_school_year"]]},
    index=["school status variance", "school growth variance"]).round(4))

# %%
# Half of the differences in school mean status and a quarter of the differences in
# school mean growth go with ethnicity and poverty.
