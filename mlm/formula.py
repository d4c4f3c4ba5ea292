"""Read lme4-style model formulas, safely, without evaluating anything.

A multilevel-model formula looks like ``mathach ~ ses + sector + (1 + ses | school)``:

* Left of ``~`` is the **response**: one column name or one expression such as
  ``np.log(y)`` or ``I(y / 10)``.
* Right of ``~`` are the **fixed effects**, written the way patsy (and R) write
  regression formulas: ``x + z``, ``x * z`` (both and their interaction), ``x:z``
  (the interaction alone), ``C(sex)`` (treat as categorical), ``I(x**2)``
  (arithmetic), ``0 +`` or ``- 1`` (no intercept).
* Also on the right, added with ``+``, are one or more **random-effects terms**,
  each in parentheses with a bar: ``(columns | group)``.  The part before the
  bar says which coefficients vary from group to group, the part after it names
  the grouping column.

  - ``(1 | school)``: a random intercept for each school.
  - ``(ses | school)`` or ``(1 + ses | school)``: a random intercept and a random
    slope of ``ses``, allowed to be correlated.
  - ``(0 + ses | school)`` or ``(-1 + ses | school)`` or ``(ses - 1 | school)``:
    the random slope only.
  - ``(ses || school)``: the double bar asks for *uncorrelated* effects.  It is
    shorthand, exactly as in lme4, for ``(1 | school) + (0 + ses | school)``.
  - ``(1 | school/class)``: classes nested in schools; shorthand for
    ``(1 | school) + (1 | class:school)``.
  - ``(1 | school:year)``: one group per combination of school and year.
  - ``(1 | school) + (1 | rater)``: crossed grouping factors.

Only column names and a short list of functions may appear, so that a formula
can never run arbitrary Python code when patsy later evaluates it (see
:data:`ALLOWED_FUNCTIONS`).  Column names must be Python identifiers; any other
name is written ``Q("my column")``.  The Python inside each term (``np.log(z)``,
``I(x < 2)``) is read by :mod:`mlm.exprcheck` before patsy compiles it, so a slip
such as ``np.log(, + 10)`` is a :class:`FormulaError` with the spot marked.  R habits
get pointed hints: ``I(x^2)`` (write ``I(x**2)``), ``b %in% a`` (nesting is
``(1 | a/b)``), ``y ~ .`` (write the columns out), ``factor(x)`` (``C(x)``).

:func:`parse_formula` turns the text into a :class:`ParsedFormula` holding the
response, the fixed part as a patsy string and the expanded
:class:`RandomTerm` objects.
"""

from __future__ import annotations

import difflib
import io
import keyword
import re
import tokenize
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

import patsy

from mlm.errors import FormulaError
from mlm.exprcheck import check_expression

__all__ = [
    "ALLOWED_FUNCTIONS",
    "NUMPY_FUNCTIONS",
    "RandomTerm",
    "ParsedFormula",
    "parse_formula",
    "canonical_term",
    "match_term",
]

#: Numeric functions that may also be called with a ``np.`` / ``numpy.`` prefix.
NUMPY_FUNCTIONS: frozenset[str] = frozenset(
    ["log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan"]
)

_FUNCTION_ORDER = (
    "C", "I", "Q",
    "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan",
    "center", "standardize", "scale", "cwc", "gm",
    "Treatment", "Sum", "Diff", "Helmert", "Poly",
)

#: The bare function names a formula may call.  The design stage builds patsy's
#: evaluation environment from exactly these (plus ``np``/``numpy`` restricted to
#: :data:`NUMPY_FUNCTIONS`).
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(_FUNCTION_ORDER)

#: Contrast codings; may be named without a call inside ``C(x, Sum)``.
_CONTRASTS = frozenset(["Treatment", "Sum", "Diff", "Helmert", "Poly"])
#: Calls whose arguments may contain level names (strings) and keyword arguments.
_LEVEL_CALLS = frozenset(["C", "Treatment"])
_KEYWORDS_ALLOWED = frozenset(["reference", "levels"])
_NUMPY_PREFIXES = frozenset(["np", "numpy"])

_FORBIDDEN_NAMES = frozenset([
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "input", "breakpoint", "lambda",
    "import", "os", "sys", "subprocess", "builtins", "__builtins__", "dir",
    "type", "object", "super", "memoryview", "exit", "quit", "help",
])

_ALLOWED_OPS = frozenset([
    "+", "-", "*", "/", "//", "%", "**", ":", "(", ")", ",", ".", "|", "~", "=",
    "<", ">", "<=", ">=", "==", "!=",
])
_BINARY_OPS = frozenset(["+", "-", "*", "/", "//", "%", "**", ":", "|", "~"])
#: Most formula operators (outside function calls) accepted: patsy's parser recurses once
#: per operator and stops near 490 (RecursionError).
_MAX_OPERATORS = 300
#: Deepest nesting of parentheses accepted (Python's own parser stops at 200; patsy's
#: and the expression check recurse once per level).
_MAX_DEPTH = 50
_SKIP_TOKENS = frozenset([tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER,
                          tokenize.INDENT, tokenize.DEDENT])


# ---------------------------------------------------------------------------
# Public data classes
# ---------------------------------------------------------------------------

def _render_name(name: str) -> str:
    """A column name as it must be written in a formula."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    quoted = '"' + name + '"' if '"' not in name else "'" + name + "'"
    return f"Q({quoted})"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | group)`` after expansion.

    Parameters
    ----------
    intercept : bool
        Whether the term has a random intercept.
    covariates : tuple of str
        Patsy term strings for the random slopes, in the order written, e.g.
        ``("ses",)``, ``("C(sex)",)``, ``("x:z",)``, ``("I(x**2)",)``.  The
        intercept is not listed here.
    group : tuple of str
        The grouping column(s): ``("school",)``, or for an interaction or a
        nested level e.g. ``("cask", "batch")``.
    correlated : bool, default True
        False when the term came from expanding a double bar ``||``.  This is
        informational: ``(x || g)`` and ``(1 | g) + (0 + x | g)`` describe the
        same model.

    Notes
    -----
    Like lme4's ``expandDoubleVerts``, ``(f || g)`` with a *factor* ``f`` becomes
    ``(1 | g) + (0 + f | g)``: the intercept is independent of the ``f`` effects,
    but the dummy columns of ``f`` stay in *one* term and are therefore
    correlated with each other.

    Examples
    --------
    >>> t = RandomTerm(intercept=True, covariates=("ses",), group=("school",))
    >>> t.lhs
    '1 + ses'
    >>> str(t)
    '(1 + ses | school)'
    >>> RandomTerm(True, (), ("cask", "batch")).group_name
    'cask:batch'
    >>> str(RandomTerm(False, ("x",), ("g",), correlated=False))
    '(0 + x || g)'
    """

    intercept: bool
    covariates: tuple[str, ...]
    group: tuple[str, ...]
    correlated: bool = True

    def __post_init__(self):
        if isinstance(self.covariates, str) or isinstance(self.group, str):
            raise FormulaError(
                "RandomTerm covariates and group must be tuples of strings, not a "
                "single string: write covariates=('x',), group=('g',).")
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "group", tuple(self.group))
        object.__setattr__(self, "intercept", bool(self.intercept))
        object.__setattr__(self, "correlated", bool(self.correlated))
        if not self.group:
            raise FormulaError("A random-effects term needs at least one grouping "
                               "column, e.g. group=('school',).")
        if not self.intercept and not self.covariates:
            raise FormulaError("A random-effects term needs an intercept or at "
                               "least one covariate, e.g. (1 | school).")

    @property
    def group_name(self) -> str:
        """Label of the grouping factor, lme4 style: ``":".join(group)``."""
        return ":".join(self.group)

    @property
    def lhs(self) -> str:
        """Patsy formula for the term's columns: ``"1 + ses"``, ``"0 + ses"``, ``"1"``."""
        parts = ["1" if self.intercept else "0", *self.covariates]
        return " + ".join(parts)

    def __str__(self) -> str:
        bar = "|" if self.correlated else "||"
        group = ":".join(_render_name(g) for g in self.group)
        return f"({self.lhs} {bar} {group})"


@dataclass(frozen=True)
class ParsedFormula:
    """A checked model formula split into response, fixed part and random terms.

    Parameters
    ----------
    formula : str
        The formula as the user wrote it.  Not used when comparing two
        ``ParsedFormula`` objects: formulas that mean the same model compare equal.
    response : str
        Patsy expression of the outcome, e.g. ``"mathach"`` or ``"np.log(y)"``.
    fixed : str
        The fixed-effects right-hand side as a patsy string, e.g. ``"1 + ses"``;
        ``"1"`` when only random terms were written.
    random : tuple of RandomTerm
        The expanded random-effects terms, in order.

    Examples
    --------
    >>> p = parse_formula("mathach ~ ses + (ses || school)")
    >>> p.fixed_formula
    'mathach ~ ses'
    >>> [str(t) for t in p.random]
    ['(1 || school)', '(0 + ses || school)']
    >>> p.variables
    ('mathach', 'ses', 'school')
    >>> p.grouping_factors
    ('school',)
    >>> str(parse_formula("y ~ x + (1 | a/b)"))
    'y ~ x + (1 | a) + (1 | b:a)'
    """

    formula: str = field(compare=False)
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]

    def __post_init__(self):
        object.__setattr__(self, "random", tuple(self.random))

    @property
    def fixed_formula(self) -> str:
        """The patsy formula of the fixed part, ``"response ~ fixed"``."""
        return f"{self.response} ~ {self.fixed}"

    @property
    def variables(self) -> tuple[str, ...]:
        """Every data column the formula refers to, without duplicates.

        Order: the response's columns, then the fixed part's, then for each
        random term its covariates' columns followed by its grouping columns.
        ``Q("odd name")`` contributes ``"odd name"``.
        """
        seen: dict[str, None] = {}
        for text in (self.response, self.fixed):
            for name, _ in _scan(text, text, None).variables:
                seen.setdefault(name, None)
        for term in self.random:
            for cov in term.covariates:
                for name, _ in _scan(cov, cov, None).variables:
                    seen.setdefault(name, None)
            for g in term.group:
                seen.setdefault(g, None)
        return tuple(seen)

    @property
    def grouping_factors(self) -> tuple[str, ...]:
        """The distinct ``group_name`` values of the random terms, in order."""
        return tuple(dict.fromkeys(t.group_name for t in self.random))

    def __str__(self) -> str:
        parts = [self.fixed] + [str(t) for t in self.random]
        return f"{self.response} ~ " + " + ".join(parts)


# ---------------------------------------------------------------------------
# Tokenising and the safety walk
# ---------------------------------------------------------------------------

@dataclass
class _Tok:
    type: int
    string: str
    start: int
    end: int
    is_call: bool = False        # NAME (or np.NAME) directly followed by "("
    func: str | None = None      # for "(" tokens that open a call: the function
    call_start: int = -1         # for "(" tokens that open a call: where its name starts


@dataclass
class _Scan:
    tokens: list[_Tok]
    variables: list[tuple[str, int]]   # (column name, position)


def _string_value(token: str) -> str:
    """The text of a string literal.  Backslashes are refused, so there are no escapes."""
    body = token.lstrip("rRuU")
    quote = body[:3] if body[:3] in ('"""', "'''") else body[0]
    return body[len(quote):-len(quote)]


def _allowed_list() -> str:
    return ", ".join(_FUNCTION_ORDER)


def _not_allowed(what: str, formula: str, pos: int, length: int, hint: str = "") -> FormulaError:
    msg = (f"{what} is not allowed in a formula: only column names and the functions "
           f"{_allowed_list()} (and np.log, np.exp, ... for the numeric ones) may be used.")
    if hint:
        msg += " " + hint
    return FormulaError(msg, formula=formula, position=pos, length=length)


def _prescan(text: str, formula: str, offset: int = 0) -> None:
    """Character-level checks that must pass before Python's tokenizer runs."""
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        pos = offset + i
        if ch == "\\":
            raise _not_allowed("A backslash '\\'", formula, pos, 1)
        if ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            close = text.find(quote, i + len(quote))
            if close < 0:
                raise FormulaError(
                    f"Unterminated string: the quote {ch} at position {pos} is never "
                    f"closed. Close it, e.g. Q(\"my column\").",
                    formula=formula, position=pos)
            i = close + len(quote)
            continue
        if ch == "`":
            raise FormulaError(
                "Backticks are not supported in formulas. Write a column name that is "
                "not a Python identifier as Q(\"my column\").",
                formula=formula, position=pos)
        if ch in "[]":
            raise _not_allowed("A square bracket '" + ch + "'", formula, pos, 1,
                               "Indexing and lists cannot be used; for levels write "
                               "C(x, levels=(\"a\", \"b\")).")
        if ch in "{}":
            raise _not_allowed("A brace '" + ch + "'", formula, pos, 1)
        if ch == "(":
            stack.append((ch, pos))
            if len(stack) > _MAX_DEPTH:
                raise FormulaError(
                    f"Parentheses are nested more than {_MAX_DEPTH} deep here. Simplify the "
                    f"expression, or compute it as a new column first.",
                    formula=formula, position=pos)
        elif ch == ")":
            if not stack:
                raise FormulaError(
                    f"Unbalanced parentheses: the ')' at position {pos} has no matching "
                    f"'('. Remove it or add the missing '(', e.g. '(1 | school)'.",
                    formula=formula, position=pos)
            stack.pop()
        i += 1
    if stack:
        pos = stack[-1][1]
        raise FormulaError(
            f"Unbalanced parentheses: the '(' at position {pos} is never closed. "
            f"Close it, e.g. '(1 | school)'.",
            formula=formula, position=pos)


def _tokenize(text: str, formula: str, offset: int = 0) -> list[_Tok]:
    _prescan(text, formula, offset)
    flat = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    out: list[_Tok] = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(flat).readline):
            if t.type in _SKIP_TOKENS:
                continue
            start = offset + t.start[1]
            if t.type == tokenize.ERRORTOKEN:
                if t.string == " ":
                    continue
                if t.string.isspace():
                    name = unicodedata.name(t.string[0], "unusual space").lower()
                    raise FormulaError(f"The character {t.string!r} ({name}, often pasted from "
                                       f"a document) cannot be read in a formula: replace it "
                                       f"with a plain space.", formula=formula, position=start)
                raise _not_allowed(f"The character {t.string!r}", formula, start, 1)
            if t.type == tokenize.COMMENT:
                raise _not_allowed("A comment '#'", formula, start, 1)
            if t.type not in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING, tokenize.OP):
                raise _not_allowed(f"{t.string!r}", formula, start, max(1, len(t.string)))
            out.append(_Tok(t.type, t.string, start, offset + t.end[1]))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:  # pragma: no cover
        raise FormulaError(f"The formula cannot be read: it contains something that is "
                           f"not allowed ({exc}). Use only column names, operators and "
                           f"the functions {_allowed_list()}.", formula=formula) from None
    return out


def _is_operand_end(t: _Tok) -> bool:
    return t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or t.string == ")"


# R functions users bring with them, and what to write here instead.
_R_HINTS = {
    "factor": "R's factor(x) is written C(x) here.",
    "as_factor": "R's factor(x) is written C(x) here.",
    "ordered": "R's ordered(x) is written C(x) here (with treatment contrasts).",
    "relevel": "R's relevel(x, ref = \"b\") is written C(x, Treatment(reference=\"b\")) here.",
    "poly": "Compute polynomial terms as I(x**2) or as new columns first.",
}


def _power_hint(in_call: bool) -> str:
    """R writes powers with '^'; Python (and so patsy) with '**' ('^' is a bitwise xor)."""
    if in_call:
        return ("'^' does not raise to a power here: Python writes powers '**', so R's "
                "I(x^2) is I(x**2).")
    return ("'^' does not raise to a power here: Python writes powers '**', so R's "
            "(a + b)^2 (the terms and their two-way interactions) is (a + b)**2, and a "
            "square is I(x**2).")


def _no_tilde(formula: str, prev: _Tok, t: _Tok) -> FormulaError:
    """Two operands in a row and no '~' anywhere: the tilde is what is missing."""
    fixed = formula[:prev.end] + " ~ " + formula[t.start:].lstrip()
    return FormulaError(
        f"The formula has no '~'. Write the response, '~', then the predictors; it seems to "
        f"be missing between {prev.string!r} and {t.string!r}: \"{fixed}\".",
        formula=formula, position=t.start, length=max(1, t.end - t.start))


def _r_dot(formula: str, dot: _Tok, toks: list[_Tok], columns) -> FormulaError:
    """R's ``y ~ .`` (every other column): say so, and list the columns to write."""
    msg = ("The dot '.' (R's shorthand for 'every other column') is not supported: write "
           "the predictors out, e.g. \"y ~ x1 + x2 + (1 | group)\".")
    if columns is not None:
        used = {t.string for t in toks if t.type == tokenize.NAME}
        used |= {_string_value(t.string) for t in toks if t.type == tokenize.STRING}
        rest = [_render_name(c) for c in columns if c not in used]
        if rest:
            shown = " + ".join(rest[:20]) + (f" + ... ({len(rest) - 20} more)" if len(rest) > 20 else "")
            msg += f" Columns not yet in the formula: {shown}."
    return FormulaError(msg, formula=formula, position=dot.start)


def _check_r_operators(formula: str, toks: list[_Tok]) -> None:
    """R's ``%in%`` (nesting), which would otherwise read as a column named ``in``."""
    for k in range(len(toks) - 2):
        a, b, c = toks[k:k + 3]
        if a.string == "%" and b.string == "in" and c.string == "%":
            raise FormulaError(
                "R's %in% is not supported. Nesting is written in the random part: "
                "(1 | a/b) for b nested in a (the same as (1 | a) + (1 | a:b)), or (1 | a:b) "
                "for one group per combination. In the fixed part, R's 'b %in% a' is 'a:b'.",
                formula=formula, position=a.start, length=c.end - a.start)


def _check_unquoted_columns(formula: str, columns) -> None:
    """A column that is not a Python name (``Reaction.time``, ``class``) written bare.

    R users write such names as they are; here they must be quoted, and saying so beats
    the generic "attribute access is not allowed" that the scanner would give.
    """
    for col in columns:
        col = str(col)
        if col.isidentifier() and not keyword.iskeyword(col):
            continue
        if not keyword.iskeyword(col) and not re.match(r"[^\W\d]", col):
            # Only names that start like a name (Reaction.time, my col, class); a column
            # named "1" or "+" must not turn the intercept or an operator into an error.
            continue
        found = re.search(rf"(?<![\w.\"']){re.escape(col)}(?![\w\"'])", formula)
        if found:
            raise FormulaError(f"The column {col!r} is not a plain Python name, so the formula "
                               f"must quote it: write Q(\"{col}\").", formula=formula,
                               position=found.start(), length=len(col))


def _scan(text: str, formula: str, functions: frozenset[str] | None,
          offset: int = 0, columns: list[str] | None = None) -> _Scan:
    """Tokenise ``text`` and reject everything outside the allow-list.

    Returns the tokens (positions relative to ``formula``) and the column names used.
    ``functions=None`` accepts any function name (for re-reading text that was
    already checked, e.g. with ``extra_functions``). ``columns`` only improves a message
    (R's ``y ~ .``).
    """
    toks = _tokenize(text, formula, offset)
    variables: list[tuple[str, int]] = []
    stack: list[_Tok] = []      # open "(" tokens
    consumed: set[int] = set()  # indices of "." and attribute NAMEs of np.func
    n = len(toks)

    def nxt(k: int) -> _Tok | None:
        return toks[k] if k < n else None

    def enclosing_call() -> str | None:
        for p in reversed(stack):
            if p.func is not None:
                return p.func
        return None

    for i, t in enumerate(toks):
        prev = toks[i - 1] if i > 0 else None
        if i in consumed:
            continue
        s = t.string
        length = max(1, t.end - t.start)

        if t.type == tokenize.NAME and (keyword.iskeyword(s) or s in _FORBIDDEN_NAMES
                                        or s.startswith("_")):
            hint = f"If {s!r} really is a column name, write Q(\"{s}\")."
            raise _not_allowed(f"{s!r}", formula, t.start, length, hint)

        # Two operands in a row ("x y", "1.real", "I(x)(y)", "'a' 'b'").
        if prev is not None and _is_operand_end(prev) and (
                t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or s == "("):
            if not (s == "(" and prev.is_call):
                if not stack and not any(x.string in ("~", "=") for x in toks):
                    raise _no_tilde(formula, prev, t)
                if s == "(":
                    what = ("Calling the result of an expression" if prev.string == ")"
                            else f"Calling {prev.string!r}")
                    raise _not_allowed(what, formula, prev.start, t.end - prev.start)
                if prev.type == tokenize.NUMBER and prev.string.endswith("."):
                    raise _not_allowed(f"Attribute access '{prev.string}{s}'", formula,
                                       prev.start, t.end - prev.start)
                raise FormulaError(
                    f"Missing operator between {prev.string!r} and {s!r}. Join terms "
                    f"with '+', e.g. 'x + z'.", formula=formula, position=t.start,
                    length=length)

        if t.type == tokenize.OP:
            if s in ("^", "^="):
                raise FormulaError(_power_hint(enclosing_call() is not None), formula=formula,
                                   position=t.start, length=length)
            if s not in _ALLOWED_OPS:
                raise _not_allowed(f"The operator {s!r}", formula, t.start, length)
            if s == "(":
                stack.append(t)
            elif s == ")":
                stack.pop()
            elif s == ".":
                after = nxt(i + 1)
                if (prev is None or not _is_operand_end(prev)) and (
                        after is None or after.type != tokenize.NAME):
                    raise _r_dot(formula, t, toks, columns)
                attr = after.string if after is not None else ""
                raise _not_allowed(f"Attribute access '.{attr}'", formula, t.start,
                                   (after.end if after else t.end) - t.start)
            elif s == ",":
                if enclosing_call() is None:
                    raise FormulaError(
                        "A comma ',' may only separate the arguments of a function "
                        "such as C(x, Treatment(\"a\")). Join terms with '+'.",
                        formula=formula, position=t.start)
            elif s == "=":
                raise FormulaError(
                    "A lone '=' cannot be used in a formula. Use '~' between the "
                    "response and the predictors, or '==' inside I(...) to compare.",
                    formula=formula, position=t.start)
            continue

        if t.type == tokenize.NUMBER:
            continue

        if t.type == tokenize.STRING:
            prefix = s[: min(q for q in (s.find("'"), s.find('"')) if q >= 0)]
            if set(prefix.lower()) - {"r", "u"}:
                raise _not_allowed(f"The string prefix {prefix!r} in {s!r}", formula,
                                   t.start, length, "Use a plain string such as "
                                   "Q(\"my column\").")
            func = enclosing_call()
            if func == "Q" and stack and stack[-1].func == "Q":
                variables.append((_string_value(s), stack[-1].call_start))
                continue
            if func in _LEVEL_CALLS:
                continue
            raise _not_allowed(f"The string {s}", formula, t.start, length,
                               "Strings may only be a column name inside Q(\"...\") or "
                               "level names inside C()/Treatment().")

        # NAME (keywords, forbidden and private names were rejected above)
        normal = unicodedata.normalize("NFKC", s)
        if normal != s:
            # Python's compiler normalises identifiers (PEP 3131), so patsy would look
            # up another name than the one written.
            raise FormulaError(f"Python reads the name {s!r} as {normal!r} (Unicode "
                               f"normalisation), so it cannot be written bare. If it is a "
                               f"column name, write Q(\"{s}\").", formula=formula,
                               position=t.start, length=length)
        after = nxt(i + 1)
        if after is not None and after.string == ".":
            if s in _NUMPY_PREFIXES:
                attr = nxt(i + 2)
                if (attr is not None and attr.type == tokenize.NAME
                        and attr.string in NUMPY_FUNCTIONS and nxt(i + 3) is not None
                        and nxt(i + 3).string == "("):
                    t.is_call = True
                    attr.is_call = True
                    toks[i + 3].func = f"{s}.{attr.string}"
                    toks[i + 3].call_start = t.start
                    consumed.update((i + 1, i + 2))
                    continue
                name = f"{s}.{attr.string}" if attr is not None else s + "."
                raise _not_allowed(
                    f"{name!r}", formula, t.start,
                    (attr.end if attr is not None else after.end) - t.start,
                    f"After '{s}.' only these functions may be called: "
                    f"{', '.join(sorted(NUMPY_FUNCTIONS))}.")
            attr = nxt(i + 2)
            name = f"{s}.{attr.string}" if attr is not None else s + "."
            raise _not_allowed(f"Attribute access {name!r}", formula, t.start,
                               (attr.end if attr is not None else after.end) - t.start)
        if s in _NUMPY_PREFIXES:
            raise _not_allowed(f"{s!r} on its own", formula, t.start, length,
                               f"Call a function from it, e.g. {s}.log(x).")
        if after is not None and after.string == "(":
            if functions is not None and s not in functions:
                hint = _R_HINTS.get(s, "Compute other transformations as a new column first.")
                raise _not_allowed(f"{s!r}", formula, t.start, length, hint)
            t.is_call = True
            after.func = s
            after.call_start = t.start
            if s == "Q":
                arg, close = nxt(i + 2), nxt(i + 3)
                if not (arg is not None and arg.type == tokenize.STRING
                        and close is not None and close.string == ")"):
                    end = close.end if close is not None else after.end
                    raise FormulaError(
                        "Q() takes exactly one quoted column name, e.g. Q(\"my column\").",
                        formula=formula, position=t.start, length=end - t.start)
            continue
        if after is not None and after.string == "=":
            if enclosing_call() is None:
                raise FormulaError(
                    "A lone '=' cannot be used in a formula. Use '~' between the "
                    "response and the predictors, e.g. \"y ~ x + (1 | group)\".",
                    formula=formula, position=after.start)
            func = stack[-1].func if stack else None
            if func in _LEVEL_CALLS and s in _KEYWORDS_ALLOWED:
                consumed.add(i + 1)
                continue
            raise _not_allowed(f"The keyword argument '{s}='", formula, t.start,
                               after.end - t.start,
                               "Only reference= and levels= inside C() or Treatment() "
                               "may be given.")
        if s in _CONTRASTS and enclosing_call() is not None:
            continue   # C(x, Sum): a contrast named without calling it
        variables.append((s, t.start))
    return _Scan(toks, variables)


# ---------------------------------------------------------------------------
# Structure: response ~ fixed + (lhs | group) ...
# ---------------------------------------------------------------------------

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
    try:
        return _parse_formula(formula, columns, extra_functions, index_names)
    except RecursionError:
        raise FormulaError(
            f"The formula is too long or too deeply nested to read ({len(formula)} "
            f"characters; patsy reads a few hundred terms). Shorten it, e.g. by computing "
            f"long expressions as new columns first.") from None


def _parse_formula(formula, columns, extra_functions, index_names) -> ParsedFormula:
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
    functions = ALLOWED_FUNCTIONS | frozenset(extra)

    if columns is not None:
        columns = [str(c) for c in columns]
    _check_r_operators(formula, _tokenize(formula, formula))
    if columns is not None:
        _check_unquoted_columns(formula, columns)
    scan = _scan(formula, formula, functions, columns=columns)
    toks = scan.tokens

    # Match parentheses (balance already checked) and find bars.
    match: dict[int, int] = {}
    parent: list[int | None] = []     # index of innermost open "(" for each token
    stack: list[int] = []
    for k, t in enumerate(toks):
        if t.string == ")" and t.type == tokenize.OP:
            match[stack.pop()] = k
        parent.append(stack[-1] if stack else None)
        if t.string == "(" and t.type == tokenize.OP:
            stack.append(k)

    # The tilde.
    tildes = [k for k, t in enumerate(toks) if t.string == "~"]
    if not tildes:
        raise FormulaError(
            "The formula has no '~'. Write the response, '~', then the predictors, "
            "e.g. \"y ~ x + (1 | group)\".", formula=formula, position=len(formula))
    if len(tildes) > 1:
        t = toks[tildes[1]]
        raise FormulaError(
            "'~' appears more than once. Use a single '~' between the response and "
            "the predictors, e.g. \"y ~ x + (1 | group)\".",
            formula=formula, position=t.start)
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
    resp_toks = toks[:ti]
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
    _check_operators(formula, toks)
    _check_size(formula, toks)

    # Bars: which parentheses are random-effects terms?
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

    random: list[RandomTerm] = []
    removed: set[int] = set()
    placeholder = list(formula)
    for p in sorted(bars_by_paren):
        bar_idx = bars_by_paren[p]
        open_tok, close_i = toks[p], match[p]
        close_tok = toks[close_i]
        bar = toks[bar_idx[0]]
        bar_end = toks[bar_idx[-1]].end
        double = len(bar_idx) == 2
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
        if double:
            pieces = ([(True, ())] if intercept else []) + [(False, (c,)) for c in covs]
            for icpt, cv in pieces:
                for g in groups:
                    random.append(RandomTerm(icpt, cv, g, correlated=False))
        else:
            for g in groups:
                random.append(RandomTerm(intercept, covs, g))
        # Remove the term (and the '+' joining it) from the fixed part.
        removed.update(range(p, close_i + 1))
        if before.string == "+" and (p - 1) not in removed:
            removed.add(p - 1)
        elif after is not None and after.string == "+":
            removed.add(close_i + 1)
        width = close_tok.end - open_tok.start
        placeholder[open_tok.start:close_tok.end] = list("1" + " " * (width - 1))

    # Whole-formula syntax check, with the random terms blanked out (same offsets).
    desc = _model_desc("".join(placeholder), formula, 0, "the formula")
    _check_factors(formula, toks, desc.lhs_termlist + desc.rhs_termlist, 0)
    if len(desc.lhs_termlist) != 1:  # pragma: no cover - caught above
        raise FormulaError("The response must be one column or expression.",
                           formula=formula, position=0)

    fixed_toks = [t for k, t in enumerate(toks) if k > ti and k not in removed]
    fixed = _text(formula, fixed_toks) or "1"
    if (len(fixed_toks) > 1 and fixed_toks[0].string == "-" and (ti + 1) in removed
            and fixed_toks[1].string not in ("0", "1")):
        fixed = "1 " + fixed   # y ~ (1 | g) - x: patsy reads '- x' alone as a unary minus
    response = _text(formula, resp_toks)
    _check_fixed_part(formula, response, fixed, toks[min(bars_by_paren)])

    if columns is not None:
        _check_known(formula, scan.variables, columns, index_names)

    return ParsedFormula(formula=formula, response=response, fixed=fixed,
                         random=tuple(random))


# ---------------------------------------------------------------------------
# Term names given to the toolkit
# ---------------------------------------------------------------------------

def split_top_level(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at the characters ``seps`` that stand outside brackets and quotes.

    The one splitter for names and expressions the toolkit takes apart: interaction
    names at ``:`` (``C(x, Treatment("a:b")):z``), hypotheses at ``,``, formula sides at
    ``+``/``-``. Quotes are ``'``, ``"`` and R's backticks. Returns ``(separator, piece)``
    pairs, the separator being the one before the piece (``""`` for the first).

    Examples
    --------
    >>> split_top_level("cwc(ses, school):meanses", ":")
    [('', 'cwc(ses, school)'), (':', 'meanses')]
    >>> split_top_level("a + (1 | g) - b", "+-")
    [('', 'a '), ('+', ' (1 | g) '), ('-', ' b')]
    """
    out, depth, quote, sep, start = [], 0, None, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in seps:
            out.append((sep, text[start:i]))
            sep, start = ch, i + 1
    out.append((sep, text[start:]))
    return out


def canonical_term(name: str) -> str:
    """The key under which term and coefficient names are compared: no spaces outside quotes.

    patsy writes ``cwc(ses, school)``; a user may type ``cwc(ses,school)`` or
    ``cwc( ses, school )``. Spaces inside quotes belong to a column or level name
    (``Q("my col")``) and are kept.

    Examples
    --------
    >>> canonical_term("cwc( ses , school )")
    'cwc(ses,school)'
    >>> canonical_term('Q("my col") : x')
    'Q("my col"):x'
    """
    out, quote = [], None
    for ch in str(name):
        if quote is None and ch.isspace():
            continue
        if ch in "\"'":
            quote = ch if quote is None else (None if ch == quote else quote)
        out.append(ch)
    return "".join(out)


def match_term(name: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that ``name`` means, regardless of spacing; None if none.

    The one place where the toolkit (simple slopes, Johnson-Neyman, ...) matches a
    term or coefficient name written by a user against the model's names: an exact
    match first, then a unique match of :func:`canonical_term`.

    Examples
    --------
    >>> match_term("cwc(ses,school)", ["(Intercept)", "cwc(ses, school)"])
    'cwc(ses, school)'
    >>> match_term("sex", ["(Intercept)", "ses"]) is None
    True
    """
    available = [str(a) for a in available]
    if name in available:
        return name
    key = canonical_term(name)
    found = [a for a in available if canonical_term(a) == key]
    return found[0] if len(found) == 1 else None
