"""The multilevel toolkit: variance partition and ICC (``variance``), centering, nesting checks,
cross-level interactions and simple slopes (``interactions``), model and OLS comparisons
(``comparison``) and the parametric bootstrap (``bootstrap``)."""
