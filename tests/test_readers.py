"""Tests of mlm/readers.py: the files the ``mlm`` command reads.

Files are written in the test by pandas (CSV, Stata, Parquet, Excel) and pyreadstat (SPSS),
then read back: the frame must equal the one written, with value labels turned into
categories in the order of their codes (Stata's and SPSS's reference category).
"""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pandas as pd
import pytest

import mlm
from mlm.errors import DataError
from mlm.readers import read_data


@pytest.fixture()
def frame():
    rng = np.random.default_rng(3)
    return pd.DataFrame({"y": rng.normal(size=12).round(6), "x": np.arange(12, dtype=float),
                         "g": np.repeat(["a", "b", "c"], 4)})


def test_bundled_name():
    pd.testing.assert_frame_equal(read_data("sleepstudy"), mlm.load_dataset("sleepstudy"))
    assert read_data("HSB").shape == (7185, 11)


@pytest.mark.parametrize("name, kw", [("d.csv", {}), ("d.txt", {}), ("d.tsv", {"sep": "\t"}),
                                      ("d.csv.gz", {"compression": "gzip"})])
def test_csv_variants(tmp_path, frame, name, kw):
    frame.to_csv(tmp_path / name, index=False, **kw)
    pd.testing.assert_frame_equal(read_data(tmp_path / name), frame, check_dtype=False)


def test_csv_gz_really_compressed(tmp_path, frame):
    frame.to_csv(tmp_path / "d.csv.gz", index=False)
    with gzip.open(tmp_path / "d.csv.gz", "rt") as fh:
        assert fh.readline().startswith("y,x,g")


def test_european_csv(tmp_path, frame):
    """Semicolons between fields and decimal commas, as a spreadsheet in a European locale saves."""
    frame.to_csv(tmp_path / "eu.csv", index=False, sep=";", decimal=",")
    got = read_data(tmp_path / "eu.csv")
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert pd.api.types.is_float_dtype(got["y"])


def _labelled():
    # Codes deliberately not in alphabetical order of their labels: code 1 'zeta' is the
    # reference category in Stata and SPSS, so it must come first here too.
    return pd.DataFrame({"y": np.arange(6, dtype=float), "sex": np.array([1, 2, 1, 2, 2, 1], dtype="int32"),
                         "likert": np.array([1, 3, 5, 2, 4, 1], dtype="int32")})


LABELS = {"sex": {1: "zeta", 2: "alpha"}, "likert": {1: "disagree", 5: "agree"}}


def _check_labelled(got):
    assert isinstance(got["sex"].dtype, pd.CategoricalDtype)
    assert list(got["sex"].cat.categories) == ["zeta", "alpha"]
    assert list(got["sex"].astype(str)) == ["zeta", "alpha", "zeta", "alpha", "alpha", "zeta"]
    # Only the ends of the scale are labelled: the numbers stay.
    assert pd.api.types.is_numeric_dtype(got["likert"])
    assert list(got["likert"]) == [1, 3, 5, 2, 4, 1]


def test_stata_value_labels(tmp_path):
    _labelled().to_stata(tmp_path / "d.dta", write_index=False, value_labels=LABELS)
    with pytest.warns(UserWarning, match=r"column 'likert' has values without a value label \(2, 3, 4\)"):
        got = read_data(tmp_path / "d.dta")
    _check_labelled(got)
    assert got.attrs["value_labels"] == {"sex": {1: "zeta", 2: "alpha"}}


def test_spss_value_labels(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat", reason="pyreadstat (mlm[spss]) is not installed")
    pyreadstat.write_sav(_labelled(), str(tmp_path / "d.sav"), variable_value_labels=LABELS)
    with pytest.warns(UserWarning, match="column 'likert' has values without a value label"):
        got = read_data(tmp_path / "d.sav")
    _check_labelled(got)


def test_spss_missing_values_are_missing(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat", reason="pyreadstat (mlm[spss]) is not installed")
    d = pd.DataFrame({"y": [1.0, np.nan, 3.0], "g": [1.0, 2.0, 1.0]})
    pyreadstat.write_sav(d, str(tmp_path / "m.sav"))
    assert read_data(tmp_path / "m.sav")["y"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize("name, writer, package", [
    ("d.parquet", lambda f, p: f.to_parquet(p), "pyarrow"),
    ("d.xlsx", lambda f, p: f.to_excel(p, index=False), "openpyxl"),
])
def test_parquet_and_excel(tmp_path, frame, name, writer, package):
    pytest.importorskip(package, reason=f"{package} is not installed")
    writer(frame, tmp_path / name)
    pd.testing.assert_frame_equal(read_data(tmp_path / name), frame, check_dtype=False)


@pytest.mark.parametrize("name, package, extra", [("d.sav", "pyreadstat", "spss"),
                                                  ("d.parquet", "pyarrow", "parquet"),
                                                  ("d.xlsx", "openpyxl", "excel")])
def test_missing_optional_package(tmp_path, monkeypatch, name, package, extra):
    (tmp_path / name).write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, package, None)      # import now raises ImportError
    with pytest.raises(DataError, match=rf"needs the optional package {package}, which is not "
                                        rf"installed: pip install {package} \(mlm's extra \[{extra}\]"):
        read_data(tmp_path / name)


@pytest.mark.parametrize("name, content, message", [
    ("bad.dta", b"garbage", r"Cannot read '.*bad.dta' as a Stata file: "),
    ("bad.xlsx", b"PK\x03\x04junk", r"Cannot read '.*bad.xlsx' as an Excel file: "),
    ("empty.csv", b"", r"Cannot read '.*empty.csv' as a CSV file: No columns to parse"),
    ("header.csv", b"a,b\n", r"'.*header.csv' has no data rows"),
    ("old.xls", b"x", r"its ending '.xls' is not a format mlm reads. Save it as CSV"),
    ("noending", b"x", r"its ending '\(none\)' is not a format"),
])
def test_unreadable_files(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_data(tmp_path / name)


def test_folder_missing_file_unknown_name(tmp_path):
    with pytest.raises(DataError, match=r"is a folder, not a data file. Give a file inside it"):
        read_data(tmp_path)
    with pytest.raises(DataError, match=r"Cannot read '.*nope.csv': there is no such file"):
        read_data(tmp_path / "nope.csv")
    # (the list grows as data sets are added: egsingle sorts between chem97 and exam)
    with pytest.raises(DataError, match=r"'hsbb' is neither a file nor a bundled data set. Bundled: "
                                        r"(\w+, )*chem97, (\w+, )*exam, hsb"):
        read_data("hsbb")
