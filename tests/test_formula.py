"""Tests of mlm.formula: grammar, error messages and the safety allow-list."""

from __future__ import annotations

import builtins
import doctest

import patsy
import pytest

import mlm.formula as formula_module
import mlm.formula.parser
import mlm.formula.scan
import mlm.formula.terms
from mlm.errors import FormulaError, MLMError
from mlm.formula import (
                         ALLOWED_FUNCTIONS,
                         ParsedFormula,
                         RandomTerm,
                         parse_formula,
                         )

# ---------------------------------------------------------------------------
# Grammar: formula -> (response, fixed, [(intercept, covariates, group, correlated)])
# ---------------------------------------------------------------------------

T, F = True, False

GOOD = [
    ("mathach ~ ses + (1 + ses | school)",
     "mathach", "ses", [(T, ("ses",), ("school",), T)]),
    ("mathach ~ 1 + ses + sector + (ses | school)",
     "mathach", "1 + ses + sector", [(T, ("ses",), ("school",), T)]),
    ("y ~ (1 | g)", "y", "1", [(T, (), ("g",), T)]),
    ("y ~ x + (1 | g)", "y", "x", [(T, (), ("g",), T)]),
    ("y ~ (1 | g) + x", "y", "x", [(T, (), ("g",), T)]),
    ("y ~ x + (0 + x | g)", "y", "x", [(F, ("x",), ("g",), T)]),
    ("y ~ x + (-1 + x | g)", "y", "x", [(F, ("x",), ("g",), T)]),
    ("y ~ x + (x - 1 | g)", "y", "x", [(F, ("x",), ("g",), T)]),
    ("y ~ x - 1 + (1 | g)", "y", "x - 1", [(T, (), ("g",), T)]),
    ("y ~ 0 + x + (1 | g)", "y", "0 + x", [(T, (), ("g",), T)]),
    ("y ~ (1 | g) - 1", "y", "- 1", [(T, (), ("g",), T)]),
    ("y ~ x + (0 + x + z | g)", "y", "x", [(F, ("x", "z"), ("g",), T)]),
    ("y ~ x*z + (x*z | g)", "y", "x*z", [(T, ("x", "z", "x:z"), ("g",), T)]),
    ("y ~ x + (x:z | g)", "y", "x", [(T, ("x:z",), ("g",), T)]),
    ("y ~ C(sex) + (C(sex) | g)", "y", "C(sex)", [(T, ("C(sex)",), ("g",), T)]),
    ("y ~ I(x**2) + (I(x**2) | g)", "y", "I(x**2)", [(T, ("I(x**2)",), ("g",), T)]),
    ("y ~ x + (log(x) | g)", "y", "x", [(T, ("log(x)",), ("g",), T)]),
    ("np.log(y) ~ x + (1 | g)", "np.log(y)", "x", [(T, (), ("g",), T)]),
    ("numpy.sqrt(y) ~ np.exp(x) + (1 | g)", "numpy.sqrt(y)", "np.exp(x)",
     [(T, (), ("g",), T)]),
    ('Q("my y") ~ Q("odd name") + (Q("odd name") | Q("my school"))',
     'Q("my y")', 'Q("odd name")', [(T, ('Q("odd name")',), ("my school",), T)]),
    # double bar
    ("y ~ x + (x || g)", "y", "x",
     [(T, (), ("g",), F), (F, ("x",), ("g",), F)]),
    ("y ~ x + (x + z || g)", "y", "x",
     [(T, (), ("g",), F), (F, ("x",), ("g",), F), (F, ("z",), ("g",), F)]),
    ("y ~ x + (0 + x + z || g)", "y", "x",
     [(F, ("x",), ("g",), F), (F, ("z",), ("g",), F)]),
    ("y ~ (1 || g)", "y", "1", [(T, (), ("g",), F)]),
    ("y ~ (f || g)", "y", "1", [(T, (), ("g",), F), (F, ("f",), ("g",), F)]),
    # nesting, interaction, crossed
    ("y ~ (1 | a/b)", "y", "1", [(T, (), ("a",), T), (T, (), ("b", "a"), T)]),
    ("y ~ x + (x | a/b/c)", "y", "x",
     [(T, ("x",), ("a",), T), (T, ("x",), ("b", "a"), T),
      (T, ("x",), ("c", "b", "a"), T)]),
    ("strength ~ (1 | cask:batch)", "strength", "1", [(T, (), ("cask", "batch"), T)]),
    ("y ~ (1 | a:b/c)", "y", "1",
     [(T, (), ("a", "b"), T), (T, (), ("c", "a", "b"), T)]),
    ("y ~ x + (1 | a) + (1 | b)", "y", "x", [(T, (), ("a",), T), (T, (), ("b",), T)]),
    ("y ~ (1 | a) + (1 | b) + x", "y", "x", [(T, (), ("a",), T), (T, (), ("b",), T)]),
    ("y ~ x + (1 | g) + (0 + x | g)", "y", "x",
     [(T, (), ("g",), T), (F, ("x",), ("g",), T)]),
    ("y ~ x + (x || a/b)", "y", "x",
     [(T, (), ("a",), F), (T, (), ("b", "a"), F),
      (F, ("x",), ("a",), F), (F, ("x",), ("b", "a"), F)]),
    # categorical codings, functions, spacing
    ('y ~ C(x, Treatment(reference="a")) + C(z, Sum) + (1 | g)', "y",
     'C(x, Treatment(reference="a")) + C(z, Sum)', [(T, (), ("g",), T)]),
    ('y ~ C(x, levels=("b", "a")) + (C(x, Treatment("b")) | g)', "y",
     'C(x, levels=("b", "a"))', [(T, ('C(x, Treatment("b"))',), ("g",), T)]),
    ("y ~ center(x) + cwc(x, g) + gm(x, g) + standardize(z) + (1 | g)", "y",
     "center(x) + cwc(x, g) + gm(x, g) + standardize(z)", [(T, (), ("g",), T)]),
    ("y~x+(1|g)", "y", "x", [(T, (), ("g",), T)]),
    ("y ~ x +\n    (1 + x | g)", "y", "x", [(T, ("x",), ("g",), T)]),
    ("y ~ I(x > 0) + (1 | g)", "y", "I(x > 0)", [(T, (), ("g",), T)]),
]


@pytest.mark.parametrize("text, response, fixed, terms", GOOD, ids=[g[0] for g in GOOD])
def test_grammar(text, response, fixed, terms):
    p = parse_formula(text)
    assert isinstance(p, ParsedFormula)
    assert p.formula == text
    assert p.response == response
    assert p.fixed == fixed
    got = [(t.intercept, t.covariates, t.group, t.correlated) for t in p.random]
    assert got == terms
    assert p.fixed_formula == f"{response} ~ {fixed}"


@pytest.mark.parametrize("text", [g[0] for g in GOOD])
def test_round_trip(text):
    p = parse_formula(text)
    again = parse_formula(str(p))
    assert again == p
    assert str(again) == str(p)


@pytest.mark.parametrize("text", [g[0] for g in GOOD])
def test_fixed_formula_is_valid_patsy(text):
    desc = patsy.ModelDesc.from_formula(parse_formula(text).fixed_formula)
    assert len(desc.lhs_termlist) == 1
    for term in parse_formula(text).random:
        patsy.ModelDesc.from_formula(term.lhs)


def test_str_and_labels():
    p = parse_formula("mathach ~ 1 + ses + (1 + ses | school)")
    assert str(p) == "mathach ~ 1 + ses + (1 + ses | school)"
    p = parse_formula("y ~ x + (1 | cask/batch) + (0 + x | school)")
    assert [str(t) for t in p.random] == ["(1 | cask)", "(1 | batch:cask)",
                                           "(0 + x | school)"]
    assert [t.lhs for t in p.random] == ["1", "1", "0 + x"]
    assert p.grouping_factors == ("cask", "batch:cask", "school")
    assert str(p) == "y ~ x + (1 | cask) + (1 | batch:cask) + (0 + x | school)"


def test_random_term_api():
    t = RandomTerm(True, ["ses"], ["cask", "batch"])
    assert t.covariates == ("ses",) and t.group == ("cask", "batch")
    assert t.correlated is True
    assert t.group_name == "cask:batch"
    assert t.lhs == "1 + ses"
    assert str(t) == "(1 + ses | cask:batch)"
    assert str(RandomTerm(False, ("x",), ("g",))) == "(0 + x | g)"
    assert str(RandomTerm(True, (), ("my school",))) == '(1 | Q("my school"))'
    assert hash(t) == hash(RandomTerm(True, ("ses",), ("cask", "batch")))
    with pytest.raises(FormulaError, match="intercept or at least one covariate"):
        RandomTerm(False, (), ("g",))
    with pytest.raises(FormulaError, match="grouping column"):
        RandomTerm(True, (), ())


def test_variables_and_grouping_factors():
    p = parse_formula('np.log(y) ~ ses + C(sex) + Q("odd name") + I(ses**2) '
                      '+ (1 + ses | school/classroom) + (1 | rater)')
    assert p.variables == ("y", "ses", "sex", "odd name", "school", "classroom", "rater")
    assert p.grouping_factors == ("school", "classroom:school", "rater")
    p = parse_formula('y ~ C(x, Treatment(reference="a")) + C(z, Sum) + (x || g)')
    assert p.variables == ("y", "x", "z", "g")
    assert p.grouping_factors == ("g",)


def test_equality_ignores_spelling():
    assert parse_formula("y ~ x + (x | g)") == parse_formula("y ~ x + (1 + x|g)")
    assert parse_formula("y ~ x + (x | g)") != parse_formula("y ~ x + (0 + x | g)")


def test_columns_ok_and_function_names_are_not_columns():
    p = parse_formula("np.log(y) ~ C(sex) + center(ses) + (ses | school)",
                      columns=["y", "sex", "ses", "school"])
    assert p.variables == ("y", "sex", "ses", "school")
    parse_formula('y ~ Q("odd name") + (1 | g)', columns=["y", "odd name", "g"])


def test_columns_unknown_suggests_close_match():
    cols = ["mathach", "ses", "sector", "school"]
    with pytest.raises(FormulaError) as info:
        parse_formula("mathach ~ sess + (1 | school)", columns=cols)
    msg = str(info.value)
    assert "Unknown variable 'sess'" in msg
    assert "Did you mean 'ses'?" in msg
    assert "Columns available: mathach, ses, sector, school" in msg
    assert msg.endswith("\n    mathach ~ sess + (1 | school)\n" + " " * 14 + "^^^^")


def test_columns_unknown_group_and_many_columns():
    cols = [f"c{i}" for i in range(15)] + ["y", "school"]
    with pytest.raises(FormulaError, match=r"Unknown variable 'schol'.*Did you mean "
                                           r"'school'.*c9, \.\.\."):
        parse_formula("y ~ c1 + (1 | schol)", columns=cols)
    with pytest.raises(FormulaError, match=r"Unknown variables 'zz', 'qq'"):
        parse_formula("y ~ zz + (1 | qq)", columns=["y"])
    with pytest.raises(FormulaError, match="Unknown variable 'odd nam'"):
        parse_formula('y ~ Q("odd nam") + (1 | g)', columns=["y", "odd name", "g"])


def test_extra_functions():
    with pytest.raises(FormulaError, match="'helper' is not allowed"):
        parse_formula("y ~ helper(x) + (1 | g)")
    p = parse_formula("y ~ helper(x) + (1 | g)", extra_functions=["helper"])
    assert p.fixed == "helper(x)"
    assert p.variables == ("y", "x", "g")
    with pytest.raises(FormulaError, match="extra_functions"):
        parse_formula("y ~ x + (1 | g)", extra_functions=["eval"])
    with pytest.raises(FormulaError, match="extra_functions"):
        parse_formula("y ~ x + (1 | g)", extra_functions=["os.system"])


def test_allowed_functions_constant():
    assert isinstance(ALLOWED_FUNCTIONS, frozenset)
    for name in ("C", "I", "Q", "log", "center", "scale", "cwc", "gm", "Treatment"):
        assert name in ALLOWED_FUNCTIONS
    assert not {"eval", "exec", "open", "getattr"} & ALLOWED_FUNCTIONS


# ---------------------------------------------------------------------------
# Malformed formulas: (formula, regex on the message, caret expected)
# ---------------------------------------------------------------------------

BAD = [
    ("y ~ x + (1 | school", r"Unbalanced parentheses: the '\(' at position 8 is never "
                            r"closed\. Close it", True),
    ("y ~ x + 1 | school)", r"the '\)' at position 18 has no matching '\('", True),
    ("y ~ x + (1 | )", r"Empty grouping factor.*e\.g\. '\(1 \| school\)'", True),
    ("y ~ x + ( | g)", r"Empty left side of a random-effects term", True),
    ("y ~ x | g", r"'\|' outside parentheses.*y ~ x \+ \(1 \| group\)", True),
    ("y ~ (1 | g | h)", r"Two bars in one random-effects term", True),
    ("y ~ (1 | log(g))", r"Cannot group by the expression 'log\(g\)'", True),
    ("y ~ (1 | g + h)", r"Cannot group by 'g \+ h'.*\(1 \| g\) \+ \(1 \| h\)", True),
    ("y ~ (1 | g*h)", r"Cannot group by the expression 'g\*h'", True),
    ("y ~ (1 | 1)", r"Cannot group by '1'", True),
    ("y ~ (0 | g)", r"has no columns.*\(1 \| g\) for a random intercept", True),
    ("y ~ x + (-1 | g)", r"has no columns", True),
    ("y ~ x ~ z + (1 | g)", r"'~' appears more than once", True),
    ("y ~ x +", r"The operator '\+' ends the formula.*Add a term after it", True),
    ("y ~ x + (1 + | g)", r"The operator '\+' is followed by '\|'", True),
    ("y ~ (1 | g/)", r"The operator '/' is followed by '\)'", True),
    ("y ~ x", r"no random-effects term like '\(1 \| group\)'.*statsmodels\.formula\.api"
              r"\.ols.*mlm\.compare_ols", True),
    ("x + (1 | g)", r"The formula has no '~'", True),
    ("~ x + (1 | g)", r"no response: nothing is left of '~'", True),
    ("y ~ ", r"Nothing follows '~'", True),
    ("y ~ `my var` + (1 | g)", r"Backticks are not supported.*Q\(\"my column\"\)", True),
    ("y ~ x * (1 | g)", r"must be added to the formula with '\+', but it is joined "
                        r"with '\*'", True),
    ("y ~ ((1 | g))", r"inside other parentheses", True),
    ("y ~ I(x | g)", r"'\|' inside I\(\.\.\.\)", True),
    ("y1 + y2 ~ x + (1 | g)", r"response must be one column.*I\(y1 \+ y2\)", True),
    ("y ~ x z + (1 | g)", r"Missing operator between 'x' and 'z'", True),
    ("y ~ x + * z + (1 | g)", r"Cannot read the formula: expected a noun", True),
    ("y ~ (1 + x +* z | g)", r"Cannot read the left side of a random-effects term", True),
    ("y ~ Q(x) + (1 | g)", r"Q\(\) takes exactly one quoted column name", True),
    ('y ~ Q("x + (1 | g)', r"Unterminated string", True),
    ("y = x + (1 | g)", r"lone '='.*Use '~'", True),
    ("y ~ x, z + (1 | g)", r"comma ',' may only separate", True),
    ("y ~ x + (1 | school:)", r"The operator ':' is followed by '\)'", True),
    ("", r"The formula is empty", False),
    ("   ", r"The formula is empty", False),
]


@pytest.mark.parametrize("text, pattern, caret", BAD, ids=[b[0] or "empty" for b in BAD])
def test_malformed(text, pattern, caret):
    with pytest.raises(FormulaError, match=pattern) as info:
        parse_formula(text)
    msg = str(info.value)
    lines = msg.splitlines()
    if caret:
        assert lines[-2] == "    " + text.replace("\n", " ") or lines[-2] == "    " + text
        mark = lines[-1]
        assert set(mark.strip()) == {"^"}
        pos = info.value.position
        assert mark.index("^") == 4 + pos
        assert 0 <= pos <= len(text)


@pytest.mark.parametrize("value", [None, 42, b"y ~ x + (1|g)", ["y ~ x"]])
def test_not_a_string(value):
    with pytest.raises(FormulaError, match="must be a string") as info:
        parse_formula(value)
    assert isinstance(info.value, MLMError) and isinstance(info.value, ValueError)


def test_caret_marks_the_culprit():
    with pytest.raises(FormulaError) as info:
        parse_formula("mathach ~ ses + (1 | school")
    assert str(info.value).endswith("\n    mathach ~ ses + (1 | school\n"
                                    "                    ^")
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x + (1 | log(g))")
    assert str(info.value).endswith("\n    y ~ x + (1 | log(g))\n"
                                    "                 ^^^^^^")


# ---------------------------------------------------------------------------
# Code injection: everything outside the allow-list is refused
# ---------------------------------------------------------------------------

INJECTIONS = [
    "y ~ __import__('os').system('echo hi') + (1 | g)",
    "y ~ open('x') + (1 | g)",
    "y ~ eval('1') + (1 | g)",
    "y ~ x.__class__ + (1 | g)",
    "y ~ np.os.system('echo hi') + (1 | g)",
    "y ~ numpy.linalg.inv(x) + (1 | g)",
    "y ~ (lambda: 1)() + (1 | g)",
    "y ~ [c for c in x] + (1 | g)",
    "y ~ getattr(x, 'y') + (1 | g)",
    "y ~ exec + (1 | g)",
    "y ~ {}.keys() + (1 | g)",
    "y ~ x.real + (1 | g)",
    "y ~ x + (1 | g.__class__)",
    'y ~ x + (__import__("os") | g)',
    'y ~ C(x, levels=__import__("os")) + (1 | g)',
    "y ~ I(x).__class__ + (1 | g)",
    '__import__("os").system("echo hi") ~ x + (1 | g)',
    "y ~ compile('1', 'f', 'eval') + (1 | g)",
    "y ~ print(1) + (1 | g)",
    "y ~ I(x if x else z) + (1 | g)",
    "y ~ I(1.real) + (1 | g)",
    "y ~ I(x)(z) + (1 | g)",
    "y ~ I(x := 1) + (1 | g)",
    "y ~ x; import os + (1 | g)",
    "y ~ I(x @ z) + (1 | g)",
    'y ~ Q(f"{__import__(\'os\')}") + (1 | g)',
    "y ~ Q('a').upper() + (1 | g)",
    "y ~ 'a'.join(x) + (1 | g)",
    "y ~ C(x, foo=1) + (1 | g)",
    "y ~ I(x, reference=1) + (1 | g)",
    "y ~ np.log + (1 | g)",
    "y ~ np + (1 | g)",
    "y ~ x + (1 | g) # comment",
    "y ~ x + \\\n (1 | g)",
    "y ~ _private + (1 | g)",
    "y ~ globals() + (1 | g)",
    "y ~ vars + (1 | g)",
    "y ~ os + (1 | g)",
    "y ~ subprocess + (1 | g)",
    "y ~ breakpoint() + (1 | g)",
    "y ~ x + ($ | g)",
    'y ~ I("abc") + (1 | g)',
    'y ~ C(x, Treatment("a").__init__) + (1 | g)',
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_refused(text):
    with pytest.raises(FormulaError, match="not allowed"):
        parse_formula(text)


def test_not_allowed_message_lists_functions():
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ open('x') + (1 | g)")
    msg = str(info.value)
    assert msg.startswith("'open' is not allowed in a formula: only column names and "
                          "the functions C, I, Q, log,")
    assert "Q(\"open\")" in msg   # the way out if it really is a column
    assert msg.splitlines()[-1] == "    " + " " * 4 + "^^^^"


def test_keyword_column_needs_q():
    with pytest.raises(FormulaError, match=r"'class' is not allowed.*Q\(\"class\"\)"):
        parse_formula("y ~ class + (1 | g)")
    assert parse_formula('y ~ Q("class") + (1 | g)').variables == ("y", "class", "g")


CALLED = {"count": 0}


def boom(*args, **kwargs):
    """A side effect the parser must never trigger."""
    CALLED["count"] += 1
    return 1


@pytest.mark.parametrize("text", [
    "y ~ boom() + (1 | g)",
    "y ~ I(boom()) + (1 | g)",
    "boom() ~ x + (1 | g)",
    "y ~ x + (boom() | g)",
    "y ~ x + (1 | boom())",
    "y ~ C(x, levels=boom()) + (1 | g)",
    "y ~ np.log(boom()) + (1 | g)",
])
def test_nothing_is_ever_called(text, monkeypatch):
    monkeypatch.setitem(CALLED, "count", 0)
    monkeypatch.setattr(builtins, "boom", boom, raising=False)
    for module in (formula_module, mlm.formula.parser, mlm.formula.scan, mlm.formula.terms):
        monkeypatch.setattr(module, "boom", boom, raising=False)
    with pytest.raises(FormulaError, match="'boom' is not allowed"):
        parse_formula(text)
    assert CALLED["count"] == 0


def test_parsing_never_evaluates(monkeypatch):
    """Valid and hostile formulas alike are read with eval/exec unavailable."""
    def forbidden(*args, **kwargs):
        raise AssertionError("evaluation attempted")

    monkeypatch.setattr(patsy.eval.EvalFactor, "memorize_passes_needed", forbidden)
    monkeypatch.setattr(patsy.eval.EvalEnvironment, "eval", forbidden)
    monkeypatch.setattr(patsy.eval.EvalEnvironment, "capture", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    try:
        for text, *_ in GOOD:
            parse_formula(text)
        for text in INJECTIONS:
            with pytest.raises(FormulaError):
                parse_formula(text)
    finally:
        monkeypatch.undo()


def test_docstring_examples():
    modules = (formula_module, mlm.formula.parser, mlm.formula.terms, mlm.formula.names)
    results = [doctest.testmod(m, optionflags=doctest.ELLIPSIS) for m in modules]
    assert sum(r.attempted for r in results) >= 10
    assert sum(r.failed for r in results) == 0


@pytest.mark.parametrize("formula, columns, message", [
    ("y ~ factor(x) + (1 | g)", ["y", "x", "g"], r"R's factor\(x\) is written C\(x\) here"),
    ("y ~ relevel(x) + (1 | g)", ["y", "x", "g"], r"C\(x, Treatment\(reference="),
    ("Reaction.time ~ x + (1 | g)", ["Reaction.time", "x", "g"],
     r"'Reaction\.time' is not a plain Python name.*Q\(\"Reaction\.time\"\)"),
    ("y ~ x + (1 | class)", ["y", "x", "class"], r"'class' is not a plain Python name.*Q\(\"class\"\)"),
])
def test_r_habits_get_a_pointed_hint(formula, columns, message):
    with pytest.raises(FormulaError, match=message) as info:
        parse_formula(formula, columns=columns)
    assert "^" in str(info.value)  # the bad spot is marked


def test_quoted_unusual_column_names_parse():
    p = parse_formula('Q("Reaction.time") ~ x + (1 | Q("class"))', columns=["Reaction.time", "x", "class"])
    assert p.variables == ("Reaction.time", "x", "class")


# ---------------------------------------------------------------------------
# Issue 11: malformed Python inside calls, caught before patsy compiles anything
# ---------------------------------------------------------------------------

PYTHON_INSIDE = [
    # (formula, message, caret position)
    ("y ~ np.log(, + 10) + (1 | g)", r"Nothing before the comma ',' inside np\.log\(\.\.\.\)", 11),
    ("y ~ np.log(z : 10) + (1 | g)", r"':' cannot be used inside np\.log\(\.\.\.\): it is "
                                     r"patsy's interaction operator.*I\(x \* z\)", 13),
    ("np.log(,) ~ x + (1 | g)", r"Nothing before the comma ',' inside np\.log", 7),
    ("y ~ x + (np.log(, ) | g)", r"Nothing before the comma", 16),
    ("y ~ I(, x) + (1 | g)", r"Nothing before the comma ',' inside I\(\.\.\.\)", 6),
    ("y ~ I(x < ) + (1 | g)", r"The operator '<' is followed by '\)' and has nothing to act "
                              r"on inside I\(\.\.\.\)", 8),
    ("y ~ x < + z + (1 | g)", r"The operator '<' has nothing after it", 6),
    ("y ~ I(x <= < z) + (1 | g)", r"The operator '<=' is followed by '<'", 8),
    ("y ~ C(x, Treatment(, 'a')) + (1 | g)", r"Nothing before the comma ',' inside "
                                             r"Treatment\(\.\.\.\)", 19),
    ("y ~ np.log(z, 10) + (1 | g)", r"np\.log\(\) takes 1 argument, but is given 2: R's "
                                    r"log\(x, base\) is written np\.log\(x\) / np\.log\(base\)", 10),
    ("y ~ sqrt(z, z) + (1 | g)", r"sqrt\(\) takes 1 argument, but is given 2: e\.g\. sqrt\(x\)", 8),
    ("y ~ I() + (1 | g)", r"I\(\) takes 1 argument, but is given 0: e\.g\. I\(x\*\*2\)", 5),
    ("y ~ C(x, Sum, Sum) + (1 | g)", r"C\(\) takes 1 to 2 arguments, but is given 3", 5),
    ("y ~ cwc(x) + (1 | g)", r"cwc\(\) takes 2 arguments, but is given 1: e\.g\. cwc\(x, g\)", 7),
    ("y ~ gm(x, g, g) + (1 | g)", r"gm\(\) takes 2 arguments, but is given 3", 6),
    ("y ~ C(x, levels=('a',), levels=('b',)) + (1 | g)",
     r"The keyword argument 'levels=' is given twice in C\(\.\.\.\)", 24),
    ("y ~ C(x, levels=('a',), Sum) + (1 | g)",
     r"A positional argument follows a keyword argument in C\(\.\.\.\)", 24),
    ("y ~ C(x, levels=('a',) * 99999) + (1 | g)", r"A tuple cannot be an operand of '\*'", 23),
    ("y ~ C(x, Treatment('a' * 9)) + (1 | g)", r"A string cannot be an operand of '\*'", 23),
    ("y ~ I(x * 10**10**10) + (1 | g)", r"A power of constants inside I\(\.\.\.\) could take too "
                                        r"long to compute.*I\(x / 10\*\*3\)", 12),
    ("y ~ I(x * (10**999)**999) + (1 | g)", r"A power of constants", 19),
    ("y ~ I(x * 9**9999) + (1 | g)", r"A power of constants", 11),
    ("y ~ I(x * 1" + "0" * 50 + ") + (1 | g)", r"The number literal is 51 characters long", 10),
    ("y ~ I(1j * x) + (1 | g)", r"The complex number '1j' cannot be used", 6),
    ("y ~ x + \u00a0(1 | g)", r"'\\xa0' \(no-break space, often pasted from a document\).*"
                              r"replace it with a plain space", 8),
    ("y ~ \ufb01 + (1 | g)", r"Python reads the name '\ufb01' as 'fi' \(Unicode normalisation\).*"
                             r"Q\(\"\ufb01\"\)", 4),
    ("y ~ " + "(" * 60 + "x" + ")" * 60 + " + (1 | g)", r"Parentheses are nested more than 50 "
                                                        r"deep", 54),
]


@pytest.mark.parametrize("text, pattern, pos", PYTHON_INSIDE, ids=[p[0][:40] for p in PYTHON_INSIDE])
def test_python_inside_calls_is_checked(text, pattern, pos):
    with pytest.raises(FormulaError, match=pattern) as info:
        parse_formula(text)
    lines = str(info.value).splitlines()
    assert lines[-2] == "    " + text
    assert info.value.position == pos and lines[-1].index("^") == 4 + pos


@pytest.mark.parametrize("text", [
    "y ~ I(x / 10**3) + (1 | g)",          # a power of two small literals is fine
    "y ~ I(2**x) + I(x**-1) + I((x + 1)**0.5) + (1 | g)",
    "y ~ I(x, ) + (1 | g)",                # a trailing comma is valid Python
    "y ~ I(x < 2) + I(-x) + I(+x) + I(x // 2 % 3) + (1 | g)",
    "y ~ C(x, levels=('a', 'b')) + C(z, Treatment(reference='b')) + C(h, Sum) + (1 | g)",
    "y ~ np.log(z) + numpy.sqrt(z) + log10(z) + (np.log(z) | g)",
    "y ~ I(1 < x < 2) + (1 | g)",
    "y ~ I((x)) + I(()) + (1 | g)",
])
def test_valid_python_inside_calls_passes(text):
    parse_formula(text)


def test_very_long_formula_is_a_formula_error():
    text = "y ~ " + " + ".join(["x"] * 20000) + " + (1 | g)"
    with pytest.raises(FormulaError, match=r"more than 300 operators between terms, more than "
                                           r"patsy can read") as info:
        parse_formula(text)
    assert info.value.position == 4 + 301 * 4 - 2   # the 301st '+'
    assert str(info.value).splitlines()[-2].endswith(" + ...")
    parse_formula("y ~ " + " + ".join(f"x{i}" for i in range(300)) + " + (1 | g)")
    parse_formula("y ~ I(" + " + ".join(["x"] * 5000) + ") + (1 | g)")  # Python code: no limit


# ---------------------------------------------------------------------------
# Issue 11: R habits
# ---------------------------------------------------------------------------

R_HABITS = [
    ("y ~ I(age^2) + (1 | g)", None, r"^'\^' does not raise to a power here: Python writes "
                                     r"powers '\*\*', so R's I\(x\^2\) is I\(x\*\*2\)\.", 9),
    ("y ~ (age + x)^2 + (1 | g)", None, r"R's \(a \+ b\)\^2 \(the terms and their two-way "
                                        r"interactions\) is \(a \+ b\)\*\*2", 13),
    ("y ~ age %in% g + (1 | g)", None, r"R's %in% is not supported\. Nesting is written in the "
                                       r"random part: \(1 \| a/b\).*\(1 \| a:b\).*'a:b'", 8),
    ("y ~ x + (1 | cls %in% g)", None, r"R's %in% is not supported", 17),
    ("y ~ .", None, r"The dot '\.' \(R's shorthand for 'every other column'\) is not "
                    r"supported: write the predictors out", 4),
    ("score ~ . + (1 | school)", ["score", "age", "school", "Reaction.time", "ses"],
     r"not supported.*Columns not yet in the formula: age \+ Q\(\"Reaction\.time\"\) \+ ses\.", 8),
    ("y x + (1 | g)", None, r"The formula has no '~'\. Write the response, '~', then the "
                            r"predictors; it seems to be missing between 'y' and 'x': "
                            r"\"y ~ x \+ \(1 \| g\)\"", 2),
    ("mathach ses + (1 | school)", None, r"has no '~'.*\"mathach ~ ses \+ \(1 \| school\)\"", 8),
]


@pytest.mark.parametrize("text, columns, pattern, pos", R_HABITS, ids=[r[0] for r in R_HABITS])
def test_r_habits_issue11(text, columns, pattern, pos):
    with pytest.raises(FormulaError, match=pattern) as info:
        parse_formula(text, columns=columns)
    assert str(info.value).splitlines()[-2] == "    " + text
    assert info.value.position == pos


def test_dot_lists_many_columns_shortly():
    cols = ["y"] + [f"x{i}" for i in range(30)]
    with pytest.raises(FormulaError, match=r"x0 \+ x1 .* \+ x19 \+ \.\.\. \(10 more\)\."):
        parse_formula("y ~ .", columns=cols)


def test_a_name_in_the_index_suggests_reset_index():
    with pytest.raises(FormulaError, match=r"Unknown variable 'school'.*'school' is a level of "
                                           r"the data's index, not a column: make it a column "
                                           r"with data\.reset_index\(\)"):
        parse_formula("y ~ x + (1 | school)", columns=["y", "x"], index_names=["school", "id"])
    with pytest.raises(FormulaError, match=r"'id', 'school' are levels of the data's index, not "
                                           r"columns: make them columns"):
        parse_formula("y ~ id + (1 | school)", columns=["y", "x"], index_names=["school", "id"])
    with pytest.raises(FormulaError) as info:   # no index hint when the name is not there
        parse_formula("y ~ x + (1 | school)", columns=["y", "x"], index_names=["id"])
    assert "reset_index" not in str(info.value)


@pytest.mark.parametrize("columns", [["y", "x", "g", "1"], ["y", "x", "g", "0", "+"]])
def test_odd_column_names_do_not_capture_the_intercept(columns):
    # a frame with integer column names (pandas.DataFrame(array)) has a column "1"
    assert parse_formula("y ~ 1 + x + (1 | g)", columns=columns).random[0].intercept


# ---------------------------------------------------------------------------
# Term names matched regardless of spaces
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, available, expected", [
    ("cwc(ses,school)", ["(Intercept)", "cwc(ses, school)"], "cwc(ses, school)"),
    ("cwc( ses , school )", ["cwc(ses, school)"], "cwc(ses, school)"),
    ("cwc(ses, school):meanses", ["cwc(ses,school) : meanses"], "cwc(ses,school) : meanses"),
    ('Q("my col")', ['Q("my col")'], 'Q("my col")'),
    ('Q("mycol")', ['Q("my col")'], None),          # spaces inside quotes count
    ("ses", ["(Intercept)", "sess"], None),
    ("a b", ["ab", "a  b"], None),                   # ambiguous: no guess
    ("a b", ["a b", "ab"], "a b"),                   # exact match first
])
def test_match_term(name, available, expected):
    from mlm.formula import canonical_term, match_term
    assert match_term(name, available) == expected
    assert canonical_term(" x ") == "x"


def test_column_with_a_space_written_bare_needs_q():
    with pytest.raises(FormulaError, match=r"'my col' is not a plain Python name.*Q\(\"my col\"\)"):
        parse_formula("y ~ my col + (1 | g)", columns=["y", "my col", "g"])


def test_fixed_part_left_after_the_random_terms_must_read():
    # found by the property tests: the '+' joining the term was taken out, leaving 'x -'
    with pytest.raises(FormulaError, match=r"The fixed part left after taking out the "
                                           r"random-effects terms, 'x -', cannot be read") as info:
        parse_formula("y ~ x -+(1|g)")
    assert info.value.position == 8
    # a term first and then '- x': patsy reads '- x' alone as a unary minus
    p = parse_formula("y ~ (1 | g) - x")
    assert p.fixed == "1 - x" and patsy.ModelDesc.from_formula(p.fixed_formula)


@pytest.mark.parametrize("kw, match", [
    (dict(columns=3), "columns must be a list of names, not int"),
    (dict(columns="abc"), "columns must be a list of names, not str"),
    (dict(extra_functions=None), "extra_functions must be a list of names, not NoneType"),
    (dict(index_names=7), "index_names must be a list of names, not int"),
])
def test_arguments_of_the_wrong_type(kw, match):
    """Found by the issue-11 QA pass: these raised a raw TypeError."""
    with pytest.raises(FormulaError, match=match):
        parse_formula("y ~ x + (1 | g)", **kw)


def test_a_formula_read_again_is_the_same_value_and_errors_are_not_remembered():
    # parse_formula remembers what it read (frozen values); a bad formula raises every time
    cols = ["y", "x", "g"]
    first = parse_formula("y ~ x + (x | g)", columns=cols)
    assert parse_formula("y ~ x + (x | g)", columns=list(cols)) is first
    assert parse_formula("y ~ x + (x | g)", columns=cols + ["z"]) == first
    for _ in range(2):
        with pytest.raises(FormulaError, match="Unknown variable 'xx'"):
            parse_formula("y ~ xx + (1 | g)", columns=cols)
