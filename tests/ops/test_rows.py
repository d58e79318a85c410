"""``minidl.ops.rows``: its fast reductions agree with numpy's own (the max exactly, the sums to
rounding) on both sides of every size threshold, for each float dtype, NaN and inf included."""

from __future__ import annotations

import numpy as np
import pytest

from minidl.ops.rows import column_sums, row_max, row_sums

SHAPES = [(1, 1), (3, 1), (63, 10), (64, 10), (128, 1), (128, 2), (128, 10), (128, 32),
          (128, 33), (1000, 7), (5, 300)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_row_max_is_numpys_max_exactly(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if x.size > 4:
        x.flat[3], x.flat[-1] = np.nan, -np.inf  # NaN wins its row, as in numpy
    got = row_max(x)
    assert got.shape == (shape[0], 1) and got.dtype == x.dtype
    np.testing.assert_array_equal(got, x.max(axis=-1, keepdims=True))


def test_row_max_of_a_view_and_of_other_ranks():
    x = np.random.default_rng(1).standard_normal((200, 20))
    np.testing.assert_array_equal(row_max(x[::2, 3:13]), x[::2, 3:13].max(axis=1, keepdims=True))
    cube = x.reshape(10, 20, 20)
    np.testing.assert_array_equal(row_max(cube), cube.max(axis=-1, keepdims=True))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_row_and_column_sums_agree_with_numpy(shape, dtype):
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    exact = x.astype(np.float64)
    tolerance = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}[dtype]
    rows, columns = row_sums(x), column_sums(x)
    assert rows.shape == (shape[0], 1) and columns.shape == (shape[1],)
    np.testing.assert_allclose(rows, exact.sum(axis=1, keepdims=True), rtol=tolerance,
                               atol=tolerance * np.sqrt(shape[1]))
    np.testing.assert_allclose(columns, exact.sum(axis=0), rtol=tolerance,
                               atol=tolerance * np.sqrt(shape[0]))
    assert rows.dtype == x.dtype
    assert columns.dtype == (np.float32 if dtype == "float16" else x.dtype)  # widened sums


def test_row_sums_carry_inf_and_nan():
    x = np.array([[1.0, np.inf, 2.0], [np.nan, 0.0, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(row_sums(x)[:, 0], [np.inf, np.nan, 6.0])
