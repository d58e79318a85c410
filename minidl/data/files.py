"""Loading user data from CSV and ``.npz`` files into ``(X, y)`` arrays.

``X`` is always float64 of shape ``(m, n_features)``. ``y`` is int64 when every target value is
a whole number (class labels) and float64 otherwise (regression targets). Every problem is
reported as a :class:`DataError` whose message names the file, and the row and column when
they are known (both counted from 1, as a spreadsheet or text editor shows them).

NaN and infinities are refused (naming the first row that holds one) unless the caller
passes ``allow_nonfinite=True``: a NaN feature trains to NaN metrics without any error.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from minidl.errors import DataError
from minidl.npz import ArchiveError, read_npz

#: A CSV file is read into Python lists first: refuse one that cannot fit that way.
CSV_BYTES_PER_MEMORY = 16

PathLike = str | os.PathLike[str]


def _existing_file(path: PathLike) -> Path:
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "file not found"
        raise DataError(f"{file}: {what} (current directory: {Path.cwd()})")
    return file


def is_number(text: str) -> bool:
    """Whether a CSV cell reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _as_target(values: np.ndarray) -> np.ndarray:
    """int64 labels when all values are whole numbers, otherwise float64 regression targets."""
    values = np.asarray(values, dtype=np.float64)
    # Only below 2**53, where float64 holds every whole number and int64 cannot wrap.
    if (np.all(np.isfinite(values)) and np.all(np.abs(values) < 2.0**53)
            and np.all(values == np.round(values))):
        return values.astype(np.int64)
    return values


def load_csv(
    path: PathLike, *, target: int | str = -1, header: bool | None = None,
    allow_nonfinite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a numeric CSV file; column ``target`` becomes ``y``, the other columns ``X``.

    ``target`` is a column index (negative counts from the end) or, when the file has a header
    row, a column name. ``header=None`` treats the first row as a header when none of its
    cells is a number.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = path.write_text("a,b,label\\n0.5,1,0\\n2,3.5,1\\n")
    >>> X, y = load_csv(path, target="label"); X.shape, y.tolist()
    ((2, 2), [0, 1])
    """
    file = _existing_file(path)
    rows = _read_rows(file)
    if not rows:
        raise DataError(f"{file}: file is empty")

    first = rows[0][1]
    if header is None:
        header = not any(is_number(cell) for cell in first)
    names = [cell.strip() for cell in first] if header else None
    data_rows = rows[1:] if header else rows
    if not data_rows:
        raise DataError(f"{file}: file has a header row but no data rows")

    width = len(first)
    if width < 2:
        raise DataError(f"{file}: need at least 2 columns (features and target), found {width}")
    target_index = _target_index(file, target, names, width)

    values = np.empty((len(data_rows), width), dtype=np.float64)
    for i, (number, row) in enumerate(data_rows):
        if len(row) != width:
            raise DataError(f"{file}: row {number} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                column = f"column {j + 1}" + (f" ({names[j]!r})" if names else "")
                hint = " (pass header=True if row 1 is a header)" if number == 1 else ""
                raise DataError(
                    f"{file}: row {number}, {column}: {cell!r} is not a number{hint}"
                ) from None

    if not allow_nonfinite:
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            i, j = bad[0]
            column = f"column {j + 1}" + (f" ({names[j]!r})" if names else "")
            raise DataError(f"{file}: row {data_rows[i][0]}, {column}: {values[i, j]} is not "
                            "a finite number; fix the data, or set data.allow_nonfinite = "
                            "true to train on it anyway")
    y = _as_target(values[:, target_index])
    X = np.delete(values, target_index, axis=1)
    return X, y


def _read_rows(file: Path) -> list[tuple[int, list[str]]]:
    """Non-empty rows with their 1-based line numbers (so errors point at the line)."""
    from minidl.resources import available_memory  # here: resources imports minidl.data

    try:
        size = file.stat().st_size
        if size * CSV_BYTES_PER_MEMORY > available_memory():
            raise DataError(f"{file}: {size:,} bytes of CSV is too large to load in the memory "
                            "available; convert it to .npz (numpy.savez)")
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                return [(reader.line_num, row) for row in reader if row]
            except csv.Error as err:  # e.g. a field over csv's 128 KiB field limit
                raise DataError(f"{file}: line {reader.line_num}: {err}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at "
                        f"offset {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise DataError(f"{file}: cannot read it ({err.strerror or err})") from None


def _target_index(file: Path, target: int | str, names: list[str] | None, width: int) -> int:
    if isinstance(target, str):
        if names is None:
            raise DataError(
                f"{file}: target {target!r} is a column name, but the file has no header row"
            )
        if target not in names:
            raise DataError(
                f"{file}: no column named {target!r}; columns are: {', '.join(names)}"
            )
        return names.index(target)
    if not -width <= target < width:
        raise DataError(f"{file}: target column index {target} is out of range for {width} "
                        f"columns (valid: {-width}..{width - 1})")
    return target % width


def load_npz(
    path: PathLike, *, x_key: str = "X", y_key: str = "y", allow_nonfinite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``X`` and ``y`` arrays from a ``.npz`` archive written by ``np.savez``.

    ``X`` with more than two dimensions (e.g. images of shape ``(m, 8, 8)``) is flattened to
    ``(m, n_features)``; a 1-D ``X`` becomes a single feature column. ``y`` must be 1-D or
    ``(m, 1)``.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.npz"
    >>> np.savez(path, X=np.zeros((3, 2)), y=np.array([0, 1, 1]))
    >>> X, y = load_npz(path); X.shape, y.dtype
    ((3, 2), dtype('int64'))
    """
    file = _existing_file(path)
    try:
        # Sizes and headers checked before reading; never pickle (code in a data file).
        archive = read_npz(file)
    except ArchiveError as exc:
        raise DataError(str(exc)) from None
    X = _npz_array(file, archive, x_key)
    y = _npz_array(file, archive, y_key)

    if X.ndim == 0 or y.ndim == 0:
        raise DataError(f"{file}: {x_key!r} and {y_key!r} must be arrays, not scalars")
    if len(X) != len(y):
        raise DataError(f"{file}: {x_key!r} has {len(X)} rows but {y_key!r} has {len(y)}")
    if len(X) == 0:
        raise DataError(f"{file}: arrays are empty (0 samples)")
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise DataError(f"{file}: {y_key!r} must have shape (m,) or (m, 1), got {y.shape}")
    X = X.reshape(len(X), -1)
    if X.shape[1] == 0:
        raise DataError(f"{file}: {x_key!r} has shape {X.shape}: no features")
    if not allow_nonfinite:
        for key, array in ((x_key, X), (y_key, y.reshape(len(y), -1))):
            rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
            if len(rows):
                raise DataError(f"{file}: {key!r} row {rows[0]} (counted from 0) holds NaN or "
                                "inf; fix the data, or set data.allow_nonfinite = true to "
                                "train on it anyway")
    return X.astype(np.float64), _as_target(y.reshape(-1))


def _npz_array(file: Path, archive: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in archive:
        available = ", ".join(archive) or "none"
        raise DataError(f"{file}: no array named {key!r}; available keys: {available}")
    array = archive[key]
    kind = array.dtype.kind
    if kind not in "biuf":  # bool, signed/unsigned int, float
        raise DataError(f"{file}: array {key!r} is not numeric (dtype {array.dtype})")
    return array
