"""lme4's grammar: ``response ~ fixed + (lhs | group) ...`` into a :class:`ParsedFormula`.

The tokens come checked from :mod:`mlm.formula.scan`; this module finds the tilde and the
bars, expands ``||`` and ``/`` as lme4 does, has patsy read (never evaluate) each part, and
checks every call's Python with :mod:`mlm.formula.exprcheck`.
"""

from __future__ import annotations

import functools

import difflib
import keyword
import tokenize
from typing import Iterable

import patsy

from mlm.errors import FormulaError
from mlm.formula.exprcheck import check_expression
from mlm.formula.scan import (_BINARY_OPS, _FORBIDDEN_NAMES, _MAX_OPERATORS, ALLOWED_FUNCTIONS,
                              _check_r_operators, _check_unquoted_columns, _scan, _string_value,
                              _Tok, _tokenize)
from mlm.formula.terms import ParsedFormula, RandomTerm

def _text(formula: str, toks: list[_Tok]) -> str:
    """Join tokens with their original text, collapsing gaps to one space."""
    out = []
    for k, t in enumerate(toks):
        if k:
            gap = formula[toks[k - 1].end:t.start]
            if gap:
                out.append(" ")
        out.append(formula[t.start:t.end])
    return "".join(out)


def _patsy_error(exc: patsy.PatsyError, formula: str, offset: int, what: str) -> FormulaError:
    origin = getattr(exc, "origin", None)
    msg = getattr(exc, "message", str(exc))
    if origin is not None:
        pos = offset + origin.start
        length = max(1, origin.end - origin.start)
    else:
        pos, length = None, 1
    return FormulaError(
        f"Cannot read {what}: {msg}. Check the operators around the marked spot "
        f"(terms are joined with '+', e.g. 'x + z').",
        formula=formula, position=pos, length=length)


def _model_desc(text: str, formula: str, offset: int, what: str):
    """patsy's reading of ``text`` (a part of ``formula`` starting at ``offset``)."""
    try:
        return patsy.ModelDesc.from_formula(text)
    except patsy.PatsyError as exc:
        raise _patsy_error(exc, formula, offset, what) from None
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - patsy asserts on input it does not expect
        raise FormulaError(f"Cannot read {what}: patsy could not parse it ({type(exc).__name__}). "
                           f"Check the operators and parentheses (terms are joined with '+', "
                           f"e.g. 'x + z').", formula=formula) from None


def _check_factors(formula: str, toks: list[_Tok], terms, offset: int) -> None:
    """Every factor patsy will compile must be one valid, bounded Python expression."""
    seen = set()
    for term in terms:
        for factor in term.factors:
            origin = factor.origin
            if origin is None:  # pragma: no cover - patsy always records it
                continue
            span = (offset + origin.start, offset + origin.end)
            if span not in seen:
                seen.add(span)
                check_expression(formula, [t for t in toks
                                           if span[0] <= t.start and t.end <= span[1]])


def _parse_lhs(formula: str, toks: list[_Tok], open_tok: _Tok, bar: _Tok
               ) -> tuple[bool, tuple[str, ...]]:
    """Intercept flag and covariate term strings of the part before the bar."""
    start, end = open_tok.end, bar.start
    text = formula[start:end]
    desc = _model_desc(text, formula, start, "the left side of a random-effects term")
    _check_factors(formula, toks, desc.rhs_termlist, start)
    intercept = False
    covariates: list[str] = []
    for term in desc.rhs_termlist:
        if not term.factors:
            intercept = True
            continue
        parts = []
        for f in term.factors:
            o = f.origin
            parts.append(o.code[o.start:o.end] if o is not None else f.name())
        covariates.append(":".join(parts))
    if not intercept and not covariates:
        raise FormulaError(
            f"The random-effects term starting '{formula[open_tok.start:bar.end]}' has "
            f"no columns: '{text.strip()}' removes the intercept and adds nothing. Write "
            f"(1 | g) for a random intercept or (0 + x | g) for a slope only.",
            formula=formula, position=start, length=max(1, end - start))
    return intercept, tuple(covariates)


def _parse_group(formula: str, toks: list[_Tok], bar_end: int, close: _Tok
                 ) -> list[tuple[str, ...]]:
    """Expand ``a``, ``a:b``, ``a/b/c`` into the list of grouping tuples."""
    inner = [t for t in toks if bar_end <= t.start and t.end <= close.start]
    text = formula[bar_end:close.start].strip()
    if not inner:
        raise FormulaError(
            "Empty grouping factor: nothing follows the '|'. Name the grouping "
            "column after the bar, e.g. '(1 | school)'.",
            formula=formula, position=close.start)
    first, last = inner[0], inner[-1]
    span = (first.start, last.end - first.start)

    def bad(msg: str):
        return FormulaError(msg, formula=formula, position=span[0], length=span[1])

    ops = {t.string for t in inner if t.type == tokenize.OP}
    if "+" in ops:
        raise bad(f"Cannot group by '{text}': a random-effects term has one grouping "
                  f"factor. For crossed factors write two terms, e.g. '(1 | g) + (1 | h)'; "
                  f"for one group per combination write '(1 | g:h)'.")
    if any(t.is_call and t.string != "Q" for t in inner) or (ops - {":", "/", "(", ")"}):
        raise bad(f"Cannot group by the expression '{text}': the grouping factor must "
                  f"be column names joined by ':' or '/'. Create a column with the "
                  f"grouping first, e.g. data['g2'] = ..., and write '(1 | g2)'.")
    # Now: names (or Q("...")) separated by ':' or '/'.
    levels: list[list[str]] = [[]]
    expect_name = True
    k = 0
    while k < len(inner):
        t = inner[k]
        if expect_name:
            if t.type == tokenize.NAME and t.string == "Q":
                levels[-1].append(_string_value(inner[k + 2].string))
                k += 4
            elif t.type == tokenize.NAME:
                levels[-1].append(t.string)
                k += 1
            else:
                raise FormulaError(
                    f"Cannot group by {t.string!r}: the grouping factor must be column "
                    f"names, e.g. '(1 | school)' or '(1 | school/class)'.",
                    formula=formula, position=t.start, length=max(1, t.end - t.start))
            expect_name = False
        else:
            if t.string == "/":
                levels.append([])
            elif t.string != ":":
                raise bad(f"Cannot group by '{text}': join grouping columns with ':' "
                          f"(interaction) or '/' (nesting).")
            expect_name = True
            k += 1
    if expect_name:
        raise FormulaError(
            f"The grouping factor '{text}' ends with an operator. Name a column after "
            f"it, e.g. '(1 | school/class)'.", formula=formula, position=last.start)
    groups = []
    for depth in range(len(levels)):
        g: list[str] = []
        for part in reversed(levels[: depth + 1]):
            g.extend(part)
        groups.append(tuple(g))
    return groups


def _check_operators(formula: str, toks: list[_Tok]) -> None:
    """Operators with nothing after them (trailing '+', '(x + | g)'), and operators that
    cannot be unary with nothing before them ('(%1 | g)', '~ * x')."""
    for k, t in enumerate(toks):
        if t.type != tokenize.OP or t.string not in _BINARY_OPS or t.string in "|~":
            continue
        before = toks[k - 1] if k else None
        if t.string not in "+-" and (before is None or before.string in ("(", "|", "~", ",")):
            where = "starts the formula" if before is None else f"follows {before.string!r}"
            raise FormulaError(
                f"The operator {t.string!r} {where} and has nothing before it to act on. Put "
                f"a term before it or remove it, e.g. 'y ~ x * z'.",
                formula=formula, position=t.start, length=max(1, t.end - t.start))
        after = toks[k + 1] if k + 1 < len(toks) else None
        if after is None or after.string in (")", "|", "~", ","):
            where = "ends the formula" if after is None else f"is followed by {after.string!r}"
            raise FormulaError(
                f"The operator {t.string!r} {where} and has nothing to act on. Add a "
                f"term after it or remove it, e.g. 'y ~ x + z'.",
                formula=formula, position=t.start, length=max(1, t.end - t.start))


def _check_known(formula: str, variables, columns: list[str], index_names) -> None:
    """Every name must be a column; say which are not, the near misses and index levels."""
    cols = [str(c) for c in columns]
    colset = set(cols)
    unknown: dict[str, int] = {}
    for name, pos in variables:
        if name not in colset and name not in unknown:
            unknown[name] = pos
    if unknown:
        names = list(unknown)
        label = "variable" if len(names) == 1 else "variables"
        msg = f"Unknown {label} {', '.join(repr(n) for n in names)} in the formula."
        hints = []
        for n in names:
            close = difflib.get_close_matches(n, cols, n=1)
            if close:
                hints.append(f"'{close[0]}'" + (f" for '{n}'" if len(names) > 1 else ""))
        if hints:
            msg += " Did you mean " + ", ".join(hints) + "?"
        shown = ", ".join(cols[:10]) + (", ..." if len(cols) > 10 else "")
        msg += f" Columns available: {shown}"
        in_index = [n for n in names if n in {str(i) for i in index_names or () if i is not None}]
        if in_index:
            msg += (f". {', '.join(repr(n) for n in in_index)} "
                    f"{'is a level' if len(in_index) == 1 else 'are levels'} of the data's "
                    f"index, not {'a column' if len(in_index) == 1 else 'columns'}: make "
                    f"{'it a column' if len(in_index) == 1 else 'them columns'} with "
                    f"data.reset_index(), e.g. mlm.lmer(formula, data.reset_index())")
        pos = unknown[names[0]]
        raise FormulaError(msg, formula=formula, position=pos, length=len(names[0])
                           if formula[pos:pos + len(names[0])] == names[0] else 1)


def _check_fixed_part(formula: str, response: str, fixed: str, first_term: _Tok) -> None:
    """The fixed part left once the random terms are taken out must still be a formula
    (``y ~ x -+ (1 | g)`` leaves ``x -``)."""
    try:
        patsy.ModelDesc.from_formula(f"{response} ~ {fixed}")
    except patsy.PatsyError as exc:
        raise FormulaError(
            f"The fixed part left after taking out the random-effects terms, '{fixed}', cannot "
            f"be read ({exc.message}). Check the operators next to the random-effects terms: "
            f"join each with '+', e.g. \"y ~ x + (1 | group)\".",
            formula=formula, position=first_term.start) from None


def _check_size(formula: str, toks: list[_Tok]) -> None:
    """At most ``_MAX_OPERATORS`` operators between terms, so that patsy can read it."""
    calls: list[bool] = []
    count = 0
    for t in toks:
        if t.type != tokenize.OP:
            continue
        if t.string == "(":
            calls.append(t.func is not None)
        elif t.string == ")":
            calls.pop()
        elif t.string in _BINARY_OPS and t.string not in "|~" and not any(calls):
            count += 1
            if count > _MAX_OPERATORS:
                raise FormulaError(
                    f"The formula has more than {_MAX_OPERATORS} operators between terms, more "
                    f"than patsy can read. Shorten it, e.g. by combining predictors into new "
                    f"columns first.", formula=formula[:t.end] + " ...", position=t.start,
                    length=max(1, t.end - t.start))


def parse_formula(formula: str, columns: Iterable[str] | None = None,
                  extra_functions: Iterable[str] = (), *,
                  index_names: Iterable[str] | None = None) -> ParsedFormula:
    """Parse and check an lme4-style formula without evaluating any of it.

    Parameters
    ----------
    formula : str
        E.g. ``"mathach ~ ses + sector + (1 + ses | school)"``.  See the module
        documentation for the grammar.
    columns : iterable of str, optional
        The data's column names.  When given, every name in the formula that is
        not an allowed function must be one of them.
    extra_functions : iterable of str, optional
        More function names to allow (bare identifiers), on top of
        :data:`ALLOWED_FUNCTIONS`.
    index_names : iterable of str, optional
        The names of the data's index levels (``data.index.names``). Only used for the
        message when a name is not a column but is an index level: it suggests
        ``data.reset_index()``.

    Returns
    -------
    ParsedFormula
        Response, fixed part (a patsy string) and the expanded random terms.
        ``||`` is expanded like lme4's ``expandDoubleVerts``: ``(x + z || g)``
        becomes ``(1 | g) + (0 + x | g) + (0 + z | g)`` with ``correlated=False``
        (with a factor ``f``, ``(f || g)`` keeps all of ``f``'s dummy columns in
        one correlated block, as lme4 does).  ``(1 | a/b)`` becomes
        ``(1 | a) + (1 | b:a)``.

    Raises
    ------
    FormulaError
        If the formula is not a string, is malformed (including the Python inside
        a function call), has no random-effects term, uses anything outside the
        allow-list (function calls, attribute access, brackets, ...), or names a
        column not in ``columns``.  The message names the culprit, says how to fix
        it and marks the spot.

    Examples
    --------
    >>> p = parse_formula("mathach ~ ses + (1 + ses | school)")
    >>> p.response, p.fixed
    ('mathach', 'ses')
    >>> p.random[0]
    RandomTerm(intercept=True, covariates=('ses',), group=('school',), correlated=True)
    >>> str(parse_formula("y ~ (x + z || g)"))
    'y ~ 1 + (1 || g) + (0 + x || g) + (0 + z || g)'
    >>> parse_formula("y ~ x + (1 | cask:batch)").grouping_factors
    ('cask:batch',)
    >>> parse_formula("y ~ sess + (1 | school)", columns=["y", "ses", "school"])
    Traceback (most recent call last):
    ...
    mlm.errors.FormulaError: Unknown variable 'sess' in the formula. Did you mean 'ses'? ...
    """
    key = _cache_key(formula, columns, extra_functions, index_names)
    try:
        if key is not None:
            return _parse_cached(*key)
        return _parse_formula(formula, columns, extra_functions, index_names)
    except RecursionError:
        raise FormulaError(
            f"The formula is too long or too deeply nested to read ({len(formula)} "
            f"characters; patsy reads a few hundred terms). Shorten it, e.g. by computing "
            f"long expressions as new columns first.") from None


def _names(value):
    """``value`` as a tuple of strings when it is a list or tuple of them, else None."""
    if isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
        return tuple(value)
    return None


def _cache_key(formula, columns, extra_functions, index_names):
    """Hashable arguments for :func:`_parse_cached`, or None (then no cache: the
    argument checks speak). A fit's formula is usually read again and again (refits,
    model comparisons, simulation studies) on the same columns."""
    if type(formula) is not str or extra_functions is None:
        return None
    parts = [None if v is None else _names(v) for v in (columns, extra_functions, index_names)]
    if any(p is None and v is not None for p, v in zip(parts, (columns, extra_functions, index_names))):
        return None
    return (formula, *parts)


@functools.lru_cache(maxsize=256)
def _parse_cached(formula, columns, extra_functions, index_names) -> ParsedFormula:
    """:func:`_parse_formula` remembered (its result is a frozen, immutable value)."""
    return _parse_formula(formula, columns, extra_functions, index_names)


def _parse_formula(formula, columns, extra_functions, index_names) -> ParsedFormula:
    functions, columns = _check_arguments(formula, columns, extra_functions, index_names)
    _check_r_operators(formula, _tokenize(formula, formula))
    if columns is not None:
        _check_unquoted_columns(formula, columns)
    scan = _scan(formula, formula, functions, columns=columns)
    toks = scan.tokens
    match, parent = _match_parentheses(toks)
    ti = _find_tilde(formula, toks, parent)
    _check_response(formula, toks[:ti], parent)
    _check_operators(formula, toks)
    _check_size(formula, toks)
    bars = _find_bars(formula, toks, ti, parent, match)
    random, removed, placeholder = _random_terms(formula, toks, bars, match)

    # Whole-formula syntax check, with the random terms blanked out (same offsets).
    desc = _model_desc(placeholder, formula, 0, "the formula")
    _check_factors(formula, toks, desc.lhs_termlist + desc.rhs_termlist, 0)
    if len(desc.lhs_termlist) != 1:  # pragma: no cover - caught above
        raise FormulaError("The response must be one column or expression.",
                           formula=formula, position=0)

    fixed_toks = [t for k, t in enumerate(toks) if k > ti and k not in removed]
    fixed = _text(formula, fixed_toks) or "1"
    if (len(fixed_toks) > 1 and fixed_toks[0].string == "-" and (ti + 1) in removed
            and fixed_toks[1].string not in ("0", "1")):
        fixed = "1 " + fixed   # y ~ (1 | g) - x: patsy reads '- x' alone as a unary minus
    response = _text(formula, toks[:ti])
    _check_fixed_part(formula, response, fixed, toks[min(bars)])
    if columns is not None:
        _check_known(formula, scan.variables, columns, index_names)
    return ParsedFormula(formula=formula, response=response, fixed=fixed,
                         random=tuple(random))


def _check_arguments(formula, columns, extra_functions, index_names):
    """The allowed functions and the column names, once the arguments' types are checked."""
    if not isinstance(formula, str):
        raise FormulaError(
            f"The formula must be a string such as \"y ~ x + (1 | group)\", not "
            f"{type(formula).__name__}.")
    if not formula.strip():
        raise FormulaError("The formula is empty. Write e.g. \"y ~ x + (1 | group)\".",
                           formula=formula)
    for arg, value in (("columns", columns), ("extra_functions", extra_functions),
                       ("index_names", index_names)):
        if value is None and arg != "extra_functions":
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise FormulaError(f"{arg} must be a list of names, not {type(value).__name__}.")
    extra = []
    for name in extra_functions:
        if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
                or name.startswith("_") or name in _FORBIDDEN_NAMES):
            raise FormulaError(f"extra_functions may only hold plain function names; "
                               f"{name!r} cannot be allowed.")
        extra.append(name)
    columns = [str(c) for c in columns] if columns is not None else None
    return ALLOWED_FUNCTIONS | frozenset(extra), columns


def _match_parentheses(toks: list[_Tok]) -> tuple[dict[int, int], list[int | None]]:
    """Each "(" index's matching ")" (balance is already checked), and for each token the
    index of the innermost "(" around it."""
    match: dict[int, int] = {}
    parent: list[int | None] = []
    stack: list[int] = []
    for k, t in enumerate(toks):
        if t.string == ")" and t.type == tokenize.OP:
            match[stack.pop()] = k
        parent.append(stack[-1] if stack else None)
        if t.string == "(" and t.type == tokenize.OP:
            stack.append(k)
    return match, parent


def _find_tilde(formula: str, toks: list[_Tok], parent) -> int:
    """The index of the one '~', with something on both sides."""
    tildes = [k for k, t in enumerate(toks) if t.string == "~"]
    if not tildes:
        raise FormulaError(
            "The formula has no '~'. Write the response, '~', then the predictors, "
            "e.g. \"y ~ x + (1 | group)\".", formula=formula, position=len(formula))
    if len(tildes) > 1:
        raise FormulaError(
            "'~' appears more than once. Use a single '~' between the response and "
            "the predictors, e.g. \"y ~ x + (1 | group)\".",
            formula=formula, position=toks[tildes[1]].start)
    ti = tildes[0]
    if parent[ti] is not None:
        raise FormulaError(
            "'~' must separate the response from the predictors and cannot be inside "
            "parentheses, e.g. \"y ~ x + (1 | group)\".",
            formula=formula, position=toks[ti].start)
    if ti == 0:
        raise FormulaError(
            "The formula has no response: nothing is left of '~'. Name the outcome "
            "first, e.g. \"y ~ x + (1 | group)\".", formula=formula,
            position=toks[ti].start)
    if ti == len(toks) - 1:
        raise FormulaError(
            "Nothing follows '~'. Add the predictors and a random-effects term, e.g. "
            "\"y ~ x + (1 | group)\".", formula=formula, position=toks[ti].start)
    return ti


def _check_response(formula: str, resp_toks: list[_Tok], parent) -> None:
    """The response is one column or one expression, with no bar."""
    for t in resp_toks:
        if t.string == "|":
            raise FormulaError(
                "A '|' appears in the response. Random-effects terms go right of '~', "
                "e.g. \"y ~ x + (1 | group)\".", formula=formula, position=t.start)
    for k, t in enumerate(resp_toks):
        if (t.type == tokenize.OP and parent[k] is None
                and t.string in ("+", "-", "*", "/", ":", "**", "//", "%")):
            raise FormulaError(
                f"The response must be one column or one expression, but the {t.string!r} "
                f"here combines several. For arithmetic wrap it in I(...), e.g. "
                f"'I(y1 + y2) ~ ...'.", formula=formula, position=t.start)


def _find_bars(formula: str, toks: list[_Tok], ti: int, parent, match) -> dict[int, list[int]]:
    """Which parentheses are random-effects terms: "(" index -> its bar token(s)."""
    bars_by_paren: dict[int, list[int]] = {}
    k = ti + 1
    while k < len(toks):
        t = toks[k]
        if t.string != "|":
            k += 1
            continue
        double = (k + 1 < len(toks) and toks[k + 1].string == "|"
                  and toks[k + 1].start == t.end)
        width = 2 if double else 1
        p = parent[k]
        if p is None:
            raise FormulaError(
                "A '|' outside parentheses: random-effects terms must be in "
                "parentheses, e.g. \"y ~ x + (1 | group)\".",
                formula=formula, position=t.start, length=width)
        if toks[p - 1].is_call if p > 0 else False:
            raise FormulaError(
                f"A '|' inside {toks[p - 1].string}(...): bars are only allowed in "
                f"random-effects terms such as (1 | group).",
                formula=formula, position=t.start, length=width)
        if parent[p] is not None:
            raise FormulaError(
                "A random-effects term '( ... | group)' inside other parentheses. Add "
                "it to the formula on its own, e.g. \"y ~ x + (1 | group)\".",
                formula=formula, position=toks[p].start,
                length=toks[match[p]].end - toks[p].start)
        if bars_by_paren.get(p):
            raise FormulaError(
                "Two bars in one random-effects term. Write one term per grouping "
                "factor, e.g. '(1 | g) + (1 | h)', or '(1 | g:h)' for their combination.",
                formula=formula, position=t.start, length=width)
        bars_by_paren.setdefault(p, []).extend([k] + ([k + 1] if double else []))
        k += width
    if not bars_by_paren:
        raise FormulaError(
            "There is no random-effects term like '(1 | group)' in the formula, so "
            "there is nothing multilevel to fit. Add one, e.g. \"y ~ x + (1 | group)\". "
            "For ordinary regression without groups use statsmodels OLS "
            "(statsmodels.formula.api.ols); mlm.compare_ols compares the two.",
            formula=formula, position=toks[ti + 1].start,
            length=toks[-1].end - toks[ti + 1].start)
    return bars_by_paren


def _random_terms(formula: str, toks: list[_Tok], bars_by_paren, match
                  ) -> tuple[list[RandomTerm], set[int], str]:
    """The expanded random terms, the token indices they take from the fixed part, and the
    formula with each term blanked to '1' (same offsets, for patsy's syntax check)."""
    random: list[RandomTerm] = []
    removed: set[int] = set()
    placeholder = list(formula)
    for p in sorted(bars_by_paren):
        bar_idx = bars_by_paren[p]
        open_tok, close_i = toks[p], match[p]
        close_tok = toks[close_i]
        bar = toks[bar_idx[0]]
        bar_end = toks[bar_idx[-1]].end
        if bar_idx[0] == p + 1:
            raise FormulaError(
                "Empty left side of a random-effects term: nothing precedes the bar. "
                "Say what varies by group, e.g. '(1 | group)' for a random intercept.",
                formula=formula, position=bar.start, length=bar_end - bar.start)
        # How the term is joined to the rest of the right-hand side.
        before = toks[p - 1]
        after = toks[close_i + 1] if close_i + 1 < len(toks) else None
        if before.string not in ("+", "~") or (after is not None and after.string not in ("+", "-")):
            culprit = before if before.string not in ("+", "~") else after
            raise FormulaError(
                f"A random-effects term must be added to the formula with '+', but it "
                f"is joined with {culprit.string!r}. Write e.g. \"y ~ x + (1 | group)\".",
                formula=formula, position=culprit.start,
                length=max(1, culprit.end - culprit.start))
        groups = _parse_group(formula, toks, bar_end, close_tok)
        intercept, covs = _parse_lhs(formula, toks, open_tok, bar)
        random.extend(_expand(intercept, covs, groups, double=len(bar_idx) == 2))
        # Remove the term (and the '+' joining it) from the fixed part.
        removed.update(range(p, close_i + 1))
        if before.string == "+" and (p - 1) not in removed:
            removed.add(p - 1)
        elif after is not None and after.string == "+":
            removed.add(close_i + 1)
        width = close_tok.end - open_tok.start
        placeholder[open_tok.start:close_tok.end] = list("1" + " " * (width - 1))
    return random, removed, "".join(placeholder)


def _expand(intercept: bool, covs: tuple[str, ...], groups, double: bool) -> list[RandomTerm]:
    """One term per grouping level (``a/b``); ``||`` splits the columns as lme4's
    ``expandDoubleVerts`` does."""
    if not double:
        return [RandomTerm(intercept, covs, g) for g in groups]
    pieces = ([(True, ())] if intercept else []) + [(False, (c,)) for c in covs]
    return [RandomTerm(icpt, cv, g, correlated=False) for icpt, cv in pieces for g in groups]
