"""Inference for fitted models: HLM's variance tests, cluster-robust standard errors.

Each function takes a :class:`mlm.MixedResult` and returns pandas objects.
"""

from .hlm import VarianceTestError, variance_tests
from .robust import RobustError, robust

__all__ = ["variance_tests", "VarianceTestError", "robust", "RobustError"]
