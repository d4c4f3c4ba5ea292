"""The safety walk over a formula's tokens: the allow-list of names, functions and operators.

Everything a formula may contain is decided here, before patsy sees any of it: column names,
the functions of :data:`ALLOWED_FUNCTIONS` (and ``np.``/``numpy.`` with
:data:`NUMPY_FUNCTIONS`), numbers, the formula operators, and strings only as column names in
``Q("...")`` or level names in ``C()``/``Treatment()``. Each refusal names the culprit, marks
the spot and says what to write instead (R habits get their own hints).
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
import unicodedata
from dataclasses import dataclass

from mlm.errors import FormulaError

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



def _render_name(name: str) -> str:
    """A column name as it must be written in a formula."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    quoted = '"' + name + '"' if '"' not in name else "'" + name + "'"
    return f"Q({quoted})"


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
    walk = _Walk(_tokenize(text, formula, offset), formula, functions, columns)
    walk.run()
    return _Scan(walk.toks, walk.variables)


class _Walk:
    """One left-to-right pass over the tokens: each kind of token has its own check.

    State: the open parentheses (``stack``, to know the enclosing call), the tokens already
    read as part of an ``np.func`` call (``consumed``) and the column names found.
    """

    def __init__(self, toks: list[_Tok], formula: str, functions, columns):
        self.toks, self.formula, self.functions, self.columns = toks, formula, functions, columns
        self.variables: list[tuple[str, int]] = []
        self.stack: list[_Tok] = []      # open "(" tokens
        self.consumed: set[int] = set()  # indices of "." and attribute NAMEs of np.func

    def nxt(self, k: int) -> _Tok | None:
        return self.toks[k] if k < len(self.toks) else None

    def enclosing_call(self) -> str | None:
        for p in reversed(self.stack):
            if p.func is not None:
                return p.func
        return None

    def run(self) -> None:
        for i, t in enumerate(self.toks):
            if i in self.consumed:
                continue
            prev = self.toks[i - 1] if i > 0 else None
            if t.type == tokenize.NAME and (keyword.iskeyword(t.string) or t.string.startswith("_")
                                            or t.string in _FORBIDDEN_NAMES):
                hint = f"If {t.string!r} really is a column name, write Q(\"{t.string}\")."
                raise _not_allowed(f"{t.string!r}", self.formula, t.start, _width(t), hint)
            self.check_adjacent(prev, t)
            if t.type == tokenize.OP:
                self.operator(i, prev, t)
            elif t.type == tokenize.STRING:
                self.string(t)
            elif t.type == tokenize.NAME:
                self.name(i, t)

    def check_adjacent(self, prev: _Tok | None, t: _Tok) -> None:
        """Two operands in a row ("x y", "1.real", "I(x)(y)", "'a' 'b'")."""
        s, formula = t.string, self.formula
        if prev is None or not _is_operand_end(prev) or not (
                t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or s == "("):
            return
        if s == "(" and prev.is_call:
            return
        if not self.stack and not any(x.string in ("~", "=") for x in self.toks):
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
            f"with '+', e.g. 'x + z'.", formula=formula, position=t.start, length=_width(t))

    def operator(self, i: int, prev: _Tok | None, t: _Tok) -> None:
        s, formula = t.string, self.formula
        if s in ("^", "^="):
            raise FormulaError(_power_hint(self.enclosing_call() is not None), formula=formula,
                               position=t.start, length=_width(t))
        if s not in _ALLOWED_OPS:
            raise _not_allowed(f"The operator {s!r}", formula, t.start, _width(t))
        if s == "(":
            self.stack.append(t)
        elif s == ")":
            self.stack.pop()
        elif s == ".":
            after = self.nxt(i + 1)
            if (prev is None or not _is_operand_end(prev)) and (
                    after is None or after.type != tokenize.NAME):
                raise _r_dot(formula, t, self.toks, self.columns)
            attr = after.string if after is not None else ""
            raise _not_allowed(f"Attribute access '.{attr}'", formula, t.start,
                               (after.end if after else t.end) - t.start)
        elif s == "," and self.enclosing_call() is None:
            raise FormulaError(
                "A comma ',' may only separate the arguments of a function "
                "such as C(x, Treatment(\"a\")). Join terms with '+'.",
                formula=formula, position=t.start)
        elif s == "=":
            raise FormulaError(
                "A lone '=' cannot be used in a formula. Use '~' between the "
                "response and the predictors, or '==' inside I(...) to compare.",
                formula=formula, position=t.start)

    def string(self, t: _Tok) -> None:
        s = t.string
        prefix = s[: min(q for q in (s.find("'"), s.find('"')) if q >= 0)]
        if set(prefix.lower()) - {"r", "u"}:
            raise _not_allowed(f"The string prefix {prefix!r} in {s!r}", self.formula,
                               t.start, _width(t), "Use a plain string such as "
                               "Q(\"my column\").")
        func = self.enclosing_call()
        if func == "Q" and self.stack and self.stack[-1].func == "Q":
            self.variables.append((_string_value(s), self.stack[-1].call_start))
            return
        if func in _LEVEL_CALLS:
            return
        raise _not_allowed(f"The string {s}", self.formula, t.start, _width(t),
                           "Strings may only be a column name inside Q(\"...\") or "
                           "level names inside C()/Treatment().")

    def name(self, i: int, t: _Tok) -> None:
        """A NAME (keywords, forbidden and private names were refused before)."""
        s, formula = t.string, self.formula
        normal = unicodedata.normalize("NFKC", s)
        if normal != s:
            # Python's compiler normalises identifiers (PEP 3131), so patsy would look
            # up another name than the one written.
            raise FormulaError(f"Python reads the name {s!r} as {normal!r} (Unicode "
                               f"normalisation), so it cannot be written bare. If it is a "
                               f"column name, write Q(\"{s}\").", formula=formula,
                               position=t.start, length=_width(t))
        after = self.nxt(i + 1)
        if after is not None and after.string == ".":
            self.attribute(i, t, after)
        elif s in _NUMPY_PREFIXES:
            raise _not_allowed(f"{s!r} on its own", formula, t.start, _width(t),
                               f"Call a function from it, e.g. {s}.log(x).")
        elif after is not None and after.string == "(":
            self.call(i, t, after)
        elif after is not None and after.string == "=":
            self.keyword_argument(i, t, after)
        elif not (s in _CONTRASTS and self.enclosing_call() is not None):
            self.variables.append((s, t.start))   # C(x, Sum) names a contrast, not a column

    def attribute(self, i: int, t: _Tok, dot: _Tok) -> None:
        """``np.log(`` is a call; any other ``name.attr`` is refused."""
        s, formula, attr = t.string, self.formula, self.nxt(i + 2)
        if s in _NUMPY_PREFIXES:
            call = self.nxt(i + 3)
            if (attr is not None and attr.type == tokenize.NAME and attr.string in NUMPY_FUNCTIONS
                    and call is not None and call.string == "("):
                t.is_call = attr.is_call = True
                call.func, call.call_start = f"{s}.{attr.string}", t.start
                self.consumed.update((i + 1, i + 2))
                return
            name = f"{s}.{attr.string}" if attr is not None else s + "."
            raise _not_allowed(
                f"{name!r}", formula, t.start,
                (attr.end if attr is not None else dot.end) - t.start,
                f"After '{s}.' only these functions may be called: "
                f"{', '.join(sorted(NUMPY_FUNCTIONS))}.")
        name = f"{s}.{attr.string}" if attr is not None else s + "."
        raise _not_allowed(f"Attribute access {name!r}", formula, t.start,
                           (attr.end if attr is not None else dot.end) - t.start)

    def call(self, i: int, t: _Tok, paren: _Tok) -> None:
        s, formula = t.string, self.formula
        if self.functions is not None and s not in self.functions:
            hint = _R_HINTS.get(s, "Compute other transformations as a new column first.")
            raise _not_allowed(f"{s!r}", formula, t.start, _width(t), hint)
        t.is_call = True
        paren.func, paren.call_start = s, t.start
        if s == "Q":
            arg, close = self.nxt(i + 2), self.nxt(i + 3)
            if not (arg is not None and arg.type == tokenize.STRING
                    and close is not None and close.string == ")"):
                end = close.end if close is not None else paren.end
                raise FormulaError(
                    "Q() takes exactly one quoted column name, e.g. Q(\"my column\").",
                    formula=formula, position=t.start, length=end - t.start)

    def keyword_argument(self, i: int, t: _Tok, equals: _Tok) -> None:
        if self.enclosing_call() is None:
            raise FormulaError(
                "A lone '=' cannot be used in a formula. Use '~' between the "
                "response and the predictors, e.g. \"y ~ x + (1 | group)\".",
                formula=self.formula, position=equals.start)
        func = self.stack[-1].func if self.stack else None
        if func in _LEVEL_CALLS and t.string in _KEYWORDS_ALLOWED:
            self.consumed.add(i + 1)
            return
        raise _not_allowed(f"The keyword argument '{t.string}='", self.formula, t.start,
                           equals.end - t.start,
                           "Only reference= and levels= inside C() or Treatment() "
                           "may be given.")


def _width(t: _Tok) -> int:
    return max(1, t.end - t.start)

