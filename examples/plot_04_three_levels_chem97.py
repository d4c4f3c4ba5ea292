"""
Three levels: students in schools in local education authorities
================================================================

The ``chem97`` data (mlmRev's ``Chem97``) hold the 1997 A-level chemistry scores of
31,022 English students in 2,410 schools, which lie in 131 local education authorities
(LEAs). Students are nested in schools and schools in LEAs: three levels.

The questions:

* How is the variation in chemistry scores shared between students, schools and LEAs?
* How much of each level's variance do the students' earlier GCSE results and their
  gender account for?

Along the way: how to write a nested random structure, ``(1 | lea/school)``, and the two
conventions for the intraclass correlation at three levels.
"""

# %%
# The structure first
# -------------------
# ``mlm.describe_nesting`` counts the groups of each factor and checks how they relate.
# School ids are unique across LEAs here, but writing ``lea/school`` (which expands to
# ``(1 | lea) + (1 | school:lea)``) is safe either way: a school id reused in two LEAs
# would still be two schools.
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
chem = mlm.load_dataset("chem97")
nesting = mlm.describe_nesting(chem, ["lea", "school"])
print(nesting.factors[["n_groups", "min_size", "median_size", "max_size", "singletons"]])
print(nesting.relations)
RESULTS = {      # every number printed below, checked by tests/test_examples.py
    "n_lea": int(nesting.factors.loc["lea", "n_groups"]),
    "n_school": int(nesting.factors.loc["school", "n_groups"])}
for f in ("lea", "school"):
    for col in ("min_size", "median_size", "max_size", "singletons"):
        RESULTS[f"nesting_{f}_{col}"] = float(nesting.factors.loc[f, col])

# %%
# Schools are small on average (a median of 8 chemistry students) and 162 schools have a
# single student; LEAs hold 10 to 969 students.
#
# The null model: where does the variation lie?
# ---------------------------------------------
# With no predictors, the variance of ``score`` splits into three parts. ``mlm.icc``
# reports each level's share of the total (``icc``: performance's convention) and, for
# the schools, Stata's *cumulative* ICC: the correlation between two students of the same
# school, who necessarily share their LEA too (LEA + school share).
null = mlm.lmer("score ~ 1 + (1 | lea/school)", chem)
vc0 = null.varcorr.set_index("grp")["vcov"]
icc0 = mlm.icc(null)
RESULTS.update(
    null_intercept=null.fixef["(Intercept)"], null_school=vc0["school:lea"], null_lea=vc0["lea"],
    null_sigma2=vc0["Residual"], null_share_lea=icc0.loc["lea", "icc"],
    null_share_school=icc0.loc["school:lea", "icc"],
    null_icc_school_cumulative=icc0.loc["school:lea", "icc_cumulative"], null_loglik=null.loglik)
print(null.varcorr[["grp", "vcov"]].round(4))
print(icc0[["icc", "icc_cumulative"]].round(4))

# %%
# About a quarter of the variance lies between schools (24.1%), very little between LEAs
# (1.3%), and the rest (about 75%) between students of the same school. Two students of
# the same school correlate 0.254.
#
# Adding predictors at level 1
# ----------------------------
# ``gcsecnt`` is the student's average GCSE score, centred; ``gender`` is a factor with
# males as the reference. Their effects are fixed (the same in every school).
full = mlm.lmer("score ~ gcsecnt + gender + (1 | lea/school)", chem)
vc1 = full.varcorr.set_index("grp")["vcov"]
for term, key in [("(Intercept)", "intercept"), ("gcsecnt", "gcsecnt"), ("genderF", "genderF")]:
    RESULTS[f"full_{key}"] = full.fixef[term]
    RESULTS[f"full_{key}_se"] = full.coefficients.loc[term, "std_error"]
RESULTS.update(full_school=vc1["school:lea"], full_lea=vc1["lea"], full_sigma2=vc1["Residual"],
               full_loglik=full.loglik)
print(full.coefficients[["estimate", "std_error"]].round(4))

# %%
# A student one GCSE point above average scores 2.56 points higher in A-level chemistry;
# girls score 0.74 lower than boys with the same GCSE average.
#
# How much of each level's variance is explained?
# -----------------------------------------------
# Raudenbush & Bryk's proportional reduction of variance compares each variance component
# with its value in the null model. Prior attainment explains 41% of the student-level
# variance, 59% of the school-level variance (schools differ largely because their
# intakes differ) and 87% of the LEA-level variance.
for level, key in [("Residual", "student"), ("school:lea", "school"), ("lea", "lea")]:
    RESULTS[f"full_explained_{key}"] = 1 - vc1[level] / vc0[level]
table = pd.DataFrame({"null": vc0, "with predictors": vc1})
table["explained"] = 1 - table["with predictors"] / table["null"]
print(table.round(4))
