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


class _StatsModule(LazyModule):
    """``scipy.stats`` whose ``t``, ``norm`` and ``chi2`` are served from ``scipy.special``
    (:mod:`mlm._distributions`): a fit's tables need no more, and the import of
    ``scipy.stats`` costs more resident memory than the fit of a million rows saves
    elsewhere (issue 16)."""

    __slots__ = ()

    def __getattr__(self, attr):
        from mlm._distributions import LIGHT

        light = LIGHT.get(attr)
        return light if light is not None else super().__getattr__(attr)


#: ``scipy.stats``, imported when first used (``t``, ``norm``, ``chi2``: see _StatsModule).
stats = _StatsModule("scipy.stats")
