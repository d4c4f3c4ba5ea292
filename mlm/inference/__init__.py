"""Inference for fitted models: intervals for every parameter, tests of random terms,
HLM's variance tests, cluster-robust standard errors.

Each function takes a :class:`mlm.MixedResult` and returns pandas objects.
"""

from .confint import BoundaryWarning, confint
from .hlm import VarianceTestError, variance_tests
from .ranova import ranova
from .robust import RobustError, robust

__all__ = ["confint", "ranova", "BoundaryWarning", "variance_tests", "VarianceTestError",
           "robust", "RobustError"]
