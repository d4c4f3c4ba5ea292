"""Bundled data sets: reading them and describing them.

The files live in the repository's ``datasets/`` folder, which is installed as the
``mlm.datasets`` package; ``datasets/manifest.json`` records for each file its source,
licence, grouping structure and the level order of its categorical columns (so that
reference categories are those of the original source, as in R).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from .errors import DataError

__all__ = ["load_dataset", "list_datasets"]


def _data_dir():
    """The installed ``mlm.datasets`` package, or ``datasets/`` beside a source checkout."""
    try:
        return resources.files("mlm.datasets")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "datasets"


@lru_cache(maxsize=1)
def _manifest() -> dict:
    return json.loads(_data_dir().joinpath("manifest.json").read_text("utf-8"))


def list_datasets() -> pd.DataFrame:
    """List the bundled data sets.

    Returns
    -------
    pandas.DataFrame
        One row per data set (index ``name``) with its title, number of rows,
        grouping structure and source.

    Examples
    --------
    >>> import mlm
    >>> "hsb" in mlm.list_datasets().index
    True
    """
    rows = []
    for name, entry in _manifest().items():
        groups = ", ".join(f"{k} ({v})" for k, v in entry.get("groups", {}).items())
        rows.append({"name": name, "title": entry.get("title", ""), "rows": entry.get("rows"),
                     "groups": groups, "source": entry.get("source", "")})
    return pd.DataFrame(rows).set_index("name")


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
    manifest = _manifest()
    if not isinstance(name, str) or name.lower() not in manifest:
        raise DataError(f"There is no bundled data set called {name!r}. "
                        f"Available: {', '.join(sorted(manifest))} (see mlm.list_datasets()).")
    entry = manifest[name.lower()]
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
    frame.attrs["name"] = name.lower()  # the summary's "Data:" line names it, as lme4's does
    return frame
