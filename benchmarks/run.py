"""Time mlm beside the compiled peer, lme4 and statsmodels MixedLM, side by side in one run.

Usage (from the repository root, with the package and its ``bench`` extra installed)::

    python benchmarks/run.py                 # every model, 5 repeats (InstEval 3), lme4 if Rscript exists
    python benchmarks/run.py --repeats 3 --models hsb_slopes scotssec_crossed
    python benchmarks/run.py --full          # also statsmodels on the 1,000,000-row model (slow)
    python benchmarks/run.py --save          # also write benchmarks/run_<date>.json
    python benchmarks/run.py --more --save   # 13 further models, mlm beside the peer

Tools: ``mlm``; ``peer``, the compiled (Rust) lme4-style package ``mixedlm`` from PyPI
(``pip install mlm[bench]``; left out with a note when it is not installed); lme4 through
``lme4_bench.R`` (its JSON printed to stdout); statsmodels MixedLM written by hand.
Each (model, tool) pair runs in a fresh subprocess (one BLAS thread by default, see
``BLAS_ENV``) so that its peak memory is its own:
``peak_mib`` is the process's maximum resident set size (imports, data and fit), and
``fit_traced_mib`` the peak of Python allocations during one further fit, measured with
tracemalloc (numpy reports its arrays to it) after the timed repeats. Times are medians
over repeats of the full fit (design, optimisation, standard errors of the fixed
effects), excluding reading the data and importing libraries. Every fit's
log-likelihood is recorded and compared with mlm's, so that like is compared with like.
The bootstrap is 1,000 parametric refits of the HSB null model (one run each).

Data are the bundled sets and simulated sets made here with a fixed seed (written to
benchmarks/data/ for the lme4 script; the Python children simulate them in memory, so a
CSV reader's buffers do not count in their memory). The table is printed and written to
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
    "sim1m_slope": ("sim1m", "y ~ x + (x | g)", True,
                    dict(formula="y ~ x", groups="g", re_formula="~x")),
    "insteval_crossed": ("insteval", "y ~ service + (1 | s) + (1 | d)", True, None),
    "bootstrap_icc_1000": ("hsb", "mathach ~ 1 + (1 | school)", True, None),
}
#: Models outside the issue's table (``--more``): mlm and the peer only, on the bundled
#: data; other layouts (two terms of one factor, crossed and nested slopes, singular fits,
#: growth models) and small data, where fixed costs show.
MORE = {
    "sleep_slopes": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True, None),
    "sleep_two_terms": ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True, None),
    "hsb_ses": ("hsb", "mathach ~ ses + (1 | school)", True, None),
    "hsb_interaction": ("hsb", "mathach ~ ses * sector + (ses | school)", True, None),
    "exam_slope": ("exam", "normexam ~ standLRT + sex + (standLRT | school)", True, None),
    "exam_two_factors": ("exam", "normexam ~ standLRT + (1 | school) + (1 | student)", True, None),
    "scotssec_slope_second": ("scotssec", "attain ~ verbal + (1 | primary) + (verbal | second)", True, None),
    "scotssec_slope_primary": ("scotssec", "attain ~ verbal + sex + (verbal | primary) + (1 | second)",
                               True, None),
    "chem97_slope_top": ("chem97", "score ~ gcsescore + (gcsescore | lea) + (1 | lea:school)", True, None),
    "chem97_school": ("chem97", "score ~ gcsescore + gender + (1 | school)", True, None),
    "penicillin": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True, None),
    "pastes": ("pastes", "strength ~ 1 + (1 | batch/cask)", True, None),
    "egsingle_growth": ("egsingle", "math ~ year + (year | childid) + (1 | schoolid)", True, None),
}
MAIN = list(MODELS)
MODELS.update(MORE)
# lme4_bench.R's names for the same models
LME4_NAMES = {"hsb_slopes": "hsb_slopes", "chem97_3level": "chem97_3level",
              "scotssec_crossed": "scotssec_crossed", "sim100k_slope": "sim100k_slope",
              "insteval_crossed": "insteval", "sim_nested": "sim_nested", "sim1m_slope": "sim1m_slope",
              "bootstrap_icc_1000": "bootmer_icc"}
#: Models timed once per tool (long, or a loop of refits already).
ONCE = ("sim1m_slope", "bootstrap_icc_1000")
PEER = "mixedlm"  # the compiled peer's import name on PyPI


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
    """A benchmark data set; simulated ones are made in memory, as in ``ensure_sim``."""
    import mlm

    if name == "sim100k":
        return simulate(2_000, 50, 1)
    if name == "sim_nested":
        return simulate_nested(2_000, 5, 20, 3)
    if name == "sim1m":
        return simulate(20_000, 50, 2)
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


def _icc(fit) -> float:
    v = fit.varcorr["vcov"]
    return float(v.iloc[0] / v.sum())


def _fit_once(model: str, tool: str, data: pd.DataFrame, nsim: int = 1000):
    """One full fit (or the ``nsim`` refits of the bootstrap); returns its log-likelihood."""
    import mlm

    _, formula, reml, by_hand = MODELS[model]
    if model == "bootstrap_icc_1000":
        if tool == "mlm":
            fit = mlm.lmer(formula, data)
            mlm.bootstrap(fit, _icc, nsim=nsim, seed=1)
            return fit.loglik
        if tool == "peer":
            import mixedlm

            fit = mixedlm.lmer(formula, data, REML=reml)
            mixedlm.bootMer(fit, nsim=nsim, seed=1)
            return float(fit.logLik().value)
        raise ValueError(tool)
    if tool == "mlm":
        fit = mlm.lmer(formula, data, reml=reml)
        _ = fit.coefficients  # standard errors computed
        return fit.loglik
    if tool == "mlm_statsmodels":
        fit = mlm.lmer(formula, data, reml=reml, engine="statsmodels")
        _ = fit.coefficients
        return fit.loglik
    if tool == "peer":
        import mixedlm

        fit = mixedlm.lmer(formula, data, REML=reml)
        _ = fit.vcov()  # standard errors of the fixed effects
        return float(fit.logLik().value)
    if tool == "statsmodels":
        import statsmodels.formula.api as smf

        kw = dict(by_hand)
        frame = data.assign(one=1) if kw["groups"] == "one" else data
        res = smf.mixedlm(kw.pop("formula"), frame, **kw).fit(reml=reml)
        _ = res.bse_fe
        return float(res.llf)
    raise ValueError(tool)


def child(model: str, tool: str, repeats: int) -> dict:
    """Time one (model, tool) pair in this process; print and return JSON."""
    import tracemalloc
    import warnings

    warnings.simplefilter("ignore")
    import mlm  # noqa: F401  (imported before the clock starts, as every library is)

    if tool == "peer":
        import mixedlm  # noqa: F401
    data = load(MODELS[model][0])
    # Models timed once: a warm-up (lazy imports, caches) on a small version of the task,
    # outside the clock; the others report the median of their repeats.
    if model == "bootstrap_icc_1000":
        _fit_once(model, tool, data, nsim=2)
    elif model == "sim1m_slope":
        _fit_once(model, tool, data.iloc[:5000])
    before = _maxrss_mib()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loglik = _fit_once(model, tool, data)
        times.append(time.perf_counter() - t0)
    peak = _maxrss_mib()
    traced = None
    if model != "bootstrap_icc_1000" and tool in ("mlm", "peer"):
        tracemalloc.start()
        _fit_once(model, tool, data)
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    out = {"model": model, "tool": tool, "median_s": float(np.median(times)),
           "times_s": times, "loglik": loglik, "peak_mib": peak, "baseline_mib": before,
           "fit_traced_mib": traced}
    print(json.dumps(out))
    return out


#: BLAS threads of every Python child. mlm's engine runs BLAS on one thread already; on a
#: shared 2-core machine OpenBLAS's threads made the peer's ScotsSec fit 30 times slower
#: (2.96 s against 0.09 s, measured), which would compare thread contention, not methods.
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


def run_child(model, tool, repeats, timeout, threads=1):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, tool, str(repeats)]
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in BLAS_ENV})
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
    ensure_sim("sim1m", 20_000, 50, 2)
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


def _tools(model: str, full: bool) -> list:
    tools = ["mlm", "peer"]
    if MODELS[model][3] is not None and (model != "sim1m_slope" or full):
        tools.append("statsmodels")
    return tools


def _peer_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec(PEER) is not None


def _ratio(a, b):
    return (a / b) if (a and b) else None


def summarise(models, rows, lme4: dict) -> list:
    """One row per model: times, ratios to the peer, peak memory, log-likelihoods."""
    table = []
    for model in models:
        get = {r["tool"]: r for r in rows if r["model"] == model}
        t = {tool: get.get(tool, {}).get("median_s") for tool in ("mlm", "peer", "statsmodels")}
        r = lme4.get(LME4_NAMES.get(model, ""))
        r = r if isinstance(r, (int, float)) else None
        ll = {tool: get.get(tool, {}).get("loglik") for tool in ("mlm", "peer", "statsmodels")}
        ll["lme4"] = (lme4.get("loglik") or {}).get(LME4_NAMES.get(model, ""))
        m_ll = ll["mlm"]
        table.append({
            "model": model, "mlm_s": t["mlm"], "peer_s": t["peer"], "lme4_s": r,
            "statsmodels_s": t["statsmodels"],
            "mlm_over_peer": _ratio(t["mlm"], t["peer"]), "lme4_over_peer": _ratio(r, t["peer"]),
            "statsmodels_over_peer": _ratio(t["statsmodels"], t["peer"]),
            "mlm_peak_mib": get.get("mlm", {}).get("peak_mib"),
            "peer_peak_mib": get.get("peer", {}).get("peak_mib"),
            "mlm_fit_traced_mib": get.get("mlm", {}).get("fit_traced_mib"),
            "peer_fit_traced_mib": get.get("peer", {}).get("fit_traced_mib"),
            "loglik_mlm": m_ll,
            **{f"loglik_{k}_minus_mlm": (v - m_ll) if (v is not None and m_ll is not None) else None
               for k, v in ll.items() if k != "mlm"},
        })
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=MAIN)
    parser.add_argument("--more", action="store_true",
                        help="the models outside the issue's table instead (mlm and the peer; no lme4)")
    parser.add_argument("--full", action="store_true", help="also statsmodels on the 1,000,000-row model")
    parser.add_argument("--no-lme4", action="store_true", help="skip lme4 even if Rscript exists")
    parser.add_argument("--lme4-json", help="use this lme4_bench.R output instead of running R")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/run_<date>.json")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per (model, tool) pair")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP/Rayon threads of each Python child (0: libraries' default)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0

    if args.more:
        args.models, args.no_lme4 = list(MORE), True
    peer = _peer_installed()
    rows = []
    for model in args.models:
        reps = 1 if model in ONCE else min(args.repeats, 3) if model == "insteval_crossed" else args.repeats
        for tool in _tools(model, args.full):
            if tool == "peer" and not peer:
                res = {"model": model, "tool": tool, "median_s": None,
                       "note": f"{PEER} is not installed (pip install mlm[bench])"}
            else:
                res = run_child(model, tool, reps, args.timeout, args.threads)
            rows.append(res)
            print(f"  {model:<20} {tool:<12} {res.get('median_s')}", file=sys.stderr)
    if args.lme4_json:
        lme4 = json.loads(Path(args.lme4_json).read_text())
    else:
        lme4 = {} if args.no_lme4 else run_lme4(timeout=3600)

    table = summarise(args.models, rows, lme4)
    frame = pd.DataFrame(table).set_index("model")
    shown = ["mlm_s", "peer_s", "lme4_s", "statsmodels_s", "mlm_over_peer", "lme4_over_peer",
             "mlm_peak_mib", "peer_peak_mib", "mlm_fit_traced_mib", "loglik_peer_minus_mlm",
             "loglik_lme4_minus_mlm"]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(frame[shown].to_string(float_format=lambda v: f"{v:.3g}"))
    versions = {}
    for name in ("mlm", PEER, "statsmodels", "numpy", "scipy", "pandas"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            versions[name] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {"python": sys.version.split()[0], "machine_cores": os.cpu_count(), "repeats": args.repeats,
           "threads_per_child": args.threads, "load_average_at_end": load,
           "versions": versions, "lme4_raw": lme4, "rows": rows, "table": table,
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2, default=str))
    if args.save:
        (HERE / f"run_{'more_' if args.more else ''}{time.strftime('%Y-%m-%d')}.json").write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
