"""The engine alone: evaluations per fit and CPU time per deviance (and gradient) evaluation.

Usage (from the repository root)::

    python benchmarks/engine_bench.py                    # every model
    python benchmarks/engine_bench.py hsb_slopes sim1m   # some

For each benchmark model of ``benchmarks/run.py`` (same data and formulas) it builds the
design once, then reports the median CPU time (``time.process_time``, steadier than wall
time on a shared machine) of: the optimisation, one deviance evaluation and one deviance
with its exact gradient at the optimum, and the number of evaluations the optimiser made.
No test depends on these numbers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

_spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

MODELS = {
    "hsb_slopes": ("hsb", run.MODELS["hsb_slopes"][1]),
    "chem97_3level": ("chem97", run.MODELS["chem97_3level"][1]),
    "scotssec_crossed": ("scotssec", run.MODELS["scotssec_crossed"][1]),
    "sim100k_slope": ("sim100k", run.MODELS["sim100k_slope"][1]),
    "sim1m_slope": ("sim1m", run.MODELS["sim1m_slope"][1]),
    "insteval_crossed": ("insteval", run.MODELS["insteval_crossed"][1]),
    "insteval_three": ("insteval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)"),
    # issue 16's crossed layouts: the whole system dense, and a crossed remainder under a slope
    "penicillin_crossed": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "scotssec_slope": ("scotssec", "attain ~ verbal + (verbal | primary) + (1 | second)"),
}


def cpu_median(f, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        f()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def bench(model: str) -> dict:
    import mlm
    from mlm.engine.pls import PLSProblem, single_threaded_blas

    data_name, formula = MODELS[model]
    design = mlm.build_design(formula, run.load(data_name))
    big = model.startswith("insteval") or model == "sim1m_slope"
    problem = PLSProblem(design.y, design.X, design.pls_terms(), reml=True)
    theta, info = problem.optimize()
    opt = cpu_median(lambda: PLSProblem(design.y, design.X, design.pls_terms(), reml=True).optimize(),
                     1 if model.startswith("insteval") else 5)
    with single_threaded_blas():
        reps = 5 if big else 100
        dev = cpu_median(lambda: problem.deviance(theta), reps)
        grad = cpu_median(lambda: problem.deviance_and_gradient(theta), reps)
    return {"model": model, "evaluations": info["evaluations"], "optimize_cpu_s": round(opt, 4),
            "deviance_ms": round(1e3 * dev, 3), "deviance_and_gradient_ms": round(1e3 * grad, 3),
            "exact_gradient": problem.has_gradient, "deviance": info["deviance"]}


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    names = (argv if argv is not None else sys.argv[1:]) or list(MODELS)
    for name in names:
        print(json.dumps(bench(name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
