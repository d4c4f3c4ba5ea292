"""Output for papers and checks: figures (:mod:`mlm.report.plots`)."""

from .plots import plot_groups, plot_ranef, plot_residuals, plot_simple_slopes

__all__ = ["plot_ranef", "plot_simple_slopes", "plot_groups", "plot_residuals"]
