"""Inference for fitted models: intervals for every parameter and tests of random terms."""

from .confint import BoundaryWarning, confint
from .ranova import ranova

__all__ = ["confint", "ranova", "BoundaryWarning"]
