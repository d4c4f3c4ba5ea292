"""Check the Python code inside a formula's terms before patsy ever compiles it.

patsy hands each factor of a formula (``np.log(z)``, ``I(x**2)``, ``x < 2``,
``C(sex, Treatment("F"))``) to Python's compiler when the design is built. Code that
is not valid Python there (``np.log(, + 10)``, ``np.log(z : 10)``, ``x <``) used to end
in a bare ``SyntaxError`` from inside patsy (issue 11). This module reads the factor's
tokens with a small recursive-descent parser of the Python expressions the
allow-list can produce, so that every such mistake is a :class:`FormulaError` with
the bad spot marked, and nothing is compiled or evaluated to find out.

It also refuses the few valid expressions whose evaluation would not finish or would
exhaust memory: a power of two constants (``10**10**10``), and strings or tuples used
as operands (``("a",) * 10**9``); arithmetic on columns runs in numpy's fixed-width
numbers and cannot blow up. Number literals are limited in length (Python refuses
integers beyond 4,300 digits with a ``ValueError``).

Tokens are duck-typed: anything with ``type``, ``string``, ``start``, ``end`` and
``is_call`` (``mlm.formula.scan._Tok``), positions being offsets into the formula.
"""

from __future__ import annotations

import tokenize
from dataclasses import dataclass

from mlm.errors import FormulaError

__all__ = ["check_expression"]

_COMPARE = frozenset(["<", ">", "<=", ">=", "==", "!="])
_ADD = frozenset(["+", "-"])
_MUL = frozenset(["*", "/", "//", "%"])
_OPERATORS = _COMPARE | _ADD | _MUL | {"**", ":", "|", "~", "="}
#: Positional arguments each call takes (min, max); calls not listed are left to patsy.
_ARITY = {"I": (1, 1), "C": (1, 2), "cwc": (2, 2), "gm": (2, 2)}
_ONE_ARG_NUMPY = frozenset(
    ["log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan"])
_EXAMPLES = {"C": 'C(x, Treatment("a"))', "Treatment": 'Treatment("a")', "cwc": "cwc(x, g)",
             "gm": "gm(x, g)", "I": "I(x**2)", "Q": 'Q("my column")'}
_MAX_NUMBER = 40          # characters in a number literal
_MAX_CONSTANT_POWER = 3   # characters in the exponent of a power of two numbers (<= 999)


@dataclass
class _Val:
    var: bool = False          # mentions a column: evaluated by numpy, fixed width
    kind: str = "num"          # "num", "str" or "tuple"
    literal: str | None = None  # the (signed) number literal, when it is one


def _bare(func: str) -> str:
    return func.split(".")[-1]


class _Reader:
    """Recursive descent over one factor's tokens (Python's expression grammar, cut down)."""

    def __init__(self, formula: str, toks: list):
        self.formula, self.toks, self.k = formula, toks, 0
        self.calls: list[str] = []

    # -- helpers -------------------------------------------------------------------------
    def peek(self):
        return self.toks[self.k] if self.k < len(self.toks) else None

    def take(self):
        t = self.toks[self.k]
        self.k += 1
        return t

    def at(self, *strings) -> bool:
        t = self.peek()
        return t is not None and t.type == tokenize.OP and t.string in strings

    def error(self, msg: str, tok, end_tok=None) -> FormulaError:
        end = (end_tok or tok).end
        return FormulaError(msg, formula=self.formula, position=tok.start,
                            length=max(1, end - tok.start))

    def inside(self) -> str:
        return f" inside {self.calls[-1]}(...)" if self.calls else ""

    def example(self) -> str:
        func = self.calls[-1] if self.calls else "I"
        return _EXAMPLES.get(_bare(func), f"{func}(x)")

    def colon(self, t) -> FormulaError:
        return self.error(
            f"':' cannot be used{self.inside() or ' here'}: it is patsy's interaction "
            f"operator and joins terms outside function calls, e.g. 'x:z'. Inside a call "
            f"write Python arithmetic, e.g. I(x * z).", t)

    def expected_value(self) -> FormulaError:
        t = self.peek()
        prev = self.toks[self.k - 1] if self.k else None
        prev_op = (prev is not None and prev.type == tokenize.OP
                   and prev.string in _OPERATORS)
        if t is None:
            return self.error(f"The operator {prev.string!r} has nothing after it"
                              f"{self.inside()}. Add a value after it or remove it, e.g. "
                              f"'I(x < 2)'.", prev)
        if t.string == ":":
            return self.colon(t)
        if prev_op:
            return self.error(f"The operator {prev.string!r} is followed by {t.string!r} "
                              f"and has nothing to act on{self.inside()}. Add a value "
                              f"between them or remove one, e.g. {self.example()}.", prev, t)
        if t.string == ",":
            return self.error(f"Nothing before the comma ','{self.inside()}: write every "
                              f"argument in full, e.g. {self.example()}.", t)
        if t.string == ")":
            return self.error(f"Nothing before ')'{self.inside()}: an argument is missing, "
                              f"e.g. {self.example()}.", t)
        if t.type == tokenize.OP and t.string in _OPERATORS:
            return self.error(f"The operator {t.string!r} has nothing before it"
                              f"{self.inside()}. Put a value before it, e.g. "
                              f"{self.example()}.", t)
        return self.error(f"Expected a column, a number or a function call{self.inside()}, "
                          f"found {t.string!r}.", t)

    def unexpected(self, t) -> FormulaError:
        if t.string == ":":
            return self.colon(t)
        prev = self.toks[self.k - 1]
        return self.error(f"{t.string!r} cannot follow {prev.string!r}{self.inside() or ' here'}"
                          f". Check the operators around the marked spot, e.g. "
                          f"{self.example()}.", t)

    def operand(self, val: _Val, op) -> _Val:
        if val.kind == "str":
            raise self.error(f"A string cannot be an operand of {op.string!r}: strings only "
                             f"name a column in Q(\"...\") or levels in C()/Treatment(), "
                             f"each as a whole argument.", op)
        if val.kind == "tuple":
            raise self.error(f"A tuple cannot be an operand of {op.string!r}: a tuple only "
                             f"lists levels, written out, e.g. C(x, levels=(\"a\", \"b\")).", op)
        return val

    # -- grammar -------------------------------------------------------------------------
    def read(self) -> _Val:
        val = self.comparison()
        t = self.peek()
        if t is not None:
            raise self.unexpected(t)
        return val

    def comparison(self) -> _Val:
        left = self.arith()
        while self.at(*_COMPARE):
            op = self.take()
            self.operand(left, op)
            right = self.operand(self.arith(), op)
            left = _Val(var=left.var or right.var)
        return left

    def _binary(self, ops, sub) -> _Val:
        left = sub()
        while self.at(*ops):
            op = self.take()
            self.operand(left, op)
            right = self.operand(sub(), op)
            left = _Val(var=left.var or right.var)
        return left

    def arith(self) -> _Val:
        return self._binary(_ADD, self.term)

    def term(self) -> _Val:
        return self._binary(_MUL, self.unary)

    def unary(self) -> _Val:
        if self.at("+", "-"):
            op = self.take()
            val = self.operand(self.unary(), op)
            literal = op.string + val.literal if val.literal and val.literal[0] not in "+-" else None
            return _Val(var=val.var, literal=literal)
        return self.power()

    def power(self) -> _Val:
        base = self.primary()
        if not self.at("**"):
            return base
        op = self.take()
        self.operand(base, op)
        exponent = self.operand(self.unary(), op)
        if not (base.var or exponent.var):
            small = (base.literal is not None and exponent.literal is not None
                     and len(exponent.literal.lstrip("+-")) <= _MAX_CONSTANT_POWER)
            if not small:
                raise self.error(
                    f"A power of constants{self.inside()} could take too long to compute "
                    f"(Python's integers have no size limit). Write the number itself, or "
                    f"use a plain number of at most {_MAX_CONSTANT_POWER} digits as the "
                    f"exponent, e.g. I(x / 10**3).", op)
        return _Val(var=base.var or exponent.var)

    def primary(self) -> _Val:
        t = self.peek()
        if t is None or (t.type == tokenize.OP and t.string != "("):
            raise self.expected_value()
        if t.type == tokenize.NUMBER:
            self.take()
            if t.string[-1] in "jJ":
                raise self.error(f"The complex number {t.string!r} cannot be used in a "
                                 f"formula.", t)
            if len(t.string) > _MAX_NUMBER:
                raise self.error(f"The number literal is {len(t.string)} characters long; "
                                 f"write at most {_MAX_NUMBER} (use e notation, e.g. 1e50).", t)
            return _Val(literal=t.string)
        if t.type == tokenize.STRING:
            self.take()
            return _Val(kind="str")
        if t.type == tokenize.OP:   # "("
            return self.parenthesised()
        # NAME: a column, a contrast name, or a call (np.func spans three tokens).
        self.take()
        if not t.is_call:
            return _Val(var=True)
        func = t.string
        if self.at("."):
            self.take()
            func += "." + self.take().string
        return self.call(func)

    def parenthesised(self) -> _Val:
        open_ = self.take()
        if self.at(")"):
            self.take()
            return _Val(kind="tuple")
        items = [self.comparison()]
        tuple_ = False
        while self.at(","):
            tuple_ = True
            self.take()
            if self.at(")"):
                break
            items.append(self.comparison())
        if not self.at(")"):
            raise self.unexpected(self.peek()) if self.peek() is not None else \
                self.error("This '(' is never closed.", open_)
        self.take()
        if tuple_:
            return _Val(var=any(v.var for v in items), kind="tuple")
        return items[0]

    def call(self, func: str) -> _Val:
        open_ = self.take()             # "(" (guaranteed by the scanner's is_call)
        self.calls.append(func)
        positional, keywords, var = 0, set(), False
        while not self.at(")"):
            t = self.peek()
            if t is None:
                raise self.error(f"The call {func}( is never closed.", open_)
            nxt = self.toks[self.k + 1] if self.k + 1 < len(self.toks) else None
            if t.type == tokenize.NAME and nxt is not None and nxt.string == "=":
                if t.string in keywords:
                    raise self.error(f"The keyword argument '{t.string}=' is given twice in "
                                     f"{func}(...). Give it once.", t, nxt)
                keywords.add(t.string)
                self.k += 2
                var |= self.comparison().var
            else:
                if keywords:
                    raise self.error(f"A positional argument follows a keyword argument in "
                                     f"{func}(...). Put the keyword arguments last, e.g. "
                                     f"{self.example()}.", t)
                positional += 1
                var |= self.comparison().var
            if self.at(","):
                self.take()
            elif not self.at(")"):
                t = self.peek()
                if t is None:
                    raise self.error(f"The call {func}( is never closed.", open_)
                raise self.unexpected(t)
        close = self.take()
        self.calls.pop()
        self._check_arity(func, positional, open_, close)
        return _Val(var=var or func == "Q")

    def _check_arity(self, func, n, open_, close) -> None:
        bare = _bare(func)
        lo, hi = _ARITY.get(bare, (1, 1) if bare in _ONE_ARG_NUMPY else (0, None))
        if lo <= n and (hi is None or n <= hi):
            return
        if lo == hi:
            want = f"{lo} argument" + ("s" if lo != 1 else "")
        else:
            want = f"{lo} to {hi} arguments"
        hint = f"e.g. {_EXAMPLES.get(bare, func + '(x)')}"
        if bare in _ONE_ARG_NUMPY and n > 1:
            hint = (f"R's log(x, base) is written {func}(x) / np.log(base) here"
                    if bare == "log" else f"e.g. {func}(x)")
        raise self.error(f"{func}() takes {want}, but is given {n}: {hint}.", open_, close)


def check_expression(formula: str, toks: list) -> None:
    """Raise :class:`FormulaError` unless ``toks`` form one expression Python can compile.

    Parameters
    ----------
    formula : str
        The whole formula, for the message.
    toks : list
        The tokens of one patsy factor (``np.log(z)``, ``x < 2``), already through the
        allow-list scan (no forbidden names, attribute access only as ``np.func(``).
    """
    if toks:
        _Reader(formula, toks).read()
