"""Time mlm.glmer beside lme4's glmer and glmmTMB on contraception (issue 14).

Usage (from the repository root)::

    python benchmarks/glmer_bench.py --repeats 5

Medians over repeats of the whole fit (design, optimisation, standard errors), data
already loaded. R runs right after Python, so both see the same machine load. No test
depends on these numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

import mlm

FORMULA = "use ~ age + I(age**2) + urban + livch + (1 | district)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = mlm.load_dataset("contraception")
    mlm.glmer(FORMULA, data)  # imports and caches warm
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        fit = mlm.glmer(FORMULA, data)
        times.append(time.perf_counter() - t)
    out = {"mlm": float(np.median(times)), "mlm_loglik": fit.loglik}
    if shutil.which("Rscript"):
        script = Path(__file__).with_name("glmer_bench.R")
        res = subprocess.run(["Rscript", str(script), str(args.repeats)], capture_output=True, text=True)
        if res.returncode == 0:
            out.update(json.loads(res.stdout))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
