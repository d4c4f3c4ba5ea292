"""Heavy modules imported on first use, so that ``import mlm`` stays quick (issue 16).

``scipy.stats`` alone takes about half a second to import (it builds every distribution
class), and most sessions fit before they ask for a p-value; bootstrap workers never do.
A module that needs it writes ``from mlm._lazy import stats`` and uses ``stats.norm``
as before: the first attribute access imports ``scipy.stats``, later ones find it in
``sys.modules``. Nothing is put in ``sys.modules`` ahead of time, so a check such as
``"scipy.stats" in sys.modules`` keeps its meaning.
"""

from __future__ import annotations

import importlib

__all__ = ["LazyModule", "stats"]


class LazyModule:
    """Stands for module ``name`` and imports it at the first attribute access.

    Examples
    --------
    >>> from mlm._lazy import LazyModule
    >>> LazyModule("math").sqrt(4.0)
    2.0
    """

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"


#: ``scipy.stats``, imported when first used.
stats = LazyModule("scipy.stats")
