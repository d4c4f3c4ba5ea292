"""R's ``update()`` for formulas: a new formula written relative to an old one.

``.`` stands for what the old formula had on that side: ``"~ . + x"`` adds ``x`` to the
right-hand side and keeps the outcome; ``". ~ . - x"`` removes the term ``x``;
``"log(y) ~ ."`` changes the outcome only. Terms are compared without spaces, so
``"- (ses|school)"`` removes ``(ses | school)``.
"""

from __future__ import annotations

from mlm.errors import FormulaError
from mlm.formula import canonical_term, split_top_level

__all__ = ["update_formula"]


def _split_signed(text: str) -> list[tuple[str, str]]:
    """``(sign, term)`` pairs of a formula side, the first term's sign ``"+"``."""
    return [(sep or "+", piece.strip()) for sep, piece in split_top_level(text, "+-")]


def _key(term: str) -> str:
    # the toolkit's one comparison of term names (spaces inside quotes count)
    return canonical_term(term)


def update_formula(old: str, new: str) -> str:
    """The formula ``new`` with ``.`` replaced by the sides of ``old`` (R's ``update.formula``).

    Parameters
    ----------
    old : str
        The fitted model's formula, ``"y ~ a + b + (1 | g)"``.
    new : str
        The change: ``"~ . + x"``, ``". ~ . - a"``, ``"z ~ ."``.

    Returns
    -------
    str

    Raises
    ------
    FormulaError
        If ``new`` has no ``~`` or removes a term the old formula does not have.

    Examples
    --------
    >>> update_formula("y ~ a + (1 | g)", "~ . + x")
    'y ~ a + (1 | g) + x'
    >>> update_formula("y ~ a + b + (1 | g)", ". ~ . - b")
    'y ~ a + (1 | g)'
    """
    if not isinstance(new, str) or "~" not in new:
        raise FormulaError(f"update needs a formula with '~', e.g. '~ . + x' (add x) or '. ~ . - x' "
                           f"(remove x); got {new!r}.")
    old_lhs, old_rhs = (part.strip() for part in old.split("~", 1))
    new_lhs, new_rhs = (part.strip() for part in new.split("~", 1))
    lhs = old_lhs if new_lhs in ("", ".") else new_lhs
    terms: list[str] = []
    removed: list[str] = []
    for sign, piece in _split_signed(new_rhs):
        if not piece:
            if sign == "-" or len(terms) or removed:
                raise FormulaError(f"update: an empty term in {new!r}.")
            continue
        expanded = ([p if sg == "+" else f"- {p}" for sg, p in _split_signed(old_rhs) if p]
                    if piece == "." else [piece])
        if sign == "+":
            terms.extend(t for t in expanded if _key(t) not in {_key(x) for x in terms})
        else:
            removed.extend(expanded)
    for r in removed:
        keep = [t for t in terms if _key(t) != _key(r)]
        if len(keep) == len(terms):
            if _key(r) in ("1", "0"):
                terms.append("- 1")  # drop the intercept, as R's "- 1" does
                continue
            known = ", ".join(repr(t) for t in terms) or "none"
            raise FormulaError(f"update cannot remove {r!r}: the formula has no such term "
                               f"(terms: {known}).")
        terms = keep
    if not terms:
        terms = ["1"]
    rhs = " + ".join(terms).replace("+ - ", "- ")
    return f"{lhs} ~ {rhs}"
