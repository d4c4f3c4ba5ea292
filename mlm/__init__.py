"""mlm: multilevel (mixed, hierarchical) linear models from lme4-style formulas.

>>> import mlm
>>> fit = mlm.lmer("mathach ~ ses + (ses | school)", mlm.load_dataset("hsb"))
>>> print(fit)                                          # doctest: +SKIP

Stages you can call on their own: :func:`parse_formula` -> :func:`build_design` ->
:func:`fit_design` -> :class:`MixedResult`; :func:`lmer` chains them.
"""

from .centering import center
from .data import list_datasets, load_dataset
from .design import Design, RandomBlock, build_design
from .errors import DataError, FitError, FormulaError, MLMError
from .fitting import ConvergenceWarning, fit_design, lmer
from .formula import ParsedFormula, RandomTerm, parse_formula
from .results import MixedResult

__version__ = "0.1.0"

__all__ = [
    "lmer", "fit_design", "build_design", "parse_formula", "MixedResult", "Design", "RandomBlock",
    "ParsedFormula", "RandomTerm", "center", "load_dataset", "list_datasets",
    "MLMError", "FormulaError", "DataError", "FitError", "ConvergenceWarning",
]
