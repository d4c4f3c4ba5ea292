"""Estimation engines for linear mixed models: ``pls`` (lme4's profiled deviance by penalised least
squares on per-group or sparse structure, the default) and ``mixedlm`` (the one bridge to
statsmodels MixedLM, ``engine="statsmodels"``)."""
