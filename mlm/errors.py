"""The one family of errors the package raises.

Every problem a user can cause is reported as an :class:`MLMError` (or one of its
subclasses), whose message names the culprit and says what to do about it.  Catch
``mlm.MLMError`` to catch them all.
"""

from __future__ import annotations

__all__ = ["MLMError", "FormulaError", "DataError", "FitError"]


class MLMError(Exception):
    """Base class of every error raised on purpose by mlm."""


class FormulaError(MLMError, ValueError):
    """A model formula that cannot be read or may not be evaluated.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    formula : str, optional
        The formula as the user wrote it; reprinted with the bad spot marked.
    position : int, optional
        0-based character offset of the bad spot in ``formula``.
    length : int, default 1
        Number of characters to mark.
    """

    def __init__(self, message: str, formula: str | None = None,
                 position: int | None = None, length: int = 1):
        self.formula = formula
        self.position = position
        text = message
        if formula is not None:
            text += "\n    " + formula
            if position is not None:
                text += "\n    " + " " * position + "^" * max(1, length)
        super().__init__(text)


class DataError(MLMError, ValueError):
    """Data that cannot be used as given (wrong type, missing columns, bad values)."""


class FitError(MLMError, RuntimeError):
    """A model that could not be fitted, with the reason and what to try."""
