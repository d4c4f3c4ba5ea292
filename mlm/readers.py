"""Reading a data file (or a bundled data set) into a DataFrame, for the ``mlm`` command.

Supported: CSV (``.csv``, ``.csv.gz``, ``.txt``, ``.tsv``), Stata (``.dta``), SPSS
(``.sav``, ``.zsav``; optional package pyreadstat), Parquet (``.parquet``, ``.pq``;
optional package pyarrow) and Excel (``.xlsx``, ``.xlsm``; optional package openpyxl),
or the name of a bundled data set (:func:`mlm.list_datasets`).

Value labels of Stata and SPSS files become categories in the order of their codes, so
the lowest code is the reference category, as in Stata and SPSS. A column whose values
are only partly labelled (a scale labelled at its ends, say) keeps its numbers.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from mlm.data import _manifest, load_dataset
from mlm.errors import DataError

__all__ = ["read_data", "FORMATS"]

#: File endings and the format read for each.
FORMATS = {
    ".csv": "CSV", ".csv.gz": "CSV", ".txt": "CSV", ".tsv": "CSV", ".tsv.gz": "CSV",
    ".dta": "Stata", ".sav": "SPSS", ".zsav": "SPSS",
    ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "Excel", ".xlsm": "Excel",
}

# The optional package each format needs and the extra that installs it (pyproject.toml).
_OPTIONAL = {"SPSS": ("pyreadstat", "spss"), "Parquet": ("pyarrow", "parquet"),
             "Excel": ("openpyxl", "excel")}


def _ending(path: str) -> str:
    name = path.lower()
    for end in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(end):
            return end
    return Path(name).suffix


def _supported() -> str:
    return ("CSV (.csv, .csv.gz, .tsv), Stata (.dta), SPSS (.sav), Parquet (.parquet) or "
            "Excel (.xlsx)")


def _apply_labels(frame: pd.DataFrame, labels: dict, source: str) -> pd.DataFrame:
    """Turn fully labelled columns into categories ordered by code; keep partly labelled ones
    (with a warning).

    ``labels`` maps column -> {code: label}.
    """
    for column, mapping in labels.items():
        if column not in frame.columns or not mapping:
            continue
        values = frame[column]
        present = pd.unique(values.dropna())
        unlabelled = [v for v in present if v not in mapping]
        if unlabelled:
            shown = ", ".join(str(v) for v in sorted(unlabelled)[:5])
            warnings.warn(f"{source}: column {column!r} has values without a value label "
                          f"({shown}); it is kept as numbers and its labels are ignored.",
                          stacklevel=3)
            continue
        codes = sorted(present)
        # Two codes with the same label would merge two categories: keep the numbers.
        names = [str(mapping[c]) for c in codes]
        if len(set(names)) < len(names):
            warnings.warn(f"{source}: column {column!r} gives the same value label to several "
                          "codes; it is kept as numbers.", stacklevel=3)
            continue
        frame[column] = pd.Categorical(values.map(lambda v: mapping.get(v, v) if pd.notna(v) else v),
                                       categories=names)
        # Kept so that a labelled outcome can be turned back into its codes (mlm.cli).
        frame.attrs.setdefault("value_labels", {})[column] = {c: str(mapping[c]) for c in codes}
    return frame


def _read_csv(path: str) -> pd.DataFrame:
    sep = "\t" if _ending(path) in (".tsv", ".tsv.gz") else ","
    frame = pd.read_csv(path, sep=sep)
    # A CSV saved by a spreadsheet set to a European locale: ';' between fields and a
    # decimal comma.  Read as ',' it comes out as one column whose name holds the ';'.
    if frame.shape[1] == 1 and ";" in str(frame.columns[0]):
        frame = pd.read_csv(path, sep=";")
        text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
        if any(frame[c].dropna().astype(str).str.fullmatch(r"-?\d*,\d+").all()
               and frame[c].notna().any() for c in text):
            frame = pd.read_csv(path, sep=";", decimal=",")
    return frame, {}


def _read_stata(path: str) -> pd.DataFrame:
    with pd.io.stata.StataReader(path) as reader:
        frame = reader.read(convert_categoricals=False)
        sets = reader.value_labels()
        # Which label set each variable uses (Stata can share one set among variables).
        # pandas keeps this list private; fall back to "a set named like the variable".
        lbllist = getattr(reader, "_lbllist", None) or [None] * len(frame.columns)
    labels = {}
    for column, name in zip(frame.columns, lbllist):
        name = name or (column if column in sets else None)
        if name and name in sets:
            labels[column] = sets[name]
    return frame, labels


def _read_spss(path: str) -> pd.DataFrame:
    import pyreadstat

    # pyreadstat's own formats_as_category sorts labels alphabetically; apply them here
    # in code order instead.  User-defined missing values are read as missing.
    frame, meta = pyreadstat.read_sav(path, apply_value_formats=False)
    return frame, dict(meta.variable_value_labels)


def _read_excel(path: str) -> pd.DataFrame:
    import openpyxl  # noqa: F401  (pandas needs it; fail early with the right name)

    return pd.read_excel(path, sheet_name=0, engine="openpyxl"), {}


def _read_parquet(path: str) -> pd.DataFrame:
    import pyarrow  # noqa: F401

    return pd.read_parquet(path), {}


_READERS = {"CSV": _read_csv, "Stata": _read_stata, "SPSS": _read_spss, "Excel": _read_excel,
            "Parquet": _read_parquet}


def _looks_like_name(source: str) -> bool:
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", source) is not None


def read_data(source) -> pd.DataFrame:
    """Read a data file, or load a bundled data set by name.

    Parameters
    ----------
    source : str or path-like
        A file path ending in ``.csv``, ``.csv.gz``, ``.tsv``, ``.txt``, ``.dta``,
        ``.sav``, ``.zsav``, ``.parquet``, ``.pq``, ``.xlsx`` or ``.xlsm`` (the first
        sheet), or the name of a bundled data set such as ``"hsb"``. A plain name
        (letters, digits, ``_``) that is a bundled data set means the data set, even if
        a file of that name exists.

    Returns
    -------
    pandas.DataFrame
        Value labels of ``.dta`` and ``.sav`` files become categories ordered by their
        codes (the lowest code is the reference category); a column only partly
        labelled keeps its numbers, with a warning. ``attrs["value_labels"]`` maps each
        converted column to its ``{code: label}``.

    Raises
    ------
    DataError
        If the file does not exist, is a folder, has an ending not listed above, cannot
        be parsed, or needs an optional package that is not installed (the message says
        which ``pip install`` adds it).

    Examples
    --------
    >>> from mlm.readers import read_data
    >>> read_data("sleepstudy").shape
    (180, 3)
    """
    source = os.fspath(source)
    if _looks_like_name(source) and source.lower() in _manifest():
        return load_dataset(source)
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{source!r} is a folder, not a data file. Give a file inside it: "
                        f"{_supported()}.")
    if not path.exists():
        if _looks_like_name(source):
            raise DataError(f"{source!r} is neither a file nor a bundled data set. Bundled: "
                            f"{', '.join(sorted(_manifest()))} (mlm datasets lists them).")
        raise DataError(f"Cannot read {source!r}: there is no such file.")
    kind = FORMATS.get(_ending(source))
    if kind is None:
        raise DataError(f"Cannot read {source!r}: its ending {path.suffix or '(none)'!r} is not "
                        f"a format mlm reads. Save it as {_supported()}.")
    if kind in _OPTIONAL:
        package, extra = _OPTIONAL[kind]
        try:
            __import__(package)
        except ImportError:
            raise DataError(f"Reading {kind} files needs the optional package {package}, which is "
                            f"not installed: pip install {package} (mlm's extra [{extra}] installs "
                            "it).") from None
    try:
        frame, labels = _READERS[kind](source)
    except Exception as exc:  # noqa: BLE001
        # Whatever the parsing library raises on a damaged or mislabelled file (OSError,
        # ValueError, struct.error, zipfile.BadZipFile, pyreadstat's errors, ...) means
        # the same to the user: this file cannot be read as that format.
        detail = getattr(exc, "strerror", None) or next(iter(str(exc).strip().splitlines()), "")
        article = "an" if kind[0] in "AEIOU" else "a"
        raise DataError(f"Cannot read {source!r} as {article} {kind} file: "
                        f"{detail or type(exc).__name__}.") from None
    frame = _apply_labels(frame, labels, source)
    if frame.shape[0] == 0:
        raise DataError(f"{source!r} has no data rows.")
    return frame
