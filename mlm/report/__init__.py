"""Reports for papers: tables of models (and, from other modules, plots)."""

from .table import ComparisonTable, ModelTable, TableError
