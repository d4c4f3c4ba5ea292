"""Fitted-model results: one base (``base.ModelResult``) that linear (``linear.MixedResult``) and
generalised (``mlm.glmm.results``) fits extend, so that names and printing agree across families."""
