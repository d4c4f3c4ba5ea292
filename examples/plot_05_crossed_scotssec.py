"""
Cross-classified: pupils from primary schools into secondary schools
====================================================================

The ``scotssec`` data (mlmRev's ``ScotsSec``; Paterson 1991) follow 3,435 Scottish pupils
from 148 primary schools into 19 secondary schools. A primary school sends pupils to
several secondary schools, and a secondary school takes pupils from many primary schools:
the two factors are *crossed*, not nested. Each pupil belongs to one cell of a
primary-by-secondary table.

The outcome is attainment on a standardised test at age 16 (``attain``); the predictors
are a verbal reasoning score on entry to secondary school (``verbal``) and sex.

The questions:

* How much do primary schools and secondary schools each contribute to attainment at 16?
* What goes wrong if we model only the secondary schools, as a nested design would?
"""

# %%
# Crossed, not nested
# -------------------
# ``mlm.describe_nesting`` finds the relation from the data.
import pandas as pd

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
scots = mlm.load_dataset("scotssec")
nesting = mlm.describe_nesting(scots, ["primary", "second"])
print(nesting.factors[["n_groups", "min_size", "max_size"]])
print(nesting.relations[["factor", "other", "relation"]])
RESULTS = {}     # every number printed below, checked by tests/test_examples.py
for f in ("primary", "second"):
    for col in ("n_groups", "min_size", "max_size"):
        RESULTS[f"nesting_{f}_{col}"] = int(nesting.factors.loc[f, col])

# %%
# Two crossed random intercepts
# -----------------------------
# Crossed factors are written as two separate terms, ``(1 | primary) + (1 | second)``. In
# the null model each variance is that factor's share of the variance in attainment.
null = mlm.lmer("attain ~ 1 + (1 | primary) + (1 | second)", scots)
vc0 = null.varcorr.set_index("grp")["vcov"]
total = vc0.sum()
RESULTS.update(null_primary=vc0["primary"], null_second=vc0["second"], null_sigma2=vc0["Residual"],
               null_share_primary=vc0["primary"] / total, null_share_second=vc0["second"] / total,
               null_share_residual=vc0["Residual"] / total,
               null_loglik=null.loglik)
print(pd.DataFrame({"variance": vc0, "share": vc0 / total}).round(4))

# %%
# The primary school a pupil attended accounts for 11.8% of the variance in attainment at
# 16, three times as much as the secondary school (3.9%), even though pupils spend their
# last years in the secondary school.
#
# With the pupils' intake characteristics
# ---------------------------------------
full = mlm.lmer("attain ~ verbal + sex + (1 | primary) + (1 | second)", scots)
vc1 = full.varcorr.set_index("grp")["vcov"]
for term, key in [("(Intercept)", "intercept"), ("verbal", "verbal"), ("sexF", "sexF")]:
    RESULTS[f"full_{key}"] = full.fixef[term]
    RESULTS[f"full_{key}_se"] = full.coefficients.loc[term, "std_error"]
RESULTS.update(full_primary=vc1["primary"], full_second=vc1["second"], full_sigma2=vc1["Residual"],
               full_loglik=full.loglik)
print(full.coefficients[["estimate", "std_error"]].round(4))
print(vc1.round(4))

# %%
# Verbal reasoning on entry predicts attainment at 16 strongly (0.16 points per point),
# and once it is controlled the secondary schools hardly differ (variance 0.014, down from
# 0.37): their differences in the null model came mostly from the pupils they received.
# Primary schools still differ (0.28).
#
# The mistake: leaving out the primary schools
# --------------------------------------------
# A model with only ``(1 | second)`` treats pupils of the same secondary school as
# exchangeable. The primary-school variance does not vanish: part of it is attributed to
# the secondary schools, whose variance is overstated more than three-fold, and the rest
# goes into the residual. The likelihood-ratio test (same fixed part, so the REML
# likelihoods compare) leaves no doubt that the primary schools belong in the model.
second_only = mlm.lmer("attain ~ verbal + sex + (1 | second)", scots)
vc2 = second_only.varcorr.set_index("grp")["vcov"]
RESULTS.update(second_only_second=vc2["second"], second_only_sigma2=vc2["Residual"],
               second_only_loglik=second_only.loglik)
print(pd.DataFrame({"crossed": vc1, "second only": vc2}).round(4))
lrt = mlm.compare(second_only, full, refit=False)
RESULTS["primary_lrt_chisq"] = lrt["chisq"].iloc[1]
print(f"LR test of the primary-school variance: chi2 = {RESULTS['primary_lrt_chisq']:.2f}")
