"""Worst relative difference of Satterthwaite's df to lmerTest's, per reference case.

Usage (from the repository root)::

    python benchmarks/satt_agreement.py

Reads tests/reference/inference_ddf.json (coefficient table, anova types 3 and 1,
joint contests) and tests/reference/inference_anova.json (anova types 3 and 1), fits each
model as the tests do and prints, per case, the worst relative difference of every
Satterthwaite df to lmerTest's. No test depends on it.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import mlm  # noqa: E402
from mlm.inference import ddf as ddfmod  # noqa: E402
from test_inference_ddf import CASES, as_list, get_fit  # noqa: E402
from support import fit as quiet_fit  # noqa: E402


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(as_list(b), dtype=float)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main():
    warnings.simplefilter("ignore")
    rows = []
    for cid, c in CASES.items():
        fit = get_fit(cid)
        worst = {"coef": rel(fit.coefficients["df"], c["satterthwaite"]["df"])}
        for t in (3, 1):
            ref = c[f"anova{t}_satterthwaite"]
            if as_list(ref["term"]):
                worst[f"anova{t}"] = rel(mlm.anova(fit, type=t)["den_df"], ref["den_df"])
        cont = [rel([ddfmod.contrast_test(fit, np.array(k["L"], dtype=float), ddf="satterthwaite",
                                          joint=True).den_df], [r["den_df"]])
                for k, r in zip(c["contrasts"], c["contest_satterthwaite"])]
        if cont:
            worst["contest"] = max(cont)
        rows.append((cid, worst))
    ref2 = json.loads((ROOT / "tests" / "reference" / "inference_anova.json").read_text())
    for c in ref2["cases"]:
        fit = quiet_fit(c["formula"], mlm.load_dataset(c["data"]), reml=c["reml"])
        worst = {f"anova{t}": rel(mlm.anova(fit, type=t)["den_df"], c[f"anova{t}_satterthwaite"]["den_df"])
                 for t in (3, 1)}
        worst["coef"] = float("nan")
        rows.append((c["id"], worst))
    print(f"{'case':<28} {'worst rel. diff':>16}  (by table)")
    allw = []
    for cid, w in rows:
        vals = [v for v in w.values() if np.isfinite(v)]
        allw += vals
        detail = ", ".join(f"{k} {v:.1e}" for k, v in w.items() if np.isfinite(v))
        print(f"{cid:<28} {max(vals):>16.2e}  ({detail})")
    print(f"{'overall':<28} {max(allw):>16.2e}")


if __name__ == "__main__":
    main()
