"""Time mlm.glmer beside lme4's glmer and glmmTMB, with log-likelihoods and peak memory (issue 14).

Usage (from the repository root; the timed process imports ``mlm`` as Python finds it, so
set ``PYTHONPATH=.`` to time a checkout rather than an installed copy)::

    python benchmarks/glmer_bench.py                      # both models, 5 and 3 repeats
    python benchmarks/glmer_bench.py --models sim100k_binary --repeats-large 5
    python benchmarks/glmer_bench.py --no-r               # mlm only
    python benchmarks/glmer_bench.py --r-tools lme4_default lme4_tolPwrss glmmTMB

Models:

* ``contraception``: ``use ~ age + I(age^2) + urban + livch + (1 | district)`` on the
  bundled data (1,934 women in 60 districts);
* ``sim100k_binary``: ``y ~ x + (x | g)``, a binary outcome simulated here with a fixed
  seed (100,000 rows in 2,000 groups of 50, random intercept SD 1 and slope SD 0.5), written
  to ``benchmarks/data/glmer_sim100k_binary.csv``, which the R script reads too.

Every (model, tool) pair runs in its own process, so that its peak resident memory (the
process's maximum RSS, interpreter and libraries included) is its own; R runs right after
Python for each model, so both see the same machine load. Times are medians over repeats
of the whole fit (design, optimisation, standard errors), data already in memory, in
wall-clock time and in CPU time (user + system, summed over threads; less sensitive to
other load on a shared machine). The
log-likelihood of each fit is reported beside its time, so that "as fast at the better
optimum" can be read off: lme4's default PIRLS tolerance and optimizer stop short of the
optimum that glmmTMB and lme4 with ``tolPwrss = 1e-10`` reach (field notes). Results are
printed and written to ``benchmarks/glmer_bench_<date>.json``. No test depends on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIM_SEED = 14

# model id -> (data, Python formula, R formula)
MODELS = {
    "contraception": ("contraception", "use ~ age + I(age**2) + urban + livch + (1 | district)",
                      "use ~ age + I(age^2) + urban + livch + (1 | district)"),
    "sim100k_binary": ("sim100k_binary", "y ~ x + (x | g)", "y ~ x + (x | g)"),
}
R_TOOLS = ("lme4_default", "lme4_tolPwrss", "glmmTMB")
# lme4 with tolPwrss = 1e-10 reaches glmmTMB's optimum but is slow (24 s on contraception,
# 159 s once on the 100,000-row model, on a loaded machine): only when asked for
DEFAULT_R_TOOLS = ("lme4_default", "glmmTMB")


def simulate_binary(n_groups: int = 2_000, per_group: int = 50, seed: int = SIM_SEED) -> pd.DataFrame:
    """A logistic random intercept and slope model: ``logit P(y) = -0.5 + 0.5 x + b0 + b1 x``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.standard_normal(g.size)
    b0 = rng.normal(0.0, 1.0, n_groups)
    b1 = rng.normal(0.0, 0.5, n_groups)
    eta = -0.5 + 0.5 * x + b0[g] + b1[g] * x
    y = (rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def data_path(name: str) -> Path | None:
    """The CSV both languages read (simulated sets), or None for a bundled data set."""
    if name != "sim100k_binary":
        return None
    DATA.mkdir(exist_ok=True)
    path = DATA / "glmer_sim100k_binary.csv"
    if not path.exists():
        simulate_binary().to_csv(path, index=False)
    return path


def child(model: str, repeats: int) -> None:
    """Time mlm.glmer on one model in this process; print JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import mlm

    name, formula, _ = MODELS[model]
    path = data_path(name)
    data = pd.read_csv(path) if path else mlm.load_dataset(name)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = mlm.glmer(formula, data)
        _ = fit.coefficients  # standard errors computed
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    import resource

    print(json.dumps({"median_s": float(np.median(times)), "times_s": times,
                      "median_cpu_s": float(np.median(cpu)), "loglik": fit.loglik,
                      "fixef": fit.fixef.tolist(), "se": fit.coefficients["std_error"].tolist(),
                      "evaluations": fit.fit_info.get("evaluations"), "mlm_file": mlm.__file__,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def _run(cmd, timeout) -> dict:
    """Run one child process and return its JSON (the last line of its output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"median_s": None, "note": f"did not finish in {timeout} s"}
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or ["no output"])[-1][:300]
        return {"median_s": None, "note": f"failed: {tail}"}
    return json.loads(lines[-1])


def run_mlm(model, repeats, timeout) -> dict:
    return _run([sys.executable, str(Path(__file__).resolve()), "--child", model, str(repeats)], timeout)


def run_r(model, tool, repeats, timeout) -> dict:
    name, _, formula = MODELS[model]
    path = data_path(name)
    cmd = ["Rscript", str(HERE / "glmer_bench.R"), tool, str(repeats), formula,
           name if path is None else str(path)]
    return _run(cmd, timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=5, help="repeats on contraception")
    parser.add_argument("--repeats-large", type=int, default=3, help="repeats on the 100,000-row model")
    parser.add_argument("--no-r", action="store_true", help="skip lme4 and glmmTMB")
    parser.add_argument("--r-tools", nargs="*", default=list(DEFAULT_R_TOOLS), choices=R_TOOLS)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per (model, tool) pair")
    parser.add_argument("--label", default="mlm", help="name of the mlm row (e.g. a version)")
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/glmer_bench_<date>.json)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    have_r = shutil.which("Rscript") is not None and not args.no_r
    results = {}
    for model in args.models:
        reps = args.repeats_large if model == "sim100k_binary" else args.repeats
        row = {args.label: run_mlm(model, reps, args.timeout)}
        print(f"  {model:<16} {args.label:<14} {row[args.label].get('median_s')}", file=sys.stderr)
        for tool in (args.r_tools if have_r else []):
            row[tool] = run_r(model, tool, reps, args.timeout)
            print(f"  {model:<16} {tool:<14} {row[tool].get('median_s')}", file=sys.stderr)
        best = max((r["loglik"] for r in row.values() if r.get("loglik") is not None), default=None)
        for r in row.values():
            if r.get("loglik") is not None:
                r["loglik_below_best"] = best - r["loglik"]
        results[model] = {"repeats": reps, "tools": row}

    table = [{"model": m, "tool": t, "median_s": r.get("median_s"), "cpu_s": r.get("median_cpu_s"),
              "loglik": r.get("loglik"),
              "below_best": r.get("loglik_below_best"), "peak_mib": r.get("peak_mib"),
              "note": r.get("note", "")}
             for m, res in results.items() for t, r in res["tools"].items()]
    frame = pd.DataFrame(table).set_index(["model", "tool"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": sys.version.split()[0],
           "machine": platform.machine(), "cores": os.cpu_count(),
           "load_average_at_end": os.getloadavg(), "simulation_seed": SIM_SEED, "models": results,
           "note": "medians of wall-clock times (median_s) and of CPU times, user + system "
                   "(median_cpu_s: less sensitive to other load on the machine); peak_mib is each "
                   "process's maximum resident set size (interpreter and libraries included); below_best is the log-likelihood short of "
                   "the best fit of that model"}
    target = Path(args.out) if args.out else HERE / f"glmer_bench_{time.strftime('%Y-%m-%d')}.json"
    target.write_text(json.dumps(out, indent=1, default=float))
    print(f"written to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
