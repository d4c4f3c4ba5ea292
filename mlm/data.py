"""Bundled data sets: reading them and describing them.

The files live in the repository's ``datasets/`` folder, which is installed as the
``mlm.datasets`` package; ``datasets/manifest.json`` records for each file its source,
licence, grouping structure and the level order of its categorical columns (so that
reference categories are those of the original source, as in R).
"""

from __future__ import annotations

import json
import textwrap
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from mlm.checks import flag
from mlm.errors import DataError

__all__ = ["load_dataset", "list_datasets", "describe_dataset"]


def _data_dir():
    """``datasets/`` of the source checkout this ``mlm`` was imported from, else the
    installed ``mlm.datasets`` package.

    The checkout comes first: with an editable install of one checkout, importing
    ``mlm`` from another (a git worktree) would otherwise read the first one's files.
    """
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "datasets" / "manifest.json").is_file():
        return root / "datasets"
    try:
        return resources.files("mlm.datasets")
    except ModuleNotFoundError:
        return root / "datasets"


@lru_cache(maxsize=1)
def _manifest() -> dict:
    return json.loads(_data_dir().joinpath("manifest.json").read_text("utf-8"))


def list_datasets(variables: bool = False) -> pd.DataFrame:
    """List the bundled data sets, or every variable of every data set.

    Parameters
    ----------
    variables : bool, default False
        If True, one row per variable instead of one per data set.

    Returns
    -------
    pandas.DataFrame
        By default one row per data set (index ``name``): ``title``, ``rows``,
        ``groups`` (each grouping column with its number of levels), ``structure`` (the
        grouping structure in words), ``levels`` (the units from the rows upwards, e.g.
        ``"student < school"``; crossed units joined by ``" x "``) and ``source``.
        With ``variables=True``, index ``(name, variable)`` and columns ``level`` (the
        unit the variable describes, e.g. ``"school"`` for a school-level variable),
        ``categories`` (the level order of a categorical column, reference first) and
        ``description``. Entries of the manifest without a codebook leave these empty.

    Examples
    --------
    >>> import mlm
    >>> mlm.list_datasets().loc["egsingle", "levels"]
    'test < child < school'
    >>> mlm.list_datasets(variables=True).loc[("hsb", "meanses"), "level"]
    'school'
    """
    if flag(variables, "variables"):
        return _variable_table()
    rows = []
    for name, entry in _manifest().items():
        groups = ", ".join(f"{k} ({v})" for k, v in entry.get("groups", {}).items())
        rows.append({"name": name, "title": entry.get("title", ""), "rows": entry.get("rows"),
                     "groups": groups, "structure": entry.get("structure", ""),
                     "levels": _levels_text(entry), "source": _source_text(entry)})
    return pd.DataFrame(rows).set_index("name")


def _variable_table() -> pd.DataFrame:
    rows = []
    for name, entry in _manifest().items():
        var_levels = entry.get("variable_levels") or {}
        cats = entry.get("categories") or {}
        for column in entry.get("columns", []):
            rows.append({"name": name, "variable": column, "level": var_levels.get(column, ""),
                         "categories": ", ".join(map(str, cats.get(column, []))),
                         "description": (entry.get("variables") or {}).get(column, "")})
    return pd.DataFrame(rows).set_index(["name", "variable"])


def _levels_text(entry: dict) -> str:
    """``"student < school"``; units sharing a level number (crossed) joined by ``" x "``."""
    by_level: dict = {}
    for unit in entry.get("levels") or []:
        by_level.setdefault(unit.get("level"), []).append(str(unit.get("unit")))
    return " < ".join(" x ".join(units) for _, units in sorted(by_level.items(),
                                                               key=lambda kv: kv[0] or 0))


def _source_text(entry: dict) -> str:
    src = entry.get("source", "")
    if isinstance(src, dict):  # older listings showed the raw dict; name the R object instead
        pkg, obj = src.get("r_package"), src.get("r_objects")
        return f"R package {pkg}: {obj}" if pkg and obj else str(pkg or obj or "")
    return str(src)


def describe_dataset(name: str) -> str:
    """The codebook of a bundled data set, as text.

    Every variable with its level (the unit it describes), coding and category order,
    then the grouping structure, source, citation, licence and known quirks. The same
    text is in ``load_dataset(name).attrs["description"]``.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets` (case-insensitive).

    Returns
    -------
    str

    Raises
    ------
    DataError
        If there is no data set of that name.

    Examples
    --------
    >>> import mlm
    >>> text = mlm.describe_dataset("egsingle")
    >>> print(text.splitlines()[0])
    egsingle: Mathematics growth: yearly tests of 1721 children in 60 schools (US Sustaining Effects Study)
    >>> "Levels: test < child < school" in text
    True
    """
    key, entry = _entry(name)
    return _codebook(key, entry)


def _entry(name) -> tuple[str, dict]:
    manifest = _manifest()
    if not isinstance(name, str) or name.lower() not in manifest:
        raise DataError(f"There is no bundled data set called {name!r}. "
                        f"Available: {', '.join(sorted(manifest))} (see mlm.list_datasets()).")
    return name.lower(), manifest[name.lower()]


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(str(text), width=88, initial_indent=indent, subsequent_indent=indent)


def _codebook(name: str, entry: dict) -> str:
    """Render one manifest entry; every codebook field is optional (other helpers' entries)."""
    lines = [f"{name}: {entry.get('title', '')}".rstrip(), ""]
    if entry.get("description"):
        lines += [_wrap(entry["description"], ""), ""]
    groups = ", ".join(f"{k} ({v} levels)" for k, v in (entry.get("groups") or {}).items())
    lines.append(f"Rows: {entry.get('rows')}" + (f"; grouping columns: {groups}" if groups else ""))
    if entry.get("structure"):
        lines.append(f"Structure: {entry['structure']}")
    if entry.get("levels"):
        lines.append(f"Levels: {_levels_text(entry)}")
    lines += ["", "Variables:"]
    descriptions = entry.get("variables") or {}
    var_levels = entry.get("variable_levels") or {}
    cats = entry.get("categories") or {}
    ordered = set(entry.get("ordered_factors") or [])
    width = max((len(c) for c in entry.get("columns", [])), default=0)
    for column in entry.get("columns", []):
        level = f"[{var_levels[column]}] " if column in var_levels else ""
        text = f"{level}{descriptions.get(column, '')}".strip()
        if column in cats:
            kind = "ordered categories" if column in ordered else "categories"
            text += f" ({kind}, reference first: {', '.join(map(str, cats[column]))})"
        body = _wrap(text, " " * (width + 4))
        lines.append(f"  {column:<{width}}  {body.lstrip()}")
    source = entry.get("source")
    lines.append("")
    if isinstance(source, dict):
        if source.get("r_package"):
            lines.append(f"Source: R package {source['r_package']}, {source.get('r_objects', '')}")
        if source.get("citation"):
            lines += [_wrap(f"Citation: {source['citation']}", "")]
    elif source:
        lines.append(f"Source: {source}")
    if entry.get("license"):
        lines.append(f"Licence: {entry['license']}")
    notes = [entry["notes"]] if entry.get("notes") else []
    quirks = list(entry.get("quirks") or [])
    if quirks or notes:
        lines += ["", "Known quirks:"]
        lines += [_wrap(q, "    ").replace("    ", "  - ", 1) for q in quirks + notes]
    return "\n".join(lines)


def load_dataset(name: str) -> pd.DataFrame:
    """Load a bundled data set as a new DataFrame.

    Parameters
    ----------
    name : str
        The data set's name, e.g. ``"hsb"`` (Raudenbush & Bryk's High School and
        Beyond: 7,185 students in 160 schools) or ``"sleepstudy"`` (reaction times
        of 18 subjects over 10 days of sleep deprivation). See :func:`list_datasets`.

    Returns
    -------
    pandas.DataFrame
        A fresh copy each call; categorical columns carry the level order of the
        original source, so the first level is the reference category. Ordered factors
        of the source stay ordered; note that patsy codes them with treatment contrasts
        where R would use orthogonal polynomials (``contr.poly``).

    Raises
    ------
    MLMError
        If there is no data set of that name.

    Examples
    --------
    >>> import mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb.shape
    (7185, 11)
    """
    key, entry = _entry(name)
    path = _data_dir().joinpath(entry["file"])
    with resources.as_file(path) as p:
        frame = pd.read_csv(p)
    for column, levels in (entry.get("categories") or {}).items():
        if column in frame.columns:
            values = frame[column]
            # Levels are stored as strings in the manifest; match the column's type.
            if pd.api.types.is_numeric_dtype(values):
                try:
                    levels = [type(values.iloc[0])(lv) for lv in levels]
                except (TypeError, ValueError):
                    values = values.astype(str)
            ordered = column in (entry.get("ordered_factors") or [])
            frame[column] = pd.Categorical(values, categories=levels, ordered=ordered)
    frame.attrs["name"] = key  # the summary's "Data:" line names it, as lme4's does
    frame.attrs["description"] = _codebook(key, entry)  # issue 15: the codebook travels with the data
    return frame
