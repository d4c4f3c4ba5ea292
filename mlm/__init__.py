"""mlm: multilevel (mixed, hierarchical) linear models from lme4-style formulas.

>>> import mlm
>>> fit = mlm.lmer("mathach ~ ses + (ses | school)", mlm.load_dataset("hsb"))
>>> print(fit)                                          # doctest: +SKIP

Stages you can call on their own: :func:`parse_formula` -> :func:`build_design` ->
:func:`fit_design` -> :class:`MixedResult`; :func:`lmer` chains them.
"""

# Stages: formula -> design -> engine -> results (linear and generalised families).
from mlm.errors import DataError, FitError, FormulaError, MLMError
from mlm.formula import ParsedFormula, RandomTerm, parse_formula
from mlm.frames import BinaryOutcomeWarning, DesignWarning, ScaleWarning
from mlm.design import Design, MissingDataWarning, RandomBlock, build_design
from mlm.fitting import ConvergenceWarning, fit_design, lmer
from mlm.results.linear import MixedResult
from mlm.glmm.fitting import SeparationWarning, glmer
from mlm.glmm.results import GLMMResult
from mlm.data import describe_dataset, list_datasets, load_dataset
# The toolkit, inference, simulation and reporting.
from mlm.toolkit.bootstrap import BootstrapResult, bootstrap
from mlm.toolkit.centering import center
from mlm.toolkit.comparison import ComparisonError, OLSComparison, RefitWarning, compare, compare_ols
from mlm.toolkit.interactions import (InteractionError, JohnsonNeyman, cross_level, johnson_neyman,
                                      simple_slopes)
from mlm.toolkit.nesting import NestingReport, describe_nesting, levels
from mlm.toolkit.variance import icc, r2
from mlm.simulation.power import power
from mlm.simulation.simulate import simulate_dataset
from mlm.inference import (BoundaryWarning, RobustError, VarianceTestError, confint, ranova, robust,
                           variance_tests)
from mlm.inference.anova import anova
from mlm.inference.emmeans import marginal_means, pairwise
from mlm.inference.hypothesis import test
from mlm.report.table import ComparisonTable, ModelTable, TableError, table
from mlm.report.plots import plot_groups, plot_ranef, plot_residuals, plot_simple_slopes

__version__ = "0.1.0"

__all__ = [
    "lmer", "fit_design", "build_design", "parse_formula", "MixedResult", "Design", "RandomBlock",
    "ParsedFormula", "RandomTerm", "center", "load_dataset", "list_datasets", "describe_dataset",
    "bootstrap", "BootstrapResult", "power", "simulate_dataset", "icc", "r2", "describe_nesting",
    "levels", "NestingReport",
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
