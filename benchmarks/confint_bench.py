"""Time mlm's profile-likelihood intervals beside lme4's ``confint(method = "profile")``.

Usage (from the repository root)::

    python benchmarks/confint_bench.py               # 5 repeats of mlm, 3 of lme4 if Rscript exists
    python benchmarks/confint_bench.py --repeats 9 --no-lme4

The model is the High School and Beyond random-coefficient model
``mathach ~ ses + (ses | school)`` (REML; 7,185 rows, 160 schools): six parameters
profiled (two SDs, a correlation, sigma, two fixed effects). Times are medians of
``mlm.confint(fit)`` and of lme4's ``confint(m, method = "profile")``
(``benchmarks/confint_bench.R``), the fit itself excluded on both sides. The result is
printed and written to ``benchmarks/results/confint_latest.json``. No test depends on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import mlm  # noqa: E402

FORMULA = "mathach ~ ses + (ses | school)"


def time_mlm(repeats: int):
    fit = mlm.lmer(FORMULA, mlm.load_dataset("hsb"))
    mlm.confint(fit, parm="sigma")  # warm up imports and caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ci = mlm.confint(fit)
        times.append(time.perf_counter() - t)
    return times, ci


def time_lme4(repeats: int, timeout: float):
    if not shutil.which("Rscript"):
        return None
    try:
        proc = subprocess.run(["Rscript", str(HERE / "confint_bench.R"), str(repeats)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    text = proc.stdout
    if proc.returncode != 0 or "{" not in text:
        print(proc.stderr, file=sys.stderr)
        return None
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lme4-repeats", type=int, default=3)
    parser.add_argument("--no-lme4", action="store_true")
    args = parser.parse_args(argv)

    times, ci = time_mlm(args.repeats)
    lme4 = None if args.no_lme4 else time_lme4(args.lme4_repeats, timeout=1800)
    out = {"model": FORMULA, "mlm_median_s": float(np.median(times)), "mlm_times_s": times}
    print(f"Profile intervals, HSB {FORMULA} (six parameters)")
    print(f"  mlm.confint          median {np.median(times):7.3f} s  ({args.repeats} runs)")
    if lme4 is not None:
        out["lme4"] = lme4
        ratio = lme4["median_s"] / float(np.median(times))
        out["lme4_over_mlm"] = ratio
        print(f"  lme4 confint profile median {lme4['median_s']:7.3f} s  "
              f"({len(lme4['times_s'])} runs, lme4 {lme4['lme4']})")
        print(f"  lme4 / mlm: {ratio:.1f}")
        theirs = np.column_stack([lme4["conf_low"], lme4["conf_high"]])
        width = (theirs[:, 1] - theirs[:, 0])[:, None]
        worst = np.max(np.abs(ci.to_numpy() - theirs) / np.maximum(np.abs(theirs), width))
        print(f"  largest difference from lme4: {worst:.2%} of max(|bound|, width) (where lme4's "
              "spline misses its own profile's crossing: tests/test_inference_confint.py)")
        out["worst_relative_difference"] = float(worst)
    else:
        print("  lme4: not run (no Rscript, --no-lme4, or it failed)")
    print(ci.to_string())
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "confint_latest.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
