"""The ``mlm`` command: fit multilevel models from the shell, without writing Python.

::

    mlm fit "mathach ~ ses + (ses | school)" --data hsb
    mlm fit "y ~ x + (1 | g)" --data survey.dta --format markdown
    mlm icc --data hsb --outcome mathach --group school
    mlm compare "Reaction ~ Days + (1 | Subject)" "Reaction ~ Days + (Days | Subject)" --data sleepstudy
    mlm datasets [NAME]

``python -m mlm`` runs the same command; with no arguments at all it fits the README's
example (``mlm fit "mathach ~ ses + (ses | school)" --data hsb``). ``mlm FORMULA --data D``
is short for ``mlm fit FORMULA --data D``.

Exit status: 0 on success, 1 when the data or model cannot be used (one line on stderr,
``mlm: error: ...``), 2 for a malformed command line, 141 when the reader of the output
went away (``mlm ... | head``). Warnings are printed on stderr, one line each. ``--debug``
shows Python's traceback of an error instead of the one line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import warnings

from mlm import __version__
from mlm._lazy import LazyModule
from mlm.errors import FormulaError, MLMError

# What needs pandas, patsy or the engine is imported when a command runs, not when the
# command starts, so that `mlm --help` answers at once (issue 16).
out = LazyModule("mlm.cli_output")
#: Output formats (mlm.cli_output.FORMATS, repeated here so that --help imports nothing).
FORMATS = ("text", "markdown", "latex", "html", "json")

__all__ = ["main", "build_parser"]

EXAMPLE = "mathach ~ ses + (ses | school)"
COMMANDS = ("fit", "icc", "compare", "explain", "datasets")
# Options that take a value: the token after them is never a command name.
_VALUE_OPTIONS = {"--data", "-d", "--format", "-f", "--outcome", "--group", "--names", "--family",
                  "--link", "--nagq", "--ddf"}
_DATA_HELP = ("a data file (CSV .csv/.csv.gz/.tsv, Stata .dta, SPSS .sav, Parquet .parquet, Excel "
              ".xlsx: first sheet) or the name of a bundled data set (see: mlm datasets)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``mlm: error: ...`` and where to find help."""

    def error(self, message):
        self.exit(2, f"mlm: error: {message} (see: {self.prog} --help)\n")


def _add_data(p, formats=True):
    p.add_argument("--data", "-d", metavar="FILE_OR_DATASET", help=_DATA_HELP)
    p.add_argument("--ml", action="store_true",
                   help="maximum likelihood instead of REML (lme4's default)")
    if formats:
        p.add_argument("--format", "-f", choices=FORMATS, default="text",
                       help="output format (default: text)")


def _add_family(p):
    """--family/--link/--nagq: a generalised model fitted by mlm.glmer (as lme4's glmer)."""
    p.add_argument("--family", choices=("binomial", "poisson"),
                   help="fit a generalised model with glmer: binomial (0/1, two-level or "
                        "cbind(successes, failures) outcomes) or poisson (counts)")
    p.add_argument("--link", choices=("logit", "probit", "cloglog", "log"),
                   help="link of --family (default logit for binomial, log for poisson)")
    p.add_argument("--nagq", type=int, metavar="N",
                   help="adaptive Gauss-Hermite quadrature with N nodes (one random intercept; "
                        "default 1: the Laplace approximation)")


def _sub(sub, name, common, help, description, examples):
    return sub.add_parser(name, parents=[common], help=help,
                          description=textwrap.fill(description, 78),
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """The command line parser of ``mlm`` (one subcommand per job).

    Examples
    --------
    >>> from mlm.cli import build_parser
    >>> build_parser().parse_args(["fit", "y ~ x + (1 | g)", "--data", "my.csv"]).ml
    False
    """
    parser = _Parser(
        prog="mlm", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Multilevel (mixed) linear models from lme4-style formulas.",
        epilog="examples:\n"
               f'  mlm fit "{EXAMPLE}" --data hsb\n'
               '  mlm fit "y ~ x + (1 | g)" --data my_file.csv --format markdown\n'
               "  mlm icc --data hsb --outcome mathach --group school\n"
               "  mlm datasets\n\n"
               "mlm COMMAND --help shows each command's options and examples. With no arguments,\n"
               f'python -m mlm runs the example: mlm fit "{EXAMPLE}" --data hsb.')
    parser.add_argument("--version", action="version", version=f"mlm {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show Python's traceback of an error (for reporting a bug)")
    # Accepted after the subcommand too; SUPPRESS keeps it from overwriting the top level's.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show Python's traceback of an error (for reporting a bug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_fit, _add_icc, _add_compare, _add_explain, _add_datasets):
        add(sub, common)
    return parser


def _add_fit(sub, common):
    p = _sub(sub, "fit", common, "fit a model and print its summary or a table",
             "Fit a linear mixed model (with --family, a generalised one, as lme4's glmer) and "
             "print it: the lme4-style summary (text), a table of the coefficients and variance "
             "components (markdown, latex, html) or every number (json).",
             [f'mlm fit "{EXAMPLE}" --data hsb',
              'mlm fit "Reaction ~ Days + (Days | Subject)" --data sleepstudy --ml',
              'mlm fit "score ~ age + C(sex) + (1 | school/class)" --data pupils.sav --format latex',
              'mlm fit "y ~ x + (1 | g)" --data results.csv --format json > fit.json',
              'mlm fit "use ~ age + urban + (1 | district)" --data contraception --family binomial',
              'mlm fit "incidence ~ period + offset(log(size)) + (1 | herd)" --data cbpp '
              "--family poisson"])
    p.add_argument("formula", nargs="?", metavar="FORMULA",
                   help='lme4-style formula, in quotes: "y ~ x + (1 | group)"')
    _add_data(p)
    _add_family(p)
    p.add_argument("--ci", action="store_true",
                   help="markdown/latex/html: 95%% intervals below the estimates instead of SEs")
    p.add_argument("--stars", action="store_true",
                   help="markdown/latex/html: mark p < 0.05, 0.01, 0.001 with *, **, ***")
    p.add_argument("--ddf", default="satterthwaite", metavar="METHOD",
                   help="df of the t-tests: satterthwaite (default, lmerTest's), kenward-roger, "
                        "residual or normal (z)")
    p.set_defaults(run=_cmd_fit)


def _add_icc(sub, common):
    p = _sub(sub, "icc", common, "intraclass correlation of each grouping factor",
             "Intraclass correlations: the share of the variance between groups, with Stata's "
             "interval, design effect and HLM's reliability. Give the null model either as a "
             "formula or as --outcome and --group (which fits OUTCOME ~ 1 + (1 | GROUP)); a "
             "formula with predictors gives the ICC conditional on them. With --family the "
             "model is fitted by glmer and the ICC is on the latent scale (as performance's "
             "icc()).",
             ["mlm icc --data hsb --outcome mathach --group school",
              'mlm icc "mathach ~ 1 + (1 | school)" --data hsb',
              "mlm icc --data chem97 --outcome score --group lea/school",
              "mlm icc --data contraception --outcome use --group district --family binomial"])
    p.add_argument("formula", nargs="?", metavar="FORMULA", help="model formula (or use --outcome/--group)")
    p.add_argument("--outcome", help="outcome column of the null model")
    p.add_argument("--group", help="grouping column(s) of the null model: school, or lea/school")
    _add_data(p)
    _add_family(p)
    p.set_defaults(run=_cmd_icc)


def _add_compare(sub, common):
    p = _sub(sub, "compare", common, "likelihood-ratio tests of nested models (lme4's anova)",
             "Fit two or more nested models to the same data and test them against each other, "
             "as lme4's anova() does: REML fits are refitted with maximum likelihood first "
             "(with --family the models are glmer fits, maximum likelihood already).",
             ['mlm compare "Reaction ~ Days + (1 | Subject)" "Reaction ~ Days + (Days | Subject)" '
              "--data sleepstudy",
              'mlm compare "mathach ~ ses + (1 | school)" "mathach ~ ses + meanses + (1 | school)" '
              "--data hsb --names m0,m1",
              'mlm compare "use ~ age + (1 | district)" "use ~ age + urban + (1 | district)" '
              "--data contraception --family binomial"])
    p.add_argument("formulas", nargs="*", metavar="FORMULA", help="two or more formulas")
    _add_data(p)
    _add_family(p)
    p.add_argument("--names", help="comma-separated model names (default model1, model2, ...)")
    p.add_argument("--no-refit", action="store_true",
                   help="compare REML likelihoods (valid only when the fixed parts are the same)")
    p.set_defaults(run=_cmd_compare)


def _add_explain(sub, common):
    p = _sub(sub, "explain", common, "the fitted model in words",
             "Fit a model and explain it in plain language (each effect in the outcome's units, "
             "or with --family as odds or rate ratios; the variance components and the ICC in "
             "words).",
             [f'mlm explain "{EXAMPLE}" --data hsb',
              'mlm explain "use ~ age + urban + livch + (1 | district)" --data contraception '
              "--family binomial"])
    p.add_argument("formula", nargs="?", metavar="FORMULA", help="model formula")
    _add_data(p, formats=False)
    _add_family(p)
    p.set_defaults(run=_cmd_explain)


def _add_datasets(sub, common):
    p = _sub(sub, "datasets", common, "list the bundled data sets, or describe one",
             "Without NAME: the bundled data sets with their sizes and grouping. With NAME: "
             "that data set's description, variables, source and citation.",
             ["mlm datasets", "mlm datasets hsb"])
    p.add_argument("name", nargs="?", metavar="NAME", help="a bundled data set")
    p.set_defaults(run=_cmd_datasets)


# --------------------------------------------------------------------------- commands
class _Usage(MLMError):
    """A command line that lacks something (exit status 2, as argparse's own errors)."""


def _need_data(args):
    if not args.data:
        raise _Usage(f"--data is required: {_DATA_HELP}.")
    from mlm.readers import read_data

    return read_data(args.data)


def _need_formula(formula, args, command="fit"):
    if formula:
        return formula
    from mlm.data import _manifest

    data = args.data or "FILE"
    groups = list((_manifest().get(str(data).lower()) or {}).get("groups", {}) or ["g"])
    raise _Usage(f'no model formula given. Write one before --data, in quotes, e.g. mlm {command} '
                 f'"y ~ x + (1 | {groups[0]})" --data {data}')


def _outcome_codes(formula: str, data):
    """A value-labelled outcome (a .dta/.sav scale, a 0/1 labelled no/yes) is fitted on its
    numeric codes, with a warning that shows them; as a category it could not be fitted."""
    labelled = data.attrs.get("value_labels") or {}
    if not labelled:
        return data
    from mlm.formula import parse_formula

    response = parse_formula(formula).response
    for column, mapping in labelled.items():
        if column in data.columns and re.search(rf"(?<![\w.]){re.escape(column)}(?![\w.])", response):
            codes = {label: code for code, label in mapping.items()}
            data = data.copy()
            data[column] = data[column].astype(object).map(codes).astype(float)
            shown = ", ".join(f"{c:g} = {lab}" for c, lab in list(mapping.items())[:6])
            more = ", ..." if len(mapping) > 6 else ""
            warnings.warn(f"The outcome {column!r} has value labels; it is fitted on their numeric "
                          f"codes ({shown}{more}).", stacklevel=2)
    return data


def lmer(*args, **kwargs):
    """:func:`mlm.lmer`, imported at the first fit."""
    from mlm.fitting import lmer as fit

    return fit(*args, **kwargs)


def _fit(formula, data, args):
    family = getattr(args, "family", None)
    if family is None:
        for opt in ("link", "nagq"):
            if getattr(args, opt, None) is not None:
                raise _Usage(f"--{opt} is for generalised models: give --family binomial or "
                             "--family poisson too.")
        return lmer(formula, _outcome_codes(formula, data), reml=not args.ml,
                    ddf=getattr(args, "ddf", "satterthwaite"))
    if getattr(args, "ddf", "satterthwaite") != "satterthwaite":
        raise _Usage("--ddf sets the df of linear models' t-tests; a --family model is tested by "
                     "Wald z-tests, as lme4's glmer.")
    # glmer fits by maximum likelihood always, so --ml changes nothing here
    from mlm.glmm.fitting import glmer
    return glmer(formula, _outcome_codes(formula, data), family=family, link=args.link,
                 nagq=1 if args.nagq is None else args.nagq)


def _cmd_fit(args) -> str:
    formula = _need_formula(args.formula, args)
    if (args.ci or args.stars) and args.format in ("text", "json"):
        raise _Usage("--ci and --stars shape the table of --format markdown, latex or html; "
                     f"--format {args.format} has every number already.")
    fit = _fit(formula, _need_data(args), args)
    if args.format == "text":
        return fit.summary()
    if args.format == "json":
        return out.to_json(out.fit_json(fit, args.data))
    # The journal table of mlm.table (issue 13 item 2), one column for this model.
    from mlm.report.table import table

    tab = table(fit, se="ci" if args.ci else "parentheses", stars=args.stars)
    return {"markdown": tab.to_markdown, "latex": tab.to_latex, "html": tab.to_html}[args.format]()


def _quote(name: str) -> str:
    return name if name.isidentifier() else f"Q({name!r})"


def _icc_formula(args) -> str:
    if args.formula and (args.outcome or args.group):
        raise _Usage("give either a FORMULA or --outcome and --group, not both.")
    if args.formula:
        return args.formula
    if not (args.outcome and args.group):
        missing = "--group" if args.outcome else "--outcome" if args.group else "a FORMULA or --outcome and --group"
        raise _Usage(f"{missing} is needed, e.g. mlm icc --data hsb --outcome mathach --group school")
    # --group may hold lme4's nesting (lea/school) or an interaction (a:b): quote each name.
    group = "".join(part if part in "/:" else _quote(part.strip())
                    for part in re.split(r"([/:])", args.group.strip()))
    return f"{_quote(args.outcome.strip())} ~ 1 + (1 | {group})"


def _method(fit) -> str:
    """'REML' or 'ML' for lmer fits; glmer's 'ML (Laplace approximation)' and the like."""
    if hasattr(fit, "reml"):
        return "REML" if fit.reml else "ML"
    from mlm.glmm.display import method
    return f"ML, {method(fit)}"


def _cmd_icc(args) -> str:
    formula = _icc_formula(args)
    fit = _fit(formula, _need_data(args), args)
    from mlm.toolkit.variance import icc

    tab = icc(fit)
    if args.format == "json":
        attrs = {k: out.clean(v) if not isinstance(v, (dict, list)) else
                 [out.clean(b) for b in v] if isinstance(v, list) else
                 {str(a): out.clean(b) for a, b in v.items()} for k, v in tab.attrs.items()}
        return out.to_json({"formula": fit.formula, "data": args.data,
                            "method": _method(fit), **attrs,
                            "icc": out.records(tab, "group")})
    title = f"Intraclass correlation, {fit.formula} ({_method(fit)})"
    notes = [f"Convention: {tab.attrs.get('convention', '')}"]
    if tab.attrs.get("method"):
        notes.insert(0, f"Method: {tab.attrs['method']}.")
    return out.render([(title, out.icc_table(tab))], args.format, notes)


def _cmd_compare(args) -> str:
    if len(args.formulas) < 2:
        raise _Usage(f"compare needs two or more formulas; got {len(args.formulas)}.")
    if args.no_refit and args.family is not None:
        raise _Usage("--no-refit keeps REML fits as they are; --family models are fitted by "
                     "maximum likelihood already, so leave it out.")
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    data = _need_data(args)
    fits = [_fit(f, data, args) for f in args.formulas]
    from mlm.toolkit.comparison import compare

    tab = compare(*fits, refit=not args.no_refit, names=names)
    if args.format == "json":
        return out.to_json({"data": args.data, "note": tab.attrs.get("note", ""),
                            "formulas": tab.attrs.get("formulas", {}),
                            "models": out.records(tab.rename_axis("model"), "model")})
    if args.format == "text":
        return f"Data: {args.data}\n" + tab.to_text()   # lme4's anova() layout (mlm.compare)
    shown = tab._display().rename_axis("Model")
    notes = [f"{n}: {f}" for n, f in tab.attrs.get("formulas", {}).items()]
    notes += [tab.attrs["note"]] if tab.attrs.get("note") else []
    return out.render([("Model comparison", shown)], args.format, [f"Data: {args.data}", *notes])


def _cmd_explain(args) -> str:
    fit = _fit(_need_formula(args.formula, args, "explain"), _need_data(args), args)
    return str(fit.explain())


def _cmd_datasets(args) -> str:
    from mlm.data import _manifest

    manifest = _manifest()
    if not args.name:
        import pandas as pd

        rows = [{"name": k, "rows": v.get("rows"),
                 "groups": ", ".join(f"{g} ({n})" for g, n in (v.get("groups") or {}).items()),
                 "title": v.get("title", "")} for k, v in manifest.items()]
        table = pd.DataFrame(rows).set_index("name")
        table["rows"] = table["rows"].map(str)
        return (out.render([("", table)], "text")
                + "\n\nmlm datasets NAME describes one; use it with --data NAME.")
    entry = manifest.get(args.name.lower())
    if entry is None:
        raise MLMError(f"There is no bundled data set called {args.name!r}. Available: "
                       f"{', '.join(sorted(manifest))}.")
    src = entry.get("source") or {}
    lines = [f"{args.name.lower()}: {entry.get('title', '')}", "",
             textwrap.fill(entry.get("description", ""), 88), "",
             f"Rows: {entry.get('rows')}; grouping: "
             + ", ".join(f"{g} ({n} levels)" for g, n in (entry.get("groups") or {}).items())]
    variables = entry.get("variables") or {}
    if variables:
        width = max(map(len, variables))
        lines += ["", "Variables:"] + [f"  {k:<{width}}  {v}" for k, v in variables.items()]
    if src:
        origin = ", ".join(str(src[k]) for k in ("r_package", "r_objects") if src.get(k))
        lines += ["", f"Source: R package {origin}" if origin else "Source:"]
        if src.get("citation"):
            lines.append(textwrap.fill(f"Citation: {src['citation']}", 88, subsequent_indent="  "))
    if entry.get("license"):
        lines.append(f"Licence: {entry['license']}")
    if entry.get("notes"):
        lines += ["", textwrap.fill(f"Notes: {entry['notes']}", 88)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- plumbing
def _normalise(argv: list) -> list:
    """Make the short forms explicit: no arguments = the README's example; no command = fit."""
    if not argv:
        print(f'mlm: no command given; fitting the example: mlm fit "{EXAMPLE}" --data hsb '
              "(mlm --help lists the commands)", file=sys.stderr)
        return ["fit", EXAMPLE, "--data", "hsb"]
    if set(argv) & {"-h", "--help", "--version"} and not any(a in COMMANDS for a in argv):
        return argv
    if not argv[0].startswith("-") and "~" not in argv[0]:
        return argv  # neither an option nor a formula: argparse names the unknown command
    for k, a in enumerate(argv):
        if a in COMMANDS and (k == 0 or argv[k - 1] not in _VALUE_OPTIONS):
            return argv
    return ["fit", *argv]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _print_warnings(caught) -> None:
    from mlm.toolkit.comparison import RefitWarning

    seen = set()
    for w in caught:
        if issubclass(w.category, RefitWarning):
            continue  # compare prints the same note with its table
        msg = _one_line(w.message)
        if msg not in seen:
            seen.add(msg)
            print(f"mlm: warning: {msg}", file=sys.stderr)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that Python's final flush is quiet
    (the recipe of the Python docs, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _emit(text: str) -> int:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 141
    return 0


def _run(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            text = args.run(args)
        except MLMError as exc:
            if args.debug:
                raise
            _print_warnings(caught)
            # A formula error keeps its second and third lines: the formula and a caret.
            msg = str(exc) if isinstance(exc, FormulaError) else _one_line(exc)
            print(f"mlm: error: {msg}", file=sys.stderr)
            return 2 if isinstance(exc, _Usage) else 1
        except Exception as exc:  # a bug in mlm, not the user's doing
            if args.debug:
                raise
            _print_warnings(caught)
            print(f"mlm: error: internal error ({type(exc).__name__}: {_one_line(exc)}). This is a "
                  "bug in mlm; rerun with --debug for the traceback and report it.", file=sys.stderr)
            return 1
    _print_warnings(caught)
    return _emit(text)


def main(argv=None) -> int:
    """Run the ``mlm`` command; returns the exit status (never raises, except under --debug).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 for an error in the data or the model, 2 for a malformed
        command line, 141 if the output pipe was closed, 130 if interrupted.

    Examples
    --------
    >>> from mlm.cli import main
    >>> main(["datasets", "sleepstudy"])  # doctest: +ELLIPSIS
    sleepstudy: Reaction times in a sleep deprivation study
    ...
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(_normalise(argv))
        except SystemExit as exc:  # --help, --version, or a malformed command line
            sys.stdout.flush()
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        if args.command is None:
            parser.print_help()
            return 2
        return _run(args)
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print("mlm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
