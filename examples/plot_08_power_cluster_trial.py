r"""
Planning a cluster-randomised trial: power by simulation and by formula
=======================================================================

A new mathematics programme is to be tested by randomising *schools*, half to the
programme and half to business as usual, and testing 20 pupils in each. How many schools
are needed to detect an effect of 0.3 standard deviations with reasonable power?

Because pupils in a school resemble each other (the intraclass correlation, ICC), 20
pupils in a school carry less information than 20 independent pupils, and the number of
*schools* drives the power. For this balanced design there is a formula (Raudenbush 1997,
*Psychological Methods* 2(2), 173-185): the test of the treatment effect is a t-test with
``J - 2`` degrees of freedom and noncentrality

.. math:: \lambda = \frac{\delta}{\sqrt{4 (\tau^2 + \sigma^2 / n) / J}}

for ``J`` schools of ``n`` pupils, an effect ``delta``, a between-school variance
``tau^2`` and a within-school variance ``sigma^2``. For designs without a formula
(unbalanced groups, covariates, random slopes, three levels) power is found by
simulation, as R's simr does: simulate many trials from the model, fit each one, and
count how often the effect is significant. Here both are possible, so we can check that
they agree.
"""

# %%
# A model to simulate from
# ------------------------
# ``mlm.simulate_dataset`` makes data with a chosen structure: 40 schools of 20 pupils,
# ICC 0.1 (outcome variance 1, so ``tau^2 = 0.1`` and ``sigma^2 = 0.9``), a school-level
# treatment given to every other school, and an effect of 0.3. Fitting the planned model
# to it gives the fitted model that ``mlm.power`` simulates from.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import mlm

pd.set_option("display.width", 100)
pd.set_option("display.max_columns", 20)
EFFECT, GROUP_SIZE, NSIM = 0.3, 20, 300
pilot_data = mlm.simulate_dataset(40, GROUP_SIZE, icc=0.1, fixed={"(Intercept)": 0.0, "treat": EFFECT},
                                  level2=["treat"], binary=["treat"], seed=20261126)
pilot = mlm.lmer("y ~ treat + (1 | group)", pilot_data)
tau2, sigma2 = pilot.varcorr["vcov"].iloc[0], pilot.sigma ** 2
RESULTS = {      # every number printed below, checked by tests/test_examples.py
    "pilot_tau2": tau2, "pilot_sigma2": sigma2, "pilot_treat": pilot.fixef["treat"],
    "pilot_treat_se": pilot.coefficients.loc["treat", "std_error"],
    "pilot_treat_df": pilot.coefficients.loc["treat", "df"]}
print(pd.Series(RESULTS).round(4))

# %%
# The estimates differ from the values chosen (0.1, 0.9 and 0.3): one simulated data set
# has sampling error, and an effect of 0.3 is hard to see in 40 schools. ``mlm.power`` simulates from the *fitted* model,
# with its estimated variances and the effect we give it (``effect=0.3``), so the formula
# below uses the same estimated variances. The Satterthwaite df of the treatment test is
# exactly ``J - 2 = 38`` here, as the theory for a balanced design says.
#
# Power by simulation
# -------------------
# ``n_groups`` lists the numbers of schools to try: fewer than 40 take the first schools,
# more repeat them as new schools (simr's ``powerCurve`` and ``extend``). Every design size
# gets ``nsim`` simulated trials; a real analysis would use 1,000 or more, and ``n_jobs=-1``
# to use every core. The 95% interval is Clopper-Pearson's, as in simr.
sizes = [20, 30, 40, 60]
sim = mlm.power(pilot, "treat", effect=EFFECT, n_groups=sizes, nsim=NSIM, seed=1, progress=False)
print(sim[["n_groups", "group_size", "power", "conf_low", "conf_high", "nsim", "failures"]])

# %%
# Power by formula
# ----------------
# The noncentral t distribution gives the probability that ``|t|`` exceeds the critical
# value of a t with ``J - 2`` df.


def analytic_power(J, n=GROUP_SIZE, delta=EFFECT, alpha=0.05):
    """Raudenbush (1997): two-sided power of the treatment t-test, J groups of n, half treated."""
    df = J - 2
    ncp = delta / np.sqrt(4 * (tau2 + sigma2 / n) / J)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)


table = pd.DataFrame({"schools": sizes, "simulated": sim["power"].to_numpy(),
                      "analytic": [analytic_power(J) for J in sizes]})
# the Monte Carlo standard error of a simulated proportion, at the analytic power
table["mc_se"] = np.sqrt(table["analytic"] * (1 - table["analytic"]) / NSIM)
table["z"] = (table["simulated"] - table["analytic"]) / table["mc_se"]
RESULTS["power_table"] = table
print(table.round(3).to_string(index=False))

# %%
# Each simulated power lies within the Monte Carlo error of the formula (``z`` is the
# difference in standard errors; a few hundred simulations leave an SE of about 0.03).
# Twenty schools give less than an even chance of detecting the effect. The formula also
# answers the planning question directly: the smallest even number of schools with 80%
# power.
RESULTS["schools_for_80"] = next(J for J in range(4, 400, 2) if analytic_power(J) >= 0.8)
print(f"{RESULTS['schools_for_80']} schools of {GROUP_SIZE} pupils give 80% power")

# %%
# The power curve
# ---------------
fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
grid = np.arange(10, 81, 2)
ax.plot(grid, [analytic_power(J) for J in grid], color="black", label="formula (noncentral t)")
ax.errorbar(sim["n_groups"], sim["power"],
            yerr=[sim["power"] - sim["conf_low"], sim["conf_high"] - sim["power"]],
            fmt="o", capsize=3, label=f"simulation ({NSIM} trials, 95% CI)")
ax.axhline(0.8, color="grey", ls=":", lw=1)
ax.set_xlabel(f"number of schools (half treated), {GROUP_SIZE} pupils each")
ax.set_ylabel("power")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
