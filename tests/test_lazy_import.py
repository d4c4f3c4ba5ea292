"""``import mlm`` imports nothing heavy; names load on first use (mlm/__init__.py, mlm._lazy).

Structural checks, not timings (issue 16): each runs in a fresh interpreter and looks at
``sys.modules`` afterwards. scipy.stats (about half a second to import), statsmodels and
matplotlib must wait until a p-value, the statsmodels engine or a plot asks for them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlm

HEAVY = ("scipy.stats", "statsmodels", "matplotlib")


def _loaded_after(code: str, modules) -> list:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_mlm_loads_nothing_heavy():
    assert _loaded_after("import mlm", HEAVY + ("pandas", "scipy", "patsy")) == []


def test_command_help_loads_nothing_heavy():
    code = "import mlm.cli\nmlm.cli.build_parser().format_help()"
    assert _loaded_after(code, HEAVY + ("pandas", "scipy", "patsy")) == []


def test_a_fit_needs_no_scipy_stats():
    # The fit and its estimates need no distribution: bootstrap and power refits never
    # pay for scipy.stats; the t-tests of the coefficient table and the summary take theirs
    # from scipy.special (mlm._distributions: 20 MiB less resident memory, issue 16), and
    # a distribution mlm._distributions does not serve imports scipy.stats when asked.
    code = ("import mlm\n"
            "fit = mlm.lmer('Reaction ~ Days + (Days | Subject)', mlm.load_dataset('sleepstudy'))\n"
            "fit.fixef, fit.varcorr")
    assert _loaded_after(code, HEAVY) == []
    assert _loaded_after(code + "\nfit.coefficients\nstr(fit.summary())", HEAVY) == []
    assert _loaded_after(code + "\nfrom mlm._lazy import stats\nstats.f.sf(2.0, 1, 5)",
                         ("scipy.stats",)) == ["scipy.stats"]


def test_every_public_name_resolves():
    for name in mlm.__all__:
        assert getattr(mlm, name) is not None
    assert set(mlm.__all__) <= set(dir(mlm))
    assert mlm.lmer is __import__("mlm.fitting", fromlist=["lmer"]).lmer


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'lmr'"):
        mlm.lmr  # noqa: B018
