"""mlm: multilevel (mixed, hierarchical) linear models from lme4-style formulas.

>>> import mlm
>>> fit = mlm.lmer("mathach ~ ses + (ses | school)", mlm.load_dataset("hsb"))
>>> print(fit)                                          # doctest: +SKIP

Stages you can call on their own: :func:`parse_formula` -> :func:`build_design` ->
:func:`fit_design` -> :class:`MixedResult`; :func:`lmer` chains them.
"""

from .bootstrap import BootstrapResult, bootstrap
from .power import power
from .simulate import simulate_dataset
from .centering import center
from .comparison import ComparisonError, OLSComparison, RefitWarning, compare, compare_ols
from .interactions import InteractionError, JohnsonNeyman, cross_level, johnson_neyman, simple_slopes
from .nesting import NestingReport, describe_nesting, levels
from .variance import icc, r2
from .data import describe_dataset, list_datasets, load_dataset
from .design import Design, RandomBlock, build_design
from .errors import DataError, FitError, FormulaError, MLMError
from .fitting import ConvergenceWarning, fit_design, lmer
from .glmm_fitting import SeparationWarning, glmer
from .glmm_results import GLMMResult
from .formula import ParsedFormula, RandomTerm, parse_formula
from .design import MissingDataWarning
from .frames import BinaryOutcomeWarning, DesignWarning, ScaleWarning
from .results import MixedResult
from .inference import (BoundaryWarning, RobustError, VarianceTestError, confint, ranova, robust,
                        variance_tests)
from .inference.anova import anova
from .inference.emmeans import marginal_means, pairwise
from .inference.hypothesis import test
from .report.table import ComparisonTable, ModelTable, TableError, table
from .report.plots import plot_groups, plot_ranef, plot_residuals, plot_simple_slopes

__version__ = "0.1.0"

__all__ = [
    "lmer", "fit_design", "build_design", "parse_formula", "MixedResult", "Design", "RandomBlock",
    "ParsedFormula", "RandomTerm", "center", "load_dataset", "list_datasets", "describe_dataset",
    "bootstrap", "BootstrapResult", "power", "simulate_dataset", "icc", "r2", "describe_nesting", "levels", "NestingReport",
    "compare_ols", "compare", "OLSComparison", "cross_level", "simple_slopes", "johnson_neyman",
    "JohnsonNeyman", "anova", "test", "marginal_means", "pairwise",
    "plot_ranef", "plot_simple_slopes", "plot_groups", "plot_residuals",
    "MLMError", "FormulaError", "DataError", "FitError", "ComparisonError", "InteractionError",
    "ConvergenceWarning", "RefitWarning", "MissingDataWarning", "DesignWarning",
    "BinaryOutcomeWarning", "ScaleWarning",
    "variance_tests", "robust", "VarianceTestError", "RobustError",
    "confint", "ranova", "BoundaryWarning",
    "table", "ModelTable", "ComparisonTable", "TableError",
    "glmer", "GLMMResult", "SeparationWarning",
]
