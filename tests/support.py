"""Helpers shared by the test modules (pytest puts tests/ on the import path)."""

from __future__ import annotations

import warnings

import mlm


def fit(formula, data, **kw):
    """mlm.lmer with its warnings silenced (tests that check warnings call lmer directly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlm.lmer(formula, data, **kw)


def hsb_with_cses():
    """hsb with R&B's group-centered ses.  R: hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)"""
    d = mlm.load_dataset("hsb")
    d["cses"] = d["ses"] - d.groupby("school")["ses"].transform("mean")
    return d
