"""Tests for loading user data files with minidl.data.files."""

import doctest
import os

import numpy as np
import pytest

import minidl.data.files as files_module
from minidl.errors import DataError
from minidl.data.files import load_csv, load_npz


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- load_csv: happy paths -------------------------------------------------------------------


def test_csv_without_header_last_column_is_target(tmp_path):
    path = write(tmp_path, "d.csv", "1,2,0\n3.5,4,1\n5,6e-1,2\n")
    X, y = load_csv(path)
    assert X.dtype == np.float64 and X.shape == (3, 2)
    np.testing.assert_array_equal(X, [[1, 2], [3.5, 4], [5, 0.6]])
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]


def test_csv_header_autodetected_and_target_by_name(tmp_path):
    path = write(tmp_path, "d.csv", "label, a ,b\n1,0.5,2\n0,1.5,3\n")
    X, y = load_csv(path, target="label")
    np.testing.assert_array_equal(X, [[0.5, 2], [1.5, 3]])
    assert y.tolist() == [1, 0]
    # Names are matched after stripping surrounding spaces.
    X, y = load_csv(path, target="a")
    assert y.dtype == np.float64 and y.tolist() == [0.5, 1.5]


def test_csv_target_by_index(tmp_path):
    path = write(tmp_path, "d.csv", "7,1,2\n8,3,4\n")
    X, y = load_csv(path, target=0)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y.tolist() == [7, 8]
    X, y = load_csv(path, target=-2)
    np.testing.assert_array_equal(X, [[7, 2], [8, 4]])


def test_csv_integral_floats_become_int_labels_and_others_regression(tmp_path):
    labels = write(tmp_path, "c.csv", "0.1,1.0\n0.2,-2.0\n")
    assert load_csv(labels)[1].dtype == np.int64
    assert load_csv(labels)[1].tolist() == [1, -2]
    targets = write(tmp_path, "r.csv", "0.1,1.5\n0.2,2.0\n")
    y = load_csv(targets)[1]
    assert y.dtype == np.float64 and y.tolist() == [1.5, 2.0]


def test_csv_explicit_header_flags(tmp_path):
    path = write(tmp_path, "d.csv", "1,2,3\n4,5,6\n")
    X, y = load_csv(path, header=True)  # numeric first row is skipped when told so
    assert X.shape == (1, 2) and y.tolist() == [6]
    X, y = load_csv(path, header=False)
    assert X.shape == (2, 2)


def test_csv_blank_lines_bom_and_crlf(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\r\n1,0\r\n\r\n2,1\r\n\r\n")
    X, y = load_csv(path, target="y")
    np.testing.assert_array_equal(X, [[1], [2]])
    assert y.tolist() == [0, 1]


def test_csv_quoted_cells(tmp_path):
    path = write(tmp_path, "d.csv", '"f 1","f,2",t\n"1","2",0\n')
    X, y = load_csv(path, target="t")
    np.testing.assert_array_equal(X, [[1, 2]])


def test_csv_accepts_path_string(tmp_path):
    path = write(tmp_path, "d.csv", "1,0\n")
    X, _ = load_csv(str(path))
    assert X.shape == (1, 1)


# --- load_csv: errors ------------------------------------------------------------------------


def test_csv_missing_file_names_path_and_cwd(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError) as info:
        load_csv(missing)
    message = str(info.value)
    assert str(missing) in message and "file not found" in message
    assert f"current directory: {os.getcwd()}" in message


def test_csv_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_csv_empty_file(tmp_path, text):
    path = write(tmp_path, "e.csv", text)
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: file is empty"


def test_csv_header_only(tmp_path):
    path = write(tmp_path, "h.csv", "a,b\n")
    with pytest.raises(DataError, match="header row but no data rows"):
        load_csv(path)


def test_csv_ragged_row(tmp_path):
    lines = ["a,b,c,d"] + ["1,2,3,4"] * 5 + ["1,2,3"]
    path = write(tmp_path, "r.csv", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: row 7 has 3 columns, expected 4"


def test_csv_non_numeric_cell_with_header(tmp_path):
    path = write(tmp_path, "n.csv", "a,b,t\n1,2,0\n3,4,1\n5,6,0\n7,abc,1\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: row 5, column 2 ('b'): 'abc' is not a number"


def test_csv_non_numeric_cell_without_header(tmp_path):
    path = write(tmp_path, "n.csv", "1,2,0\n3,,1\n")
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: row 2, column 2: '' is not a number"


def test_csv_mixed_first_row_is_data_with_hint(tmp_path):
    # A first row with some numbers is treated as data, so a typo there is reported, not skipped.
    path = write(tmp_path, "n.csv", "1,x,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"row 1, column 2: 'x' is not a number \(pass header=True"):
        load_csv(path)


def test_csv_unknown_target_name_lists_columns(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,label\n1,2,0\n")
    with pytest.raises(DataError) as info:
        load_csv(path, target="class")
    assert str(info.value) == f"{path}: no column named 'class'; columns are: a, b, label"


def test_csv_target_name_without_header(tmp_path):
    path = write(tmp_path, "d.csv", "1,2,0\n")
    with pytest.raises(DataError, match="'label' is a column name, but the file has no header"):
        load_csv(path, target="label")


def test_csv_target_index_out_of_range(tmp_path):
    path = write(tmp_path, "d.csv", "1,2,0\n")
    with pytest.raises(DataError, match=r"index 3 is out of range for 3 columns \(valid: -3..2\)"):
        load_csv(path, target=3)


def test_csv_single_column(tmp_path):
    path = write(tmp_path, "d.csv", "1\n2\n")
    with pytest.raises(DataError, match="need at least 2 columns"):
        load_csv(path)


# --- load_npz ----------------------------------------------------------------------------------


def test_npz_roundtrip(tmp_path):
    path = tmp_path / "d.npz"
    X_in = np.arange(12, dtype=np.int32).reshape(4, 3)
    np.savez(path, X=X_in, y=np.array([0, 1, 1, 0], dtype=np.uint8))
    X, y = load_npz(path)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, X_in)
    assert y.tolist() == [0, 1, 1, 0]


def test_npz_custom_keys_regression_and_reshaping(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.ones((5, 8, 8)), target=np.linspace(0, 1, 5).reshape(5, 1))
    X, y = load_npz(path, x_key="images", y_key="target")
    assert X.shape == (5, 64) and y.shape == (5,)
    assert y.dtype == np.float64


def test_npz_one_dimensional_x_is_one_feature(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([1.0, 2.0]), y=np.array([True, False]))
    X, y = load_npz(path)
    assert X.shape == (2, 1) and y.dtype == np.int64 and y.tolist() == [1, 0]


def test_npz_missing_file(tmp_path):
    missing = tmp_path / "gone.npz"
    with pytest.raises(DataError) as info:
        load_npz(missing)
    assert str(missing) in str(info.value) and "current directory" in str(info.value)


def test_npz_missing_key_lists_available(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(DataError) as info:
        load_npz(path)
    assert str(info.value) == f"{path}: no array named 'X'; available keys: features, y"


def test_npz_mismatched_lengths(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError) as info:
        load_npz(path)
    assert str(info.value) == f"{path}: 'X' has 3 rows but 'y' has 2"


@pytest.mark.parametrize(
    "X, y, fragment",
    [
        (np.array([["a", "b"]]), np.array([0]), "array 'X' is not numeric (dtype <U1)"),
        (np.zeros((1, 2)), np.array([1 + 2j]), "array 'y' is not numeric (dtype complex128)"),
        (np.array([[1, None]], dtype=object), np.array([0]), "array 'X' is not numeric (object"),
    ],
)
def test_npz_non_numeric_arrays(tmp_path, X, y, fragment):
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    with pytest.raises(DataError) as info:
        load_npz(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_npz_bad_y_shape(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((2, 2)), y=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"'y' must have shape \(m,\) or \(m, 1\), got \(2, 3\)"):
        load_npz(path)


def test_npz_not_an_archive(tmp_path):
    garbage = write(tmp_path, "bad.npz", "not a zip file")
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_npz(garbage)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="expected a .npz archive"):
        load_npz(single)


def test_docstring_examples_run():
    result = doctest.testmod(files_module)
    assert result.attempted > 0 and result.failed == 0
