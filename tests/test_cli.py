"""Tests of ``python -m mlm`` through :func:`mlm.__main__.main`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def test_default_run_prints_hsb_summary(capsys):
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Linear mixed model fit by REML")
    assert "Formula: mathach ~ ses + (ses | school)" in out
    assert "Number of obs: 7185, groups:  school, 160" in out
    assert "Traceback" not in out + err


RUNS = [
    ("sleepstudy-reml", ["Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"],
     ["fit by REML", "REML criterion at convergence", "Number of obs: 180, groups:  Subject, 18"]),
    ("sleepstudy-ml", ["Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ml"],
     ["fit by maximum likelihood", "logLik", "-876.0"]),
    ("option-first", ["--ml", "--data", "pastes", "strength ~ (1 | batch/cask)"],
     ["fit by maximum likelihood", "cask:batch, 30"]),
    ("ddf", ["Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ddf", "kenward-roger"],
     ["t-tests use Kenward-Roger's method", "Pr(>|t|)"]),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in RUNS], ids=[c[0] for c in RUNS])
def test_runs(capsys, argv, expected):
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    for text in expected:
        assert text in out, text


def test_ml_differs_from_reml(capsys):
    main(["Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"])
    reml, _ = capsys.readouterr()
    main(["Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ml"])
    ml, _ = capsys.readouterr()
    assert "REML criterion" in reml and "REML criterion" not in ml
    assert "AIC" in ml and "AIC" not in reml.split("Random effects:")[0]


def test_csv_file(capsys, tmp_path):
    rng = np.random.default_rng(7)
    g = np.repeat([f"g{i}" for i in range(12)], 10)
    x = rng.normal(size=g.size)
    y = 2 + 0.5 * x + np.repeat(rng.normal(size=12), 10) + rng.normal(scale=0.5, size=g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    assert main(["y ~ x + (1 | g)", "--data", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "Number of obs: 120, groups:  g, 12" in out
    expected = mlm.lmer("y ~ x + (1 | g)", frame)
    assert f"{expected.deviance:.4f}" in out


def test_csv_with_missing_values_warns_on_stderr(capsys, tmp_path):
    d = mlm.load_dataset("sleepstudy")
    d.loc[[0, 5], "Reaction"] = np.nan
    path = tmp_path / "sleep.csv"
    d.to_csv(path, index=False)
    assert main(["Reaction ~ Days + (1 | Subject)", "--data", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "Number of obs: 178" in out
    assert "warning: 2 of 180 rows dropped" in err


ERRORS = [
    ("bad-formula", ["mathach ~ ses + (ses | )"], r"error: "),
    ("unknown-column", ["mathach ~ sess + (1 | school)"], r"error: Unknown variable 'sess'"),
    ("no-random-term", ["mathach ~ ses"], r"error: There is no random-effects term"),
    ("unknown-dataset", ["y ~ x + (1 | g)", "--data", "nosuchdata"],
     r"error: There is no bundled data set called 'nosuchdata'"),
    ("missing-csv", ["y ~ x + (1 | g)", "--data", "/nonexistent/dir/file.csv"],
     r"error: Cannot read '/nonexistent/dir/file.csv'"),
    ("kr-with-ml", ["Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy", "--ml", "--ddf", "kr"],
     r"error: ddf='kenward-roger' needs a REML fit"),
]


@pytest.mark.parametrize("argv, start", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_are_one_line(capsys, argv, start):
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert re.match(start, err)
    assert "Traceback" not in err
    # One message, whose first line says it all; a formula error adds the formula and a
    # caret under the bad spot (mlm.FormulaError), nothing more.
    lines = err.rstrip("\n").splitlines()
    assert lines[0].startswith("error: ") and len(lines[0]) > 20
    assert len(lines) <= 3
    if len(lines) == 3:
        assert set(lines[2].strip()) == {"^"}


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "formula" in capsys.readouterr().out


def test_module_entry_point(tmp_path):
    """The real ``python -m mlm`` exits 1 with one error line and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "mlm", "mathach ~ ses"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert proc.stdout == ""
