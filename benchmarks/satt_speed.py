"""Time ``fit.coefficients`` (Satterthwaite's df for every coefficient) on fits made once.

Usage (from the repository root, one BLAS thread as the fit uses)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/satt_speed.py [--repeats 50] [--models hsb_slopes ...]

For each model the fit is made once; each repeat drops the fit's cached table and
inference parts and recomputes the table, so the time is the df computation alone (the
Hessian of the deviance, the Jacobian of vcov(beta), the table). Prints medians and the
time of ``satterthwaite_parts`` alone (medians; the minimum beside, steadier on a
shared machine). No test depends on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

MODELS = {
    "hsb_slopes": ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses"
               " + (ses | school)"),
    "scotssec_crossed": ("scotssec", "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
    "chem97_3level": ("chem97", "score ~ gcsescore + (1 | lea/school)"),
    "insteval_crossed": ("insteval", "y ~ service + (1 | s) + (1 | d)"),
}


def time_model(name, repeats):
    import mlm
    from mlm.inference import ddf

    data_name, formula = MODELS[name]
    fit = mlm.lmer(formula, bench.load(data_name))
    table, parts = [], []
    for _ in range(repeats):
        fit.__dict__.pop("coefficients", None)
        fit.__dict__.pop("_inference_cache", None)
        t0 = time.perf_counter()
        ddf.satterthwaite_parts(fit)
        parts.append(time.perf_counter() - t0)
        fit.__dict__.pop("_inference_cache", None)
        t0 = time.perf_counter()
        _ = fit.coefficients
        table.append(time.perf_counter() - t0)
    return statistics.median(table), statistics.median(parts), min(table)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for m in args.models:
        reps = max(3, args.repeats // 10) if m == "insteval_crossed" else args.repeats
        tab, parts, best = time_model(m, reps)
        print(f"{m:<18} coefficients {tab * 1e3:9.2f} ms (min {best * 1e3:8.2f})   satterthwaite_parts"
              f" {parts * 1e3:9.2f} ms   ({reps} repeats)")


if __name__ == "__main__":
    main()
