"""Helpers shared by the test modules (pytest puts tests/ on the import path)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

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


# --------------------------------------------------------------------------- glmer reference cases
REFERENCE = Path(__file__).parent / "reference"


def patsy_formula(formula):
    """R's formula in mlm's patsy spelling: I(age^2) is I(age**2); a proportion on the left
    is wrapped in I()."""
    return formula.replace("I(age^2)", "I(age**2)").replace("incidence / size ~", "I(incidence / size) ~")


def reference_data(name):
    """A data set as the R reference scripts build it (tests/reference/load_data.R)."""
    if name == "cbpp":
        return mlm.load_dataset("cbpp").assign(obs=np.arange(1, 57))  # R: factor(1:56)
    if name == "counts":  # simulated by tests/reference/glmm_toolkit.R
        d = pd.read_csv(REFERENCE / "glmm_toolkit_counts.csv")
        return d.assign(obs=np.arange(1, len(d) + 1))
    return mlm.load_dataset(name)


def glmer_cases(ref):
    """A function fitting ``ref[case]`` (formula, data, family, link, weights and nagq when
    given) with mlm.glmer, once per case, ConvergenceWarnings silenced."""
    fits = {}

    def fit(case):
        if case not in fits:
            c = ref[case]
            kw = {"nagq": c["nagq"]} if "nagq" in c else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", mlm.ConvergenceWarning)
                fits[case] = mlm.glmer(patsy_formula(c["formula"]), reference_data(c["data"]),
                                       family=c["family"], link=c["link"], weights=c.get("weights"),
                                       **kw)
        return fits[case]

    return fit
