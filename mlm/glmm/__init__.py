"""Generalised linear mixed models (``mlm.glmer``): binomial and Poisson outcomes.

The family's stages, in the order ``glmer`` chains them: ``family`` (distributions and links),
``design`` (outcome checks, weights, offsets on top of the linear design), ``structure`` (the
random-effects blocks), ``engine`` (lme4's penalised IRLS, Laplace and adaptive Gauss-Hermite
quadrature), ``fitting`` (start values and the outer optimisation), ``results`` and ``display``.
"""
