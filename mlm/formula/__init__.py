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
``I(x < 2)``) is read by :mod:`mlm.formula.exprcheck` before patsy compiles it, so a slip
such as ``np.log(, + 10)`` is a :class:`FormulaError` with the spot marked.  R habits
get pointed hints: ``I(x^2)`` (write ``I(x**2)``), ``b %in% a`` (nesting is
``(1 | a/b)``), ``y ~ .`` (write the columns out), ``factor(x)`` (``C(x)``).

:func:`parse_formula` turns the text into a :class:`ParsedFormula` holding the
response, the fixed part as a patsy string and the expanded
:class:`RandomTerm` objects.
"""

from mlm.formula.names import canonical_term, match_term, split_top_level
from mlm.formula.parser import parse_formula
from mlm.formula.scan import ALLOWED_FUNCTIONS, NUMPY_FUNCTIONS
from mlm.formula.terms import ParsedFormula, RandomTerm

__all__ = [
    "ALLOWED_FUNCTIONS",
    "NUMPY_FUNCTIONS",
    "RandomTerm",
    "ParsedFormula",
    "parse_formula",
    "canonical_term",
    "match_term",
    "split_top_level",
]
