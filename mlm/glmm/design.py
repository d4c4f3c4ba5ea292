"""The design stage of :func:`mlm.glmer`: the linear design plus what a GLMM adds.

A GLMM formula is an lme4 formula with two additions, handled here so that the shared
parser (:mod:`mlm.formula`) stays as it is:

* ``cbind(successes, failures)`` on the left (binomial counts, as in lme4);
* ``offset(expr)`` terms on the right (a known part of the linear predictor, e.g.
  ``offset(log(exposure))`` for Poisson rates).

They are cut out of the text (:func:`split_glm_formula`); what remains is parsed and
built by :func:`mlm.design.build_design` as for ``lmer``; the cut-out expressions are
checked by the same parser and evaluated with the same functions. The outcome is then
coded for the family: a two-level factor or text becomes 0/1 (the second level is the
success, as in R), ``True`` is a success, and proportions take their trials from
``weights=``. The caller's data is never modified.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy

from mlm.design import Design, MissingDataWarning, build_design, eval_environment
from mlm.errors import DataError, FormulaError
from mlm.formula import parse_formula
from mlm.frames import BinaryOutcomeWarning, as_pandas, model_columns, sorted_levels
from mlm.glmm.family import Family

__all__ = ["GLMMDesign", "build_glmm_design", "split_glm_formula"]


@dataclass(frozen=True)
class GLMMDesign:
    """A GLMM's model matrices and its outcome coded for the family.

    Attributes
    ----------
    design : Design
        The linear design of the formula without ``cbind`` and ``offset`` (X, the
        random-effects blocks, the rows used).
    y : ndarray
        0/1 or the proportion of successes (binomial), the count (Poisson).
    weights : ndarray
        Prior weights: the number of trials for binomial counts and proportions, else 1.
    offset : ndarray
        The offset of every row used (0 without one).
    family : Family
    formula : str
        The formula as written.
    offsets : tuple of str
        The expressions inside ``offset(...)`` in the formula.
    offset_arg : object
        The ``offset=`` argument (a column name or None; an array is not kept).
    success : str or None
        The outcome level counted as a success, for a factor or logical outcome.
    index : pandas.Index
        The caller's labels of the rows used.
    nobs_dropped : int
        Rows dropped for missing values (model variables, trials or offset).
    """

    design: Design = field(repr=False)
    y: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    offset: np.ndarray = field(repr=False)
    family: Family
    formula: str
    offsets: tuple = ()
    offset_arg: object = None
    success: str | None = None
    index: pd.Index = field(default=None, repr=False)
    nobs_dropped: int = 0
    response: str = ""
    cbind: tuple | None = None

    @property
    def nobs(self) -> int:
        return len(self.y)


def _top_level_split(text: str, sep: str = ","):
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _matching(text: str, open_pos: int) -> int:
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise FormulaError("Unbalanced parentheses.", formula=text, position=open_pos)


def split_glm_formula(formula: str):
    """Cut ``cbind(s, f)`` from the left and ``offset(...)`` terms from the right.

    Returns ``(formula_for_the_parser, (s, f) or None, offsets)``.

    Examples
    --------
    >>> from mlm.glmm.design import split_glm_formula
    >>> split_glm_formula("cbind(k, n - k) ~ x + offset(log(t)) + (1 | g)")
    ('k ~ x + (1 | g)', ('k', 'n - k'), ('log(t)',))
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        return formula, None, ()
    lhs, rhs = formula.split("~")
    cbind = None
    m = re.fullmatch(r"\s*cbind\s*\((.*)\)\s*", lhs, flags=re.S)
    if m:
        parts = [p.strip() for p in _top_level_split(m.group(1))]
        if len(parts) != 2 or not all(parts):
            raise FormulaError("cbind() on the left takes two arguments: the number of successes "
                               "and the number of failures, e.g. 'cbind(k, n - k) ~ x + (1 | g)'.",
                               formula=formula, position=lhs.index("cbind"))
        cbind = (parts[0], parts[1])
        lhs = parts[0]
    offsets = []
    while True:
        m = re.search(r"\boffset\s*\(", rhs)
        if not m:
            break
        close = _matching(rhs, m.end() - 1)
        offsets.append(rhs[m.end():close].strip())
        before, after = rhs[:m.start()], rhs[close + 1:]
        if re.search(r"\+\s*$", before):
            before = re.sub(r"\+\s*$", "", before).rstrip()
        elif re.match(r"\s*\+", after):
            after = re.sub(r"^\s*\+", "", after)
        rhs = before + after
    rhs = rhs.strip() or "1"
    lhs = lhs.strip()
    if cbind is None and re.search(r"[<>]|==|!=", lhs):
        # a comparison such as I(score > 5) is a logical outcome: TRUE is the success, as in R
        # (patsy would code a logical response as two dummy columns)
        lhs = f"I(({lhs}) * 1)"
    return f"{lhs} ~ {rhs}", cbind, tuple(offsets)


def _expression_values(expr: str, data: pd.DataFrame, what: str) -> np.ndarray:
    """Evaluate a formula expression on every row (missing values kept as NaN)."""
    columns = [str(c) for c in data.columns]
    # The shared parser checks the expression (allowed functions, known columns).
    probe = parse_formula(f"I({expr}) ~ 1 + (1 | {columns[0]})", columns=columns)
    used = [v for v in probe.variables if re.search(rf"\b{re.escape(v)}\b", expr)]
    frame = model_columns(data, used) if used else pd.DataFrame(index=data.index)
    frame = frame.reset_index(drop=True)
    if not used:
        frame["_mlm_rows"] = 0.0
    try:
        with np.errstate(all="ignore"):
            out = patsy.dmatrix(f"I({expr}) - 1", frame, eval_env=eval_environment(),
                                NA_action=patsy.NAAction(NA_types=[]), return_type="dataframe")
    except patsy.PatsyError as exc:
        raise FormulaError(f"Could not evaluate the {what} '{expr}': {exc.message}") from None
    values = out.to_numpy(dtype=float)
    if values.shape[1] != 1:
        raise DataError(f"The {what} '{expr}' must be one number per row.")
    return values[:, 0]


def _argument_values(arg, data: pd.DataFrame, what: str) -> np.ndarray | None:
    """``weights=`` / ``offset=``: a column name or one number per row of the data."""
    if arg is None:
        return None
    if isinstance(arg, str):
        if arg not in data.columns:
            raise DataError(f"{what}={arg!r} is not a column of the data.")
        values = model_columns(data, [arg])[arg]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise DataError(f"{what} column {arg!r} must be numeric.")
        return values.to_numpy(dtype=float, na_value=np.nan)
    try:
        values = np.asarray(arg, dtype=float).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{what}= must be a column name or numbers, one per row of the data.") from None
    if len(values) != len(data):
        raise DataError(f"{what}= has {len(values)} values but the data has {len(data)} rows: "
                        "give one per row (or the name of a column).")
    return values


def _code_outcome(data: pd.DataFrame, response: str, family: Family):
    """A factor, text or logical outcome as 0/1 (second level = success), in a copy."""
    if response not in data.columns:
        return data, None
    values = data[response]
    if pd.api.types.is_bool_dtype(values):
        levels = [False, True]
    elif isinstance(values.dtype, pd.CategoricalDtype):
        levels = list(values.cat.remove_unused_categories().cat.categories)
    elif pd.api.types.is_numeric_dtype(values):
        return data, None
    else:
        levels = sorted_levels(values.dropna().to_numpy())
    if family.name != "binomial":
        raise DataError(f"The outcome '{response}' is not numeric (dtype {values.dtype}): a "
                        f"{family.name} model needs counts.")
    if len(levels) != 2:
        raise DataError(f"The outcome '{response}' has {len(levels)} categories "
                        f"({', '.join(map(str, levels[:5]))}); a binomial model needs two. "
                        "Recode it as 0/1 (1 = the outcome of interest).")
    coded = pd.Series(np.where(values.isna(), np.nan, (values == levels[1]).astype(float)),
                      index=data.index)
    out = data.copy()
    out[response] = coded
    return out, str(levels[1])


def build_glmm_design(formula: str, data, family: Family, weights=None, offset=None) -> GLMMDesign:
    """Build a GLMM's design: see the module notes.

    Examples
    --------
    >>> import mlm
    >>> from mlm.glmm.design import build_glmm_design
    >>> from mlm.glmm.family import make_family
    >>> d = build_glmm_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                       mlm.load_dataset("cbpp"), make_family("binomial"))
    >>> d.nobs, int(d.weights.sum())
    (56, 842)
    """
    data = as_pandas(data)
    if not isinstance(formula, str):
        raise FormulaError(f"The formula must be a string, not {type(formula).__name__}.")
    text, cbind, offsets = split_glm_formula(formula)
    extra = {}
    if cbind is not None:
        extra[f"{cbind[1]} (failures in cbind)"] = _expression_values(
            cbind[1], data, "number of failures in cbind()")
    offset_values = [_expression_values(expr, data, "offset") for expr in offsets]
    for expr, values in zip(offsets, offset_values):
        extra[f"offset({expr})"] = values
    w_arg = _argument_values(weights, data, "weights")
    o_arg = _argument_values(offset, data, "offset")
    if w_arg is not None:
        extra["weights"] = w_arg
    if o_arg is not None:
        extra["offset="] = o_arg
    keep = np.ones(len(data), dtype=bool)
    for name, v in extra.items():
        keep &= ~np.isnan(v)
    n_extra = int((~keep).sum())
    if n_extra:
        which = ", ".join(f"{k}: {int(np.isnan(v).sum())}" for k, v in extra.items() if np.isnan(v).any())
        warnings.warn(f"{n_extra} of {len(data)} rows dropped because of missing values ({which}).",
                      MissingDataWarning, stacklevel=3)
    parsed = parse_formula(text, columns=[str(c) for c in data.columns])
    work = data.iloc[np.flatnonzero(keep)]
    labels = work.index
    work = work.reset_index(drop=True)
    work, success = _code_outcome(work, parsed.response, family)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BinaryOutcomeWarning)
        # A level per row is an observation-level effect (overdispersion) when a row holds
        # more than one trial or a count; for 0/1 rows it cannot be identified.
        design = build_design(parsed, work, observation_level=_counts(work, parsed, family, cbind, w_arg))
    pos = design.frame.index.to_numpy()  # positions in `work`
    rows = np.flatnonzero(keep)[pos]
    y, w = _family_outcome(design.y, family, parsed.response, cbind,
                           extra[f"{cbind[1]} (failures in cbind)"] if cbind else None, w_arg, rows)
    off = np.zeros(len(rows))
    for values in offset_values:
        off += values[rows]
    if o_arg is not None:
        off += o_arg[rows]
    if not np.all(np.isfinite(off)):
        raise DataError("The offset is infinite in some rows (e.g. log of a zero exposure). "
                        "Drop those rows or correct the exposure.")
    return GLMMDesign(design=design, y=y, weights=w, offset=off, family=family, formula=formula,
                      offsets=offsets, offset_arg=offset if isinstance(offset, str) else None,
                      success=success, index=labels[pos],
                      nobs_dropped=n_extra + design.nobs_dropped, response=parsed.response,
                      cbind=cbind)


def _counts(work, parsed, family, cbind, weights) -> bool:
    """Whether rows hold counts (Poisson, cbind, trials), so that a level per row is allowed."""
    return family.name == "poisson" or cbind is not None or (weights is not None and np.any(weights > 1))


def _integral(v) -> bool:
    return bool(np.all(np.abs(v - np.round(v)) < 1e-8 * np.maximum(1.0, np.abs(v))))


def _family_outcome(y, family, response, cbind, failures, weights, rows):
    """(y, prior weights) for the family, with the checks lme4 makes or should make."""
    if weights is not None:
        weights = weights[rows]
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise DataError("weights= must be non-negative numbers.")
    if family.name == "poisson":
        if np.any(y < 0) or not _integral(y):
            bad = y[(y < 0) | (np.abs(y - np.round(y)) > 1e-8)][:3]
            raise DataError(f"The Poisson outcome '{response}' must be non-negative whole numbers "
                            f"(counts); it has {', '.join(f'{v:g}' for v in bad)}. For a continuous "
                            "outcome use mlm.lmer; for proportions family='binomial' with weights=.")
        return y, (np.ones(len(y)) if weights is None else weights)
    if cbind is not None:
        f = failures[rows]
        if np.any(y < 0) or np.any(f < 0) or not (_integral(y) and _integral(f)):
            raise DataError(f"cbind({cbind[0]}, {cbind[1]}) needs non-negative whole numbers of "
                            "successes and failures.")
        n = y + f
        if weights is not None:
            raise DataError("Give the trials either with cbind(successes, failures) or as weights=, "
                            "not both.")
        prop = np.divide(y, n, out=np.zeros(len(y)), where=n > 0)
        return prop, n
    if np.any(y < 0) or np.any(y > 1):
        bad = y[(y < 0) | (y > 1)][:3]
        raise DataError(f"The binomial outcome '{response}' must be 0/1 or a proportion between 0 "
                        f"and 1; it has {', '.join(f'{v:g}' for v in bad)}. For counts of successes "
                        f"out of n trials write 'cbind({response}, n - {response}) ~ ...'; for "
                        "unbounded counts use family='poisson'.")
    if weights is None:
        if not np.all((y == 0) | (y == 1)):
            raise DataError(f"The binomial outcome '{response}' holds proportions (values between 0 "
                            "and 1) but no number of trials was given: pass weights= (the trials of "
                            "each row, e.g. weights='size'), or use cbind(successes, failures).")
        return y, np.ones(len(y))
    if not _integral(y * weights):
        raise DataError(f"The outcome '{response}' times weights= is not a whole number of "
                        "successes in every row: for a binomial proportion weights= must be the "
                        "number of trials.")
    return y, weights
