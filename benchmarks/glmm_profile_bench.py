"""Time mlm's profile intervals of glmer fits beside lme4's (``tests/reference/glmm_profile.json``).

Usage (from the repository root)::

    python benchmarks/glmm_profile_bench.py              # 3 repeats per case
    python benchmarks/glmm_profile_bench.py --repeats 5 --cases contra_laplace

Each case of ``tests/reference/glmm_profile.R`` is fitted once and ``mlm.confint(fit)``
(every row, profile) timed; the median is printed beside the seconds lme4's
``profile(m)`` took when the reference script ran (recorded in the JSON; one run, on
whatever load the machine had then). No test depends on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import mlm  # noqa: E402
from test_glmm_profile import REF, fitted  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="*", default=[k for k in REF if k != "meta"])
    args = ap.parse_args(argv)
    rows = {}
    for case in args.cases:
        fit = fitted(case)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlm.confint(fit)
            times.append(time.perf_counter() - t0)
        rows[case] = {"mlm_seconds_median": float(np.median(times)),
                      "lme4_profile_seconds": REF[case].get("seconds")}
        print(f"{case:22s} mlm {rows[case]['mlm_seconds_median']:7.2f} s   "
              f"lme4 {rows[case]['lme4_profile_seconds']} s")
    return rows


if __name__ == "__main__":
    main()
