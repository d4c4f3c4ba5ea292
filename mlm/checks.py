"""Checks of the options public functions take (issue 11: no raw Python error escapes).

A string option compared with ``in`` against its choices raises numpy's or pandas'
"truth value is ambiguous" when given an array or a frame, and ``bool(...)`` turns any
string into True; these helpers name the option and its allowed values instead.
"""

from __future__ import annotations

import numbers

import numpy as np

from mlm.errors import MLMError


def choice(value, choices, name: str, error=MLMError, allow_none: bool = False, hint: str = ""):
    """``value`` if it is one of the strings ``choices`` (or None when allowed).

    Examples
    --------
    >>> from mlm.checks import choice
    >>> choice("CR2", ("CR2", "CR1"), "type")
    'CR2'
    """
    if value is None and allow_none:
        return None
    if not (isinstance(value, str) and value in choices):
        shown = ", ".join(map(str, choices)) + (" or None" if allow_none else "")
        raise error(f"{name}={_short(value)} is not available; use one of {shown}{hint}.")
    return value


def flag(value, name: str, error=MLMError) -> bool:
    """``value`` as a bool, if it is one (True/False, or 1/0 as R's ``REML = 0``).

    Examples
    --------
    >>> from mlm.checks import flag
    >>> flag(0, "reml")
    False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise error(f"{name} must be True or False, not {_short(value)}.")


def level(value, error=MLMError) -> float:
    """A confidence level strictly between 0 and 1.

    Examples
    --------
    >>> from mlm.checks import level
    >>> level(0.9)
    0.9
    """
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
            and 0 < float(value) < 1:
        return float(value)
    raise error(f"level must be between 0 and 1 (e.g. 0.95), not {_short(value)}.")


def _short(value) -> str:
    """A short description of a bad value: its repr if short, else its type."""
    text = repr(value)
    return text if len(text) <= 40 and "\n" not in text else f"a {type(value).__name__}"
