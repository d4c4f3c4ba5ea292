"""The parsed formula: :class:`ParsedFormula` and its expanded :class:`RandomTerm` objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlm.errors import FormulaError
from mlm.formula.scan import _render_name, _scan


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
    >>> from mlm.formula import parse_formula
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

