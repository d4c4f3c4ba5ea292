"""mlm.marginal_means and mlm.pairwise against emmeans 1.8.4-1.

Reference: tests/reference/inference_emmeans.json (tests/reference/inference_emmeans.R):
``emmeans(m, "vr", lmer.df = "satterthwaite")``, ``pairs(..., adjust = "tukey" | "holm" |
"none")`` and ``emmeans(m, "vr", by = "schgend")`` for
``normexam ~ standLRT * vr + schgend + (standLRT | school)`` on exam (REML, bobyqa).
Tolerances as in test_inference_ddf.py: 1e-3 relative on means and SEs (the fit's
precision), 2e-3 on df, 1e-2 on log p-values.
"""

from __future__ import annotations

import numpy as np
import pytest

import mlm
import json
from pathlib import Path

from test_inference_ddf import _close, _logp, get_fit

EM = json.loads((Path(__file__).parent / "reference" / "inference_emmeans.json").read_text())


@pytest.fixture(scope="module")
def exam_fit():
    return get_fit("exam_factors")


def test_marginal_means(exam_fit):
    ref = EM["vr"]                       # R: summary(emmeans(m, "vr", lmer.df = "satterthwaite"))
    out = mlm.marginal_means(exam_fit, "vr")
    assert list(out.index) == ref["level"] and out.index.name == "vr"
    _close(out["emmean"], ref["emmean"], rtol=1e-3, atol=1e-5)
    _close(out["std_error"], ref["se"], rtol=1e-3)
    _close(out["df"], ref["df"])
    _close(out["conf_low"], ref["lower"], rtol=2e-3, atol=1e-4)
    _close(out["conf_high"], ref["upper"], rtol=2e-3, atol=1e-4)


def test_marginal_means_by(exam_fit):
    ref = EM["vr_by_schgend"]            # R: summary(emmeans(m, "vr", by = "schgend"))
    out = mlm.marginal_means(exam_fit, "vr", by="schgend")
    assert [(a, b) for a, b in out.index] == list(zip(ref["level"], ref["by"]))
    _close(out["emmean"], ref["emmean"], rtol=1e-3, atol=1e-5)
    _close(out["std_error"], ref["se"], rtol=1e-3)
    _close(out["df"], ref["df"])


def test_marginal_means_kenward_roger(exam_fit):
    ref = EM["kenward_roger"]            # R: emmeans(m, "vr", lmer.df = "kenward-roger")
    out = mlm.marginal_means(exam_fit, "vr", ddf="kenward-roger")
    _close(out["std_error"], ref["se"], rtol=1e-3)
    _close(out["df"], ref["df"])


@pytest.mark.parametrize("adjust", ["tukey", "holm", "none"])
def test_pairwise(exam_fit, adjust):
    ref = EM["pairs"][adjust]            # R: summary(pairs(em, adjust = adjust))
    out = mlm.pairwise(exam_fit, "vr", adjust=adjust)
    assert list(out.index) == ref["contrast"]
    _close(out["estimate"], ref["estimate"], rtol=1e-3, atol=1e-5)
    _close(out["std_error"], ref["se"], rtol=1e-3)
    _close(out["df"], ref["df"])
    _close(out["statistic"], ref["t"], rtol=2e-3)
    _logp(out["p_value"], ref["p"])


def test_bad_input(exam_fit):
    with pytest.raises(mlm.MLMError, match="specs='standLRT' is not a factor.*'vr', 'schgend'"):
        mlm.marginal_means(exam_fit, "standLRT")
    with pytest.raises(mlm.MLMError, match="by='school' is not a factor"):
        mlm.marginal_means(exam_fit, "vr", by="school")
    with pytest.raises(mlm.MLMError, match="by must name another factor"):
        mlm.marginal_means(exam_fit, "vr", by="vr")
    with pytest.raises(mlm.MLMError, match="Unknown adjust 'bonferroni'"):
        mlm.pairwise(exam_fit, "vr", adjust="bonferroni")
