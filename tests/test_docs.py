"""The documentation site's sources: complete API reference, and numbers that are lme4's.

The site itself is built in CI (.ci/run: sphinx-build -W, warnings are errors); these checks need
no Sphinx and catch what a build would not: a public name left out of the reference, and a number
on the "Coming from lme4 / Stata / SPSS / HLM" page that no longer matches lme4.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import mlm

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _api_names() -> list[str]:
    """The names listed in the autosummary blocks of docs/api/index.rst."""
    text = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")
    return re.findall(r"^   ([A-Za-z_]\w*)$", text, flags=re.MULTILINE)


def test_api_reference_lists_every_public_name_once():
    names = _api_names()
    assert sorted(set(mlm.__all__) - set(names)) == []          # nothing public left out
    assert sorted(set(names) - set(mlm.__all__)) == []          # nothing listed that is not public
    assert len(names) == len(set(names))


def test_user_guide_pages_are_all_in_its_toctree():
    index = (DOCS / "guide" / "index.rst").read_text(encoding="utf-8")
    pages = {p.stem for p in (DOCS / "guide").glob("*.rst")} - {"index"}
    listed = set(re.findall(r"^   (\w+)$", index, flags=re.MULTILINE))
    assert pages == listed


def test_gallery_has_its_readme():
    # sphinx-gallery stops the build when examples/ has no README.rst (or README.txt)
    assert (ROOT / "examples" / "README.rst").exists() or (ROOT / "examples" / "README.txt").exists()


def _lme4_case(case_id: str) -> dict:
    cases = json.loads((ROOT / "tests" / "reference" / "lme4_core.json").read_text())["cases"]
    return next(c for c in cases if c["id"] == case_id)


def _bold_numbers(text: str) -> dict[str, str]:
    """quantity -> the bold number after it in the mapping table: '* - intercept: **12.665**'."""
    return dict(re.findall(r"^   \* - (.+?): \*\*(.+?)\*\*$", text, flags=re.MULTILINE))


def test_coming_from_page_numbers_are_lme4s():
    # lmer(mathach ~ ses + (ses | school), data = hsb, REML = TRUE)  (tests/reference/lme4_core.R)
    ref = _lme4_case("hsb_slope_reml")
    vc = {(r["var1"], r["var2"]): r for r in ref["varcorr"] if r["grp"] == "school"}
    resid = next(r for r in ref["varcorr"] if r["grp"] == "Residual")
    shown = _bold_numbers((DOCS / "coming_from.rst").read_text(encoding="utf-8"))
    # printed to 3 decimals, so each must equal lme4's value rounded to 3 decimals
    expected = {
        "intercept": f"{ref['fixef']['(Intercept)']:.3f}",
        "SES slope": f"{ref['fixef']['ses']:.3f}",
        "their standard errors, df, tests": f"{ref['se']['(Intercept)']:.3f}, {ref['se']['ses']:.3f}",
        "intercept variance τ00": f"{vc[('(Intercept)', None)]['vcov']:.3f}",
        "slope variance τ11": f"{vc[('ses', None)]['vcov']:.3f}",
        "intercept-slope covariance τ01 (correlation)":
            f"{vc[('(Intercept)', 'ses')]['vcov']:.3f} ({vc[('(Intercept)', 'ses')]['sdcor']:.3f})",
        "residual variance σ²": f"{resid['vcov']:.3f}",
        "fit criterion": f"{ref['criterion']:.3f}",            # REMLcrit(m)
    }
    for quantity, value in expected.items():
        assert shown.get(quantity) == value, quantity


def test_coming_from_page_icc_is_hlms_null_model():
    # HLM2's output for the null model mathach ~ 1 + (1 | school) on HSB (REML) prints
    # Tau INTRCPT1,B0 8.61431 and Sigma_squared 39.14831; the ICC is tau00 / (tau00 + sigma^2).
    shown = _bold_numbers((DOCS / "coming_from.rst").read_text(encoding="utf-8"))
    icc = next(v for k, v in shown.items() if k.startswith("intraclass correlation"))
    assert icc == f"{8.61431 / (8.61431 + 39.14831):.3f}"


@pytest.mark.parametrize("page", sorted(p.name for p in (DOCS / "guide").glob("*.rst")))
def test_user_guide_names_exist(page):
    """Every :func:`x` / :class:`x` / :meth:`A.b` / :attr:`A.b` in a guide page is a real name."""
    text = (DOCS / "guide" / page).read_text(encoding="utf-8")
    for role, target in re.findall(r":(func|class|meth|attr):`~?([\w.]+)`", text):
        obj = mlm
        for part in target.removeprefix("mlm.").split("."):
            assert hasattr(obj, part), f"{page}: :{role}:`{target}` does not exist"
            obj = getattr(obj, part)


def _public_callables():
    """Every public function, and every public method of the public classes (mlm's own)."""
    import inspect

    for name in mlm.__all__:
        obj = getattr(mlm, name)
        if inspect.isfunction(obj):
            yield f"mlm.{name}", obj
        elif inspect.isclass(obj) and not issubclass(obj, (Warning, Exception)):
            for attr, member in inspect.getmembers(obj, inspect.isfunction):
                if not attr.startswith("_") and member.__module__.startswith("mlm"):
                    yield f"mlm.{name}.{attr}", member


def test_every_parameter_is_documented():
    """What docs/conf.py's numpydoc_validation_checks enforce in the build, without Sphinx:
    every parameter documented (PR01), none that does not exist (PR02), in signature order
    (PR03), each with a description (PR07)."""
    validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is in the docs extra")
    checks = {"PR01", "PR02", "PR03", "PR07"}
    problems = []
    for qualname, func in _public_callables():
        result = validate.validate(f"{func.__module__}.{func.__qualname__}")
        problems += [f"{qualname}: {code} {msg}" for code, msg in result["errors"] if code in checks]
    assert problems == []
