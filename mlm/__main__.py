"""``python -m mlm``: fit a model and print its summary.

With no arguments it fits the README's example, ``mathach ~ ses + (ses | school)`` on
the bundled High School and Beyond data. Otherwise::

    python -m mlm "Reaction ~ Days + (Days | Subject)" --data sleepstudy [--ml] [--ddf kenward-roger]
    python -m mlm "y ~ x + (1 | g)" --data my_file.csv

Errors are printed as one line and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import MLMError, lmer, load_dataset

EXAMPLE = "mathach ~ ses + (ses | school)"


def _read(source: str):
    import pandas as pd

    if source.lower().endswith((".csv", ".csv.gz", ".txt")):
        try:
            return pd.read_csv(source)
        except OSError as exc:
            raise MLMError(f"Cannot read {source!r}: {exc.strerror or exc}.") from None
    return load_dataset(source)


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m mlm", description="Fit a linear mixed model from an lme4-style formula.",
        epilog='Example: python -m mlm "Reaction ~ Days + (Days | Subject)" --data sleepstudy')
    parser.add_argument("formula", nargs="?", default=EXAMPLE, help=f"model formula (default: {EXAMPLE!r})")
    parser.add_argument("--data", default="hsb", help="a bundled data set name or a CSV file (default: hsb)")
    parser.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    parser.add_argument("--ddf", default="satterthwaite",
                        help="df of the t-tests: satterthwaite (default), kenward-roger, residual, normal")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = lmer(args.formula, _read(args.data), reml=not args.ml, ddf=args.ddf)
    except MLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(fit.summary())
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
