"""Every example in the package's docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mlm

# every module, subpackages included (mlm.inference, mlm.report, ...)
MODULES = sorted(m.name for m in pkgutil.walk_packages(mlm.__path__, "mlm.")
                 if m.name not in ("mlm.__main__", "mlm.datasets"))


@pytest.mark.parametrize("name", ["mlm"] + MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_every_public_function_is_documented():
    missing = [n for n in mlm.__all__ if not (getattr(mlm, n).__doc__ or "").strip()]
    assert not missing
