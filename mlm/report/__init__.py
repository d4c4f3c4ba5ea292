"""Output for papers and checks: tables of models (:mod:`mlm.report.table`) and figures
(:mod:`mlm.report.plots`), and the HLM program's layout of a fit
(:mod:`mlm.report.hlm_style`)."""

from mlm.report.hlm_style import HLMStyleError, hlm_summary
from mlm.report.plots import plot_groups, plot_ranef, plot_residuals, plot_simple_slopes
from mlm.report.table import ComparisonTable, ModelTable, TableError

__all__ = ["HLMStyleError", "hlm_summary", "ComparisonTable", "ModelTable", "TableError",
           "plot_ranef", "plot_simple_slopes", "plot_groups", "plot_residuals"]
