"""Time mlm against statsmodels MixedLM written by hand and against lme4, side by side.

Usage (from the repository root, with the package installed)::

    python benchmarks/run.py                 # every model, 5 repeats, lme4 if Rscript exists
    python benchmarks/run.py --repeats 3 --models hsb_slopes scotssec_crossed
    python benchmarks/run.py --full          # also statsmodels on the 1,000,000-row model (slow)

Each (model, tool) pair runs in a fresh subprocess so that its peak memory (maximum
resident set size) is its own; times are medians over repeats of the full fit (design,
optimisation, standard errors), excluding reading the data and importing libraries.
Data are the bundled sets and simulated sets made here with a fixed seed (written to
benchmarks/data/, also read by the lme4 script). The table is printed and written to
benchmarks/results/latest.json. No test depends on these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"

# model id -> (data set, lme4 formula, REML, statsmodels MixedLM written by hand)
MODELS = {
    "hsb_slopes": ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)", True,
                   dict(formula="mathach ~ ses + minority + female + meanses + sector + ses:meanses",
                        groups="school", re_formula="~ses")),
    "chem97_3level": ("chem97", "score ~ gcsescore + (1 | lea/school)", True,
                      dict(formula="score ~ gcsescore", groups="lea", re_formula="1",
                           vc_formula={"school": "0 + C(school)"})),
    "scotssec_crossed": ("scotssec", "attain ~ verbal + sex + (1 | primary) + (1 | second)", True,
                         dict(formula="attain ~ verbal + sex", groups="one", re_formula="0",
                              vc_formula={"primary": "0 + C(primary)", "second": "0 + C(second)"})),
    "sim100k_slope": ("sim100k", "y ~ x + (x | g)", True,
                      dict(formula="y ~ x", groups="g", re_formula="~x")),
    "sim_nested": ("sim_nested", "y ~ x + (1 | school/classroom)", True,
                   dict(formula="y ~ x", groups="school", re_formula="1",
                        vc_formula={"classroom": "0 + C(classroom)"})),
    "insteval_crossed": ("insteval", "y ~ service + (1 | s) + (1 | d)", True, None),
    "sim1m_slope": ("sim1m", "y ~ x + (x | g)", True,
                    dict(formula="y ~ x", groups="g", re_formula="~x")),
    "bootstrap_icc_1000": ("hsb", "mathach ~ 1 + (1 | school)", True, None),
}
# lme4_bench.R's names for the same models
LME4_NAMES = {"hsb_slopes": "hsb_slopes", "chem97_3level": "chem97_3level",
              "scotssec_crossed": "scotssec_crossed", "sim100k_slope": "sim100k_slope",
              "insteval_crossed": "insteval", "sim_nested": "sim_nested", "bootstrap_icc_1000": "bootmer_icc"}


def simulate(n_groups: int, per_group: int, seed: int) -> pd.DataFrame:
    """Two-level data with a random intercept and slope (ICC about 0.2), seeded."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.standard_normal(g.size)
    b0 = rng.normal(0, 1.0, n_groups)
    b1 = rng.normal(0, 0.5, n_groups)
    y = 2.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(0, 2.0, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def simulate_nested(n_schools: int, classes: int, pupils: int, seed: int) -> pd.DataFrame:
    """Three levels: pupils in classes in schools (class ids unique), seeded."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), classes * pupils)
    klass = np.repeat(np.arange(n_schools * classes), pupils)
    x = rng.standard_normal(school.size)
    y = (1.0 + 0.5 * x + rng.normal(0, 1.0, n_schools)[school]
         + rng.normal(0, 0.7, n_schools * classes)[klass] + rng.normal(0, 2.0, school.size))
    return pd.DataFrame({"y": y, "x": x, "school": school, "classroom": klass})


def load(name: str) -> pd.DataFrame:
    import mlm

    if name == "sim100k":
        return pd.read_csv(ensure_sim("sim100k", 2_000, 50, 1))
    if name == "sim_nested":
        return pd.read_csv(ensure_nested())
    if name == "sim1m":
        return pd.read_csv(ensure_sim("sim1m", 20_000, 50, 2))
    return mlm.load_dataset(name)


def ensure_sim(name, n_groups, per_group, seed) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"{name}.csv"
    if not path.exists():
        simulate(n_groups, per_group, seed).to_csv(path, index=False)
    return path


def ensure_nested() -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / "sim_nested.csv"
    if not path.exists():
        simulate_nested(2_000, 5, 20, 3).to_csv(path, index=False)
    return path


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(model: str, tool: str, repeats: int) -> dict:
    """Time one (model, tool) pair in this process; print and return JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import mlm

    data_name, formula, reml, by_hand = MODELS[model]
    data = load(data_name)
    before = _maxrss_mib()
    times = []
    for _ in range(repeats):
        if model == "bootstrap_icc_1000":
            fit = mlm.lmer(formula, data)

            def icc(f):
                v = f.varcorr["vcov"]
                return v.iloc[0] / v.sum()

            t0 = time.perf_counter()
            mlm.bootstrap(fit, icc, nsim=1000, seed=1)
            times.append(time.perf_counter() - t0)
            continue
        t0 = time.perf_counter()
        if tool == "mlm":
            fit = mlm.lmer(formula, data, reml=reml)
            _ = fit.coefficients  # standard errors computed
        elif tool == "mlm_statsmodels":
            fit = mlm.lmer(formula, data, reml=reml, engine="statsmodels")
            _ = fit.coefficients
        elif tool == "statsmodels":
            import statsmodels.formula.api as smf

            kw = dict(by_hand)
            frame = data.assign(one=1) if kw["groups"] == "one" else data
            res = smf.mixedlm(kw.pop("formula"), frame, **kw).fit(reml=reml)
            _ = res.bse_fe
        times.append(time.perf_counter() - t0)
    out = {"model": model, "tool": tool, "median_s": float(np.median(times)),
           "times_s": times, "peak_mib": _maxrss_mib(), "baseline_mib": before}
    print(json.dumps(out))
    return out


def run_child(model, tool, repeats, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, tool, str(repeats)]
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"model": model, "tool": tool, "median_s": None, "note": f"did not finish in {timeout} s"}
    if proc.returncode != 0:
        return {"model": model, "tool": tool, "median_s": None,
                "note": "failed: " + proc.stderr.strip().splitlines()[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_lme4(timeout) -> dict:
    if not shutil.which("Rscript"):
        return {}
    ensure_sim("sim100k", 2_000, 50, 1)
    ensure_nested()
    try:
        proc = subprocess.run(["Rscript", str(HERE / "lme4_bench.R")], capture_output=True, text=True,
                              timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {}
    text = proc.stdout
    if "{" not in text:
        return {}
    out = json.loads(text[text.index("{"):text.rindex("}") + 1])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lme4_latest.json").write_text(json.dumps(out, indent=2))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--full", action="store_true", help="also statsmodels on the 1,000,000-row model")
    parser.add_argument("--no-lme4", action="store_true", help="skip lme4 even if Rscript exists")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per (model, tool) pair")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0

    rows = []
    for model in args.models:
        reps = 1 if model in ("sim1m_slope", "bootstrap_icc_1000") else args.repeats
        tools = ["mlm"]
        if MODELS[model][3] is not None and (model != "sim1m_slope" or args.full):
            tools += ["mlm_statsmodels", "statsmodels"]
        for tool in tools:
            res = run_child(model, tool, reps, args.timeout)
            rows.append(res)
            print(f"  {model:<20} {tool:<16} {res.get('median_s')}", file=sys.stderr)
    lme4 = {} if args.no_lme4 else run_lme4(timeout=1800)

    table = []
    for model in args.models:
        get = {r["tool"]: r for r in rows if r["model"] == model}
        m = get.get("mlm", {}).get("median_s")
        s = get.get("statsmodels", {}).get("median_s")
        sm_engine = get.get("mlm_statsmodels", {}).get("median_s")
        r = lme4.get(LME4_NAMES.get(model, ""), None)
        table.append({"model": model, "mlm_s": m, "mlm_engine_statsmodels_s": sm_engine,
                      "statsmodels_by_hand_s": s, "lme4_s": r,
                      "lme4_over_mlm": (r / m) if (r and m) else None,
                      "statsmodels_over_mlm": (s / m) if (s and m) else None,
                      "mlm_peak_mib": get.get("mlm", {}).get("peak_mib")})
    frame = pd.DataFrame(table).set_index("model")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
    RESULTS.mkdir(exist_ok=True)
    out = {"python": sys.version.split()[0], "machine_cores": os.cpu_count(), "repeats": args.repeats,
           "lme4": {k: v for k, v in lme4.items() if not isinstance(v, (int, float)) or k in ("R", "lme4")},
           "lme4_raw": lme4, "rows": rows, "table": table,
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
