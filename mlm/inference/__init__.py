"""Inference for fitted models: degrees of freedom, tests of terms and hypotheses, intervals
for every parameter, tests of random terms, HLM's variance tests, cluster-robust standard errors.

Each function takes a :class:`mlm.MixedResult` and returns pandas objects. Modules (issue 12):

* :mod:`mlm.inference.ddf`: Satterthwaite's and Kenward-Roger's denominator degrees of
  freedom (lmerTest, pbkrtest) and :func:`~mlm.inference.ddf.contrast_test`, the test of
  ``L beta = rhs`` the other tests build on.
* :mod:`mlm.inference.anova`: lmerTest's type III and type I F-tests of model terms
  (:func:`mlm.anova`).
* :mod:`mlm.inference.hypothesis`: linear hypotheses written as text (:func:`mlm.test`).
* :mod:`mlm.inference.emmeans`: estimated marginal means and pairwise comparisons
  (:func:`mlm.marginal_means`, :func:`mlm.pairwise`).
* :mod:`mlm.inference.confint`, :mod:`mlm.inference.ranova`: intervals (profile, Wald,
  bootstrap) and lmerTest's likelihood-ratio tests of random terms.
* :mod:`mlm.inference.hlm`, :mod:`mlm.inference.robust`: HLM's variance tests and
  cluster-robust standard errors.
"""

from mlm.inference.confint import BoundaryWarning, confint
from mlm.inference.hlm import VarianceTestError, variance_tests
from mlm.inference.ranova import ranova
from mlm.inference.robust import RobustError, robust

__all__ = ["confint", "ranova", "BoundaryWarning", "variance_tests", "VarianceTestError",
           "robust", "RobustError"]
