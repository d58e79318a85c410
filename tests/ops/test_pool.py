"""max_pool2d, avg_pool2d, adaptive_avg_pool2d and flatten against loops over output
positions written here, through check_op."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import make

import minidl as mdl
import minidl.nn.functional as F
from minidl.errors import ShapeError


def naive_pool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
               padding: tuple[int, int], kind: str, count_include_pad: bool = True
               ) -> np.ndarray:
    """Each output is max or mean of its window of the padded input (max pads with -inf;
    the mean divides by the window size, or by its unpadded elements)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    real = np.pad(np.ones((h, w)), ((ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            window = xp[:, :, rows, cols]
            if kind == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                count = kh * kw if count_include_pad else real[rows, cols].sum()
                out[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return out


def test_naive_reference_on_a_hand_computed_case() -> None:
    x = np.array([[[[1.0, 5.0, 2.0], [3.0, 4.0, 0.0]]]])
    np.testing.assert_array_equal(naive_pool(x, (2, 2), (1, 1), (0, 0), "max"), [[[[5, 5]]]])
    np.testing.assert_array_equal(naive_pool(x, (2, 2), (1, 1), (0, 0), "avg"),
                                  [[[[13 / 4, 11 / 4]]]])
    # padding 1, kernel 2, stride 2: the corner window holds one real element, 1.0
    assert naive_pool(x, (2, 2), (2, 2), (1, 1), "avg")[0, 0, 0, 0] == 0.25
    assert naive_pool(x, (2, 2), (2, 2), (1, 1), "avg", count_include_pad=False)[0, 0, 0, 0] == 1


# (N, C, H, W), kernel, stride (None: = kernel), padding
POOL_CASES = [
    ((2, 3, 4, 4), (2, 2), None, (0, 0)),        # the classic 2x2 / 2
    ((1, 2, 5, 7), (3, 2), (1, 2), (1, 1)),      # overlapping rows, non-square, batch 1
    ((2, 1, 6, 5), (3, 3), (2, 2), (1, 0)),      # overlapping windows, padding rows only
    ((1, 2, 5, 5), (2, 2), (3, 3), (0, 0)),      # stride > kernel: some pixels unused
    ((2, 2, 3, 4), (3, 4), (1, 1), (0, 0)),      # one window covers the image
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
def test_max_pool2d(shape: tuple[int, ...], kernel: tuple[int, int], stride: Any,
                    padding: tuple[int, int], dtype: Any) -> None:
    x = make("distinct", shape, dtype, np.random.default_rng(sum(shape)))  # no ties
    result = check_op(lambda t: F.max_pool2d(t, kernel, stride, padding),
                      lambda a: naive_pool(a, kernel, stride or kernel, padding, "max"), [x])
    assert result.op == "MaxPool2d"


def test_max_pool2d_gradient_goes_to_one_element_per_window() -> None:
    x = mdl.tensor(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])  # the first tie


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
def test_avg_pool2d(shape: tuple[int, ...], kernel: tuple[int, int], stride: Any,
                    padding: tuple[int, int], dtype: Any, count_include_pad: bool) -> None:
    x = make("normal", shape, dtype, np.random.default_rng(sum(shape)))
    result = check_op(lambda t: F.avg_pool2d(t, kernel, stride, padding, count_include_pad),
                      lambda a: naive_pool(a, kernel, stride or kernel, padding, "avg",
                                           count_include_pad), [x])
    assert result.op == "AvgPool2d"


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 7, 3)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_adaptive_avg_pool2d_to_one(shape: tuple[int, ...], dtype: Any) -> None:
    x = make("normal", shape, dtype, np.random.default_rng(1))
    ref = lambda a: a.sum(axis=(2, 3), keepdims=True) / (a.shape[2] * a.shape[3])  # noqa: E731
    for size in (1, (1, 1)):
        assert check_op(lambda t: F.adaptive_avg_pool2d(t, size), ref, [x]).op == \
            "GlobalAvgPool2d"


@pytest.mark.parametrize("shape, start, end, expected", [
    ((2, 3, 4, 5), 1, -1, (2, 60)),
    ((2, 3, 4, 5), 0, -1, (120,)),
    ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
    ((2, 3, 4, 5), -2, -1, (2, 3, 20)),
    ((2, 3), 1, 1, (2, 3)),
    ((4,), 0, 0, (4,)),
    ((2, 0, 3), 1, -1, (2, 0)),
])
def test_flatten(shape: tuple[int, ...], start: int, end: int,
                 expected: tuple[int, ...]) -> None:
    x = make("normal", shape, np.float32, np.random.default_rng(2))
    result = check_op(lambda t: F.flatten(t, start, end), lambda a: a.reshape(expected), [x])
    assert result.out.shape == expected


def test_pooling_of_the_rows_first_output_of_conv2d() -> None:
    """conv2d returns a transposed view of (H, N, W, C) memory; pooling and flatten take it
    as any array."""
    rng = np.random.default_rng(4)
    x = make("normal", (2, 1, 6, 6), np.float64, rng)
    w = make("normal", (3, 1, 3, 3), np.float64, rng)
    out = F.flatten(F.max_pool2d(F.conv2d(mdl.tensor(x), mdl.tensor(w), padding=1), 2))
    conv = np.zeros((2, 3, 6, 6))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(6):
        for j in range(6):
            conv[:, :, i, j] = np.einsum("ncpq,ocpq->no", xp[:, :, i:i + 3, j:j + 3], w)
    np.testing.assert_allclose(out.data, naive_pool(conv, (2, 2), (2, 2), (0, 0), "max")
                               .reshape(2, -1), rtol=1e-12)


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.max_pool2d(np.zeros((3, 4, 4)), 2), ShapeError, "(N, C, H, W)"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 3, padding=2), ValueError, "half"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 2, 2)), 3), ShapeError, "more padding"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4)), 0), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4), dtype=np.int64), 2), TypeError, "floating"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 1, 4, 4)), 2), NotImplementedError,
     "output_size 1"),
    (lambda: F.flatten(np.zeros((2, 3)), 2), ValueError, "start_dim"),
    (lambda: F.flatten(np.zeros((2, 3, 4)), 2, 1), ValueError, "in order"),
])
def test_pool_errors_say_what_is_wrong(call: Any, error: type, words: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
