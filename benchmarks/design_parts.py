"""Time the design stage (mlm.build_design) and its pieces on small data sets (issue 16).

Run from the repository root: ``python benchmarks/design_parts.py`` (the three default
models), or ``python benchmarks/design_parts.py sleepstudy "Reaction ~ Days + (Days | Subject)"``.
Prints, per model, the median time in microseconds of a whole ``build_design`` and of
each piece it calls; the pieces run on the same inputs as inside ``build_design``.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mlm  # noqa: E402
import mlm.design as D  # noqa: E402
from mlm.design_columns import column_plan  # noqa: E402
from mlm.formula import parse_formula  # noqa: E402
from mlm.frames import check_columns, check_fixed_matrix, model_column_values, scaled_gram  # noqa: E402

MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("ScotsSec", "attain ~ verbal + sex + (1 | primary) + (1 | second)"),
    ("hsb", "mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)"),
]


def median_us(fn, n: int = 300, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``n`` calls, in microseconds."""
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return round(statistics.median(runs), 1)


def pieces(dataset: str, formula: str) -> dict:
    """Median times of build_design and of its pieces on one model."""
    data = mlm.load_dataset(dataset)
    parsed = parse_formula(formula, columns=list(data.columns))
    variables, slopes = D._formula_facts(parsed)
    cols = model_column_values(data, variables)
    n = len(data)
    lhs = [t.lhs for t in slopes]
    plan = column_plan(cols, parsed.fixed_formula, lhs)
    y, X, names, *_ = D._direct_matrices(plan, parsed, slopes, n)
    gram = scaled_gram(X)
    design = D.build_design(parsed, data)
    return {
        "build_design": median_us(lambda: D.build_design(parsed, data)),
        "model_column_values": median_us(lambda: model_column_values(data, variables)),
        "missing masks": median_us(lambda: [D._missing_mask(v) for v in cols.values()]),
        "check_columns": median_us(lambda: check_columns(cols, parsed, n)),
        "_check_values": median_us(lambda: D._check_values(cols, parsed)),
        "column_plan": median_us(lambda: column_plan(cols, parsed.fixed_formula, lhs)),
        "_direct_matrices": median_us(lambda: D._direct_matrices(plan, parsed, slopes, n)),
        "scaled_gram": median_us(lambda: scaled_gram(X)),
        "_check_rank": median_us(lambda: D._check_rank(X, names, gram)),
        "check_fixed_matrix": median_us(lambda: check_fixed_matrix(X, y, parsed, names, gram)),
        "group_codes": median_us(lambda: [D.group_codes(cols, t.group) for t in parsed.random]),
        "_warn_constant_slopes": median_us(lambda: [D._warn_constant_slopes(b) for b in design.blocks]),
        "frame (on first read, not in build_design)":
            median_us(lambda: D._FrameParts(cols, data.index).build()),
    }


def main(argv):
    warnings.simplefilter("ignore")
    models = [tuple(argv[:2])] if len(argv) >= 2 else MODELS
    for dataset, formula in models:
        print(f"{dataset}: {formula}")
        for name, us in pieces(dataset, formula).items():
            print(f"  {name:45s} {us:8.1f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
