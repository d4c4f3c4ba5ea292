"""mlm: multilevel (mixed, hierarchical) linear models from lme4-style formulas.

>>> import mlm
>>> fit = mlm.lmer("mathach ~ ses + (ses | school)", mlm.load_dataset("hsb"))
>>> print(fit)                                          # doctest: +SKIP

Stages you can call on their own: :func:`parse_formula` -> :func:`build_design` ->
:func:`fit_design` -> :class:`MixedResult`; :func:`lmer` chains them.
"""

# Every public name and the module that defines it. Nothing is imported until a name is
# first used (PEP 562's module __getattr__), so that `import mlm` costs next to nothing
# and `mlm --help` answers at once; the first `mlm.lmer(...)` imports the stages it needs
# (issue 16). Stages: formula -> design -> engine -> results (linear and generalised
# families); then the toolkit, inference, simulation and reporting.
_EXPORTS = {
    "mlm.errors": ("DataError", "FitError", "FormulaError", "MLMError"),
    "mlm.formula": ("ParsedFormula", "RandomTerm", "parse_formula"),
    "mlm.frames": ("BinaryOutcomeWarning", "DesignWarning", "ScaleWarning"),
    "mlm.design": ("Design", "MissingDataWarning", "RandomBlock", "build_design"),
    "mlm.fitting": ("ConvergenceWarning", "fit_design", "lmer"),
    "mlm.results.linear": ("MixedResult",),
    "mlm.glmm.fitting": ("SeparationWarning", "glmer"),
    "mlm.glmm.results": ("GLMMResult",),
    "mlm.data": ("describe_dataset", "list_datasets", "load_dataset"),
    "mlm.toolkit.bootstrap": ("BootstrapResult", "bootstrap"),
    "mlm.toolkit.centering": ("center",),
    "mlm.toolkit.comparison": ("ComparisonError", "OLSComparison", "RefitWarning", "compare",
                               "compare_ols"),
    "mlm.toolkit.interactions": ("InteractionError", "JohnsonNeyman", "cross_level",
                                 "johnson_neyman", "simple_slopes"),
    "mlm.toolkit.nesting": ("NestingReport", "describe_nesting", "levels"),
    "mlm.toolkit.variance": ("icc", "r2"),
    "mlm.toolkit.overdispersion": ("OverdispersionTest", "check_overdispersion"),
    "mlm.simulation.power": ("power",),
    "mlm.simulation.simulate": ("simulate_dataset",),
    "mlm.inference": ("BoundaryWarning", "RobustError", "VarianceTestError", "confint", "ranova",
                      "robust", "variance_tests"),
    "mlm.inference.anova": ("anova",),
    "mlm.inference.emmeans": ("marginal_means", "pairwise"),
    "mlm.inference.hypothesis": ("test",),
    "mlm.report.table": ("ComparisonTable", "ModelTable", "TableError", "table"),
    "mlm.report.plots": ("plot_groups", "plot_ranef", "plot_residuals", "plot_simple_slopes"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__version__ = "0.1.0"

#: The public names: exactly those of the table above.
__all__ = list(_WHERE)
