"""Wall time of 1,000 power replicates of a 40-school model on 1 core and on 2 (issue 15).

Usage (from the repository root)::

    python benchmarks/power_bench.py                  # 1,000 replicates, n_jobs 1 and 2
    python benchmarks/power_bench.py --nsim 10000 --jobs 1   # peak memory of 10,000

The model is ``mathach ~ ses + sector + (1 | school)`` on the first 40 schools of High
School and Beyond (in level order); the test is of ``sector`` at an effect of 1.5 points.
Each setting runs in a fresh subprocess (its peak memory is its own) and is timed twice:
cold (the first parallel call starts the worker processes, which import mlm) and warm
(joblib reuses them, as later calls in a session do). Results are printed and written to
benchmarks/results/power_bench_<nsim>.json. No test depends on these numbers: the machine's load
decides them (the answer itself is identical for every n_jobs, which the tests check).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

CHILD = """
import json, resource, sys, time
import mlm
hsb = mlm.load_dataset("hsb")
keep = sorted(hsb["school"].unique())[:40]
fit = mlm.lmer("mathach ~ ses + sector + (1 | school)", hsb[hsb["school"].isin(keep)])
try:                            # CPU seconds of the workers too, when psutil is there
    import psutil
    me = psutil.Process()
    def cpu():
        kids = sum(sum(c.cpu_times()[:2]) for c in me.children(recursive=True))
        return time.process_time() + kids
except ImportError:
    def cpu():
        return float("nan")
def timed():
    t0, c0 = time.perf_counter(), cpu()
    out = mlm.power(fit, "sector", effect=1.5, nsim={nsim}, seed=1, n_jobs={n_jobs}, progress=False)
    return time.perf_counter() - t0, out, cpu() - c0
seconds, out, _ = timed()       # cold: a parallel run starts its worker processes
warm, again, warm_cpu = timed() # warm: joblib reuses them
assert again.equals(out)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "warm_seconds": warm, "warm_cpu_seconds": warm_cpu, "power": float(out["power"].iloc[0]),
                  "failures": int(out["failures"].iloc[0]), "peak_mib": peak}}))
"""


def run(nsim: int, n_jobs: int) -> dict:
    code = CHILD.format(nsim=nsim, n_jobs=n_jobs)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=HERE.parent, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsim", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = {}
    for n_jobs in args.jobs:
        times = [run(args.nsim, n_jobs) for _ in range(args.repeats)]
        best = min(times, key=lambda r: r["seconds"])
        rows[n_jobs] = best
        print(f"n_jobs={n_jobs}: {best['seconds']:.1f} s cold, {best['warm_seconds']:.1f} s warm "
              f"({best['warm_cpu_seconds']:.1f} CPU s, workers included), "
              f"power {best['power']:.3f}, "
              f"failures {best['failures']}, peak {best['peak_mib']:.0f} MiB (main process)")
    ratio = same = None
    if 1 in rows and 2 in rows:
        ratio = rows[1]["seconds"] / rows[2]["seconds"]
        warm = rows[1]["warm_seconds"] / rows[2]["warm_seconds"]
        same = rows[1]["power"] == rows[2]["power"]
        print(f"speed-up on 2 cores: {ratio:.2f}x cold, {warm:.2f}x warm; identical power: {same}")
    load = os.getloadavg()
    busy = load[0] > (os.cpu_count() or 1) - 1
    print(f"load average during the run: {load[0]:.1f} on {os.cpu_count()} cores"
          + (" (other processes take a core: the wall-time ratio says little; compare the CPU "
             "seconds)" if busy else ""))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"power_bench_{args.nsim}.json").write_text(json.dumps({
        "nsim": args.nsim, **{f"n_jobs_{k}": v for k, v in rows.items()}, "speedup": ratio,
        "speedup_warm": warm if ratio is not None else None,
        "identical_power": same, "cpu_count": os.cpu_count(), "load_average": load,
        "python": platform.python_version(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2))


if __name__ == "__main__":
    main()
