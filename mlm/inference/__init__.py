"""Inference for fitted models: degrees of freedom, tests of terms and hypotheses, intervals.

Modules (issue 12):

* :mod:`mlm.inference.ddf`: Satterthwaite's and Kenward-Roger's denominator degrees of
  freedom (lmerTest, pbkrtest) and :func:`~mlm.inference.ddf.contrast_test`, the test of
  ``L beta = 0`` every other tool here builds on.
* :mod:`mlm.inference.anova`: lmerTest's type III and type I F-tests of model terms
  (:func:`mlm.anova`).
* :mod:`mlm.inference.hypothesis`: linear hypotheses written as text (:func:`mlm.test`).
* :mod:`mlm.inference.emmeans`: estimated marginal means and pairwise comparisons
  (:func:`mlm.marginal_means`).
"""
