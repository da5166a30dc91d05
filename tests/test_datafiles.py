"""The one reader of users' data files (CSV and NPZ) that the dataset and time-series tasks share."""

from __future__ import annotations

import numpy as np
import pytest

from evo.tasks.datafiles import data_file_format, read_csv, read_npz
from evo.tasks.datasets import load_dataset_file


def write(path, text: str):
    path.write_text(text)
    return path


def test_csv_header_by_content_column_by_name_or_index(tmp_path):
    with_header = write(tmp_path / "h.csv", "a, b ,label\n1,2,cat\n\n3,4,dog\n")
    table = read_csv(with_header, "label", text_column=True)
    assert table.header == ("a", "b", "label") and table.column == 2
    np.testing.assert_array_equal(table.other_floats(), [[1.0, 2.0], [3.0, 4.0]])
    assert table.picked().tolist() == ["cat", "dog"]
    # By index: the header is recognised because a feature cell is not a number.
    assert read_csv(with_header, -1, text_column=True).header == ("a", "b", "label")
    np.testing.assert_array_equal(read_csv(with_header, 1, text_column=True).picked_floats(), [2.0, 4.0])
    # Without a header: text labels alone do not make the first row a header.
    plain = write(tmp_path / "p.csv", "1,2,cat\n3,4,dog\n")
    table = read_csv(plain, 2, text_column=True)
    assert table.header is None and len(table.rows) == 2
    # A numeric column (a series): any non-number in the first row marks a header.
    series = write(tmp_path / "s.csv", "value\n0.5\n1.5\n")
    np.testing.assert_array_equal(read_csv(series, None).picked_floats(), [0.5, 1.5])
    np.testing.assert_array_equal(read_csv(write(tmp_path / "n.csv", "0.5\n1.5\n"), None).picked_floats(), [0.5, 1.5])


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("", 0, "empty"),
        ("a,b\n", "a", "no data rows"),
        ("a,b\n1,2\n", "c", r"task.column = 'c': no such column"),
        ("1,2\n", 5, "out of range for 2 columns"),
        ("1,2\n3,4\n", None, "has 2 columns.*name the one"),
        ("1,2\n3\n", 0, "data row 2 has 1 columns, expected 2"),
        ("a,b\n1,x\n", 0, "non-numeric feature"),
        ("a,b\n1,x\n", 1, "no numeric value in column 1"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, text, column, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        table = read_csv(path, column)
        table.other_floats()
        table.picked_floats()


def test_npz_by_key_alternatives_and_no_pickle(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.arange(3))
    X, y = read_npz(tmp_path / "d.npz", "X", "y")
    assert X.shape == (3, 2) and y.tolist() == [0, 1, 2]
    (found,) = read_npz(tmp_path / "d.npz", ("series", "y"))
    assert found.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"no array named 'series' or 'z'; it holds \['X', 'y'\]"):
        read_npz(tmp_path / "d.npz", ("series", "z"))
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        read_npz(tmp_path / "objects.npz", "X")


def test_file_format_and_the_dataset_loader(tmp_path):
    with pytest.raises(ValueError, match="task.path = .*does not exist"):
        data_file_format(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"unsupported format '.txt'; allowed: .npz, .csv"):
        data_file_format(write(tmp_path / "d.txt", "1"))
    assert data_file_format(write(tmp_path / "D.CSV", "1")) == "csv"
    X, y = load_dataset_file(write(tmp_path / "d.csv", "f1,f2,label\n0.5,1,a\n2,3,b\n"), label_column="label")
    assert X.dtype == np.float64 and X.shape == (2, 2) and y.tolist() == ["a", "b"]
    np.savez(tmp_path / "d.npz", X=np.ones((2, 4), dtype=np.float32), y=np.array([0, 1]))
    X, y = load_dataset_file(tmp_path / "d.npz")
    assert X.dtype == np.float64 and y.tolist() == [0, 1]
