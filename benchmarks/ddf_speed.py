"""Cost of Satterthwaite and Kenward-Roger df beside the cost of the fit (issue 12, item 8).

Usage (from the repository root)::

    python benchmarks/ddf_speed.py [--repeats 5] [--models hsb_slopes ...]

(with the package installed, or ``PYTHONPATH=.`` to time a working tree).

For each benchmark model of benchmarks/run.py: the median time of a full fit
(``mlm.lmer``), of Satterthwaite's df for every coefficient on a fresh fit (the
``fit.coefficients`` table, which computes the Hessian of the deviance and the Jacobian
of vcov(beta) once), and of Kenward-Roger's table where the model is small enough.
Beside them, lmerTest's and pbkrtest's times for the same work from
benchmarks/ddf_speed_lmertest.json (written by ``Rscript benchmarks/ddf_speed.R``), and the
ratios R / mlm. Prints a table and writes benchmarks/results/ddf_speed.json. No test depends
on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (the models and data of benchmarks/run.py)

DEFAULT = ["hsb_slopes", "chem97_3level", "scotssec_crossed", "sim100k_slope", "sim_nested",
           "insteval_crossed"]


def time_model(model, repeats):
    import mlm
    from mlm.inference import kenward_roger

    data_name, formula, reml, _ = bench.MODELS[model]
    data = bench.load(data_name)
    fit_t, satt_t, kr_t = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit = mlm.lmer(formula, data, reml=reml)
        fit_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _ = fit.coef_table("satterthwaite")
        satt_t.append(time.perf_counter() - t0)
        try:
            t0 = time.perf_counter()
            _ = fit.coef_table("kenward-roger")
            kr_t.append(time.perf_counter() - t0)
        except mlm.MLMError:
            kr_t.append(float("nan"))
    med = statistics.median
    return {"model": model, "nobs": fit.nobs, "fit_s": med(fit_t), "satterthwaite_s": med(satt_t),
            "kenward_roger_s": med(kr_t), "ratio_satt_to_fit": med(satt_t) / med(fit_t),
            "kr_size_entries": kenward_roger.kr_size(fit)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=DEFAULT)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    ref_path = HERE / "ddf_speed_lmertest.json"
    ref = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    print(f"{'model':<18} {'nobs':>8} {'fit s':>8} {'Satt s':>8} {'Satt/fit':>9} {'KR s':>8}"
          f" | {'lmerTest Satt s':>15} {'ratio':>6} {'pbkrtest KR s':>13} {'ratio':>6}")
    for m in args.models:
        r = time_model(m, 1 if m == "insteval_crossed" else args.repeats)
        theirs = ref.get(m, {})
        r["lmertest_satterthwaite_s"] = theirs.get("satterthwaite_s", float("nan"))
        r["pbkrtest_kenward_roger_s"] = theirs.get("kenward_roger_s", float("nan"))
        rows.append(r)
        print(f"{m:<18} {r['nobs']:>8} {r['fit_s']:8.3f} {r['satterthwaite_s']:8.3f} "
              f"{r['ratio_satt_to_fit']:9.2f} {r['kenward_roger_s']:8.3f} | "
              f"{r['lmertest_satterthwaite_s']:15.3f} "
              f"{r['lmertest_satterthwaite_s'] / r['satterthwaite_s']:6.1f} "
              f"{r['pbkrtest_kenward_roger_s']:13.3f} "
              f"{r['pbkrtest_kenward_roger_s'] / r['kenward_roger_s']:6.1f}", flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "ddf_speed.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
