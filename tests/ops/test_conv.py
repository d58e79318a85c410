"""conv2d and conv1d against a loop over output positions written here, through check_op
(forward in the inputs' dtype, backward against finite differences in float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import make, seeds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidl as mdl
import minidl.nn.functional as F
import minidl.ops.conv
from minidl.errors import ShapeError


@pytest.fixture(params=["by kernel row", "full im2col", "input gradient row by row"])
def unfolding(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with both ways conv2d copies its windows: along the width with one product
    per kernel row (wide inputs), and with the kernel rows folded in (few channels); and
    with the input gradient computed in blocks of one output row (a block is 1 MB, more than
    any input here)."""
    monkeypatch.setattr(minidl.ops.conv, "FOLD_BELOW", 10 ** 9 if request.param == "full im2col"
                        else 0)
    if request.param == "input gradient row by row":
        monkeypatch.setattr(minidl.ops.conv, "BLOCK_BYTES", 1)
    return request.param


def naive_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                 stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
                 dilation: tuple[int, int] = (1, 1), groups: int = 1) -> np.ndarray:
    """The definition, one output position and one group at a time: out[n, o, i, j] =
    b[o] + sum over c, p, q of x_padded[n, c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow), dtype=np.result_type(x, w))
    for g in range(groups):
        xs, ws = xp[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(oh):
            for j in range(ow):
                patch = xs[:, :, i * sh: i * sh + dh * (kh - 1) + 1: dh,
                           j * sw: j * sw + dw * (kw - 1) + 1: dw]
                out[:, g * og:(g + 1) * og, i, j] = np.einsum("ncpq,ocpq->no", patch, ws)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def naive_conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1) -> np.ndarray:
    """out[n, o, i] = b[o] + sum over c, q of x_padded[n, c, i*s + q*d] * w[o, c, q]."""
    n, c, length = x.shape
    o, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    ol = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    og = o // groups
    out = np.zeros((n, o, ol), dtype=np.result_type(x, w))
    for g in range(groups):
        for i in range(ol):
            patch = xp[:, g * cg:(g + 1) * cg, i * stride: i * stride + dilation * (k - 1) + 1:
                       dilation]
            out[:, g * og:(g + 1) * og, i] = np.einsum("ncq,ocq->no", patch,
                                                      w[g * og:(g + 1) * og])
    if b is not None:
        out = out + b[None, :, None]
    return out


def test_naive_reference_on_a_hand_computed_case() -> None:
    """The oracle itself, against numbers worked out by hand."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    # x[i, j] - x[i+1, j+1] = -4 everywhere; padding 1 adds the border terms.
    np.testing.assert_array_equal(naive_conv2d(x, w), [[[[-4.0, -4.0], [-4.0, -4.0]]]])
    padded = naive_conv2d(x, w, padding=(1, 1))
    assert padded.shape == (1, 1, 4, 4)
    assert padded[0, 0, 0, 0] == -0.0 and padded[0, 0, 3, 3] == 8.0
    np.testing.assert_array_equal(naive_conv1d(np.array([[[1.0, 2.0, 4.0]]]),
                                  np.array([[[1.0, -1.0]]]), padding=1), [[[-1, -1, -2, 4]]])


# (N, C, H, W), (O, kh, kw), stride, padding, dilation, groups, bias
CONV2D_CASES = [
    ((2, 3, 5, 5), (4, 3, 3), (1, 1), (0, 0), (1, 1), 1, True),       # plain 3x3
    ((2, 4, 5, 7), (4, 3, 2), (2, 1), (1, 2), (1, 2), 2, True),       # all at once, non-square
    ((1, 2, 6, 5), (3, 2, 3), (1, 2), (1, 0), (2, 1), 1, False),      # batch 1, no bias
    ((1, 3, 5, 4), (3, 3, 3), (1, 1), (1, 1), (1, 1), 3, True),       # depthwise
    ((2, 2, 5, 6), (2, 1, 1), (2, 2), (0, 0), (1, 1), 1, True),       # 1x1, stride skips pixels
    ((2, 2, 4, 3), (3, 4, 3), (1, 1), (0, 0), (1, 1), 1, True),       # kernel = whole image
    ((3, 1, 6, 6), (2, 3, 3), (3, 3), (2, 1), (1, 1), 1, True),       # stride > 1 with padding
    ((1, 4, 6, 7), (4, 2, 3), (1, 2), (0, 1), (2, 1), 2, True),       # groups, column stride
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias",
                         CONV2D_CASES)
def test_conv2d(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int], groups: int, bias: bool,
                dtype: Any, unfolding: str) -> None:
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    o, kh, kw = w_shape
    x = make("normal", x_shape, dtype, rng)
    w = make("normal", (o, x_shape[1] // groups, kh, kw), dtype, rng)
    inputs = [x, w] + ([make("normal", (o,), dtype, rng)] if bias else [])

    def fn(*t: mdl.Tensor) -> mdl.Tensor:
        return F.conv2d(t[0], t[1], t[2] if bias else None, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)

    def ref(*a: np.ndarray) -> np.ndarray:
        return naive_conv2d(a[0], a[1], a[2] if bias else None, stride, padding, dilation,
                            groups)

    result = check_op(fn, ref, inputs)
    assert result.op == "Conv2d"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 2), groups=st.integers(1, 2), cg=st.integers(1, 2),
       og=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), kh=st.integers(1, 3),
       kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2),
       pw=st.integers(0, 2), dh=st.integers(1, 2), dw=st.integers(1, 2), seed=seeds)
def test_conv2d_random_geometry(n: int, groups: int, cg: int, og: int, h: int, w: int,
                                kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, dh: int,
                                dw: int, seed: int) -> None:
    """Any geometry whose kernel fits the padded input: float64, with bias, both ways of
    unfolding, the input gradient in one block and row by row."""
    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * cg, h, w))
    weight = rng.standard_normal((groups * og, cg, kh, kw))
    bias = rng.standard_normal(groups * og)
    geometry = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    module = minidl.ops.conv  # hypothesis runs this many times: no monkeypatch
    saved = module.FOLD_BELOW, module.BLOCK_BYTES
    for fold_below, block_bytes in ((0, saved[1]), (10 ** 9, 1)):
        module.FOLD_BELOW, module.BLOCK_BYTES = fold_below, block_bytes
        try:
            check_op(lambda *t: F.conv2d(*t, **geometry),
                     lambda a, b, c: naive_conv2d(a, b, c, **geometry), [x, weight, bias],
                     seed=seed)
        finally:
            module.FOLD_BELOW, module.BLOCK_BYTES = saved


def test_conv2d_stack_through_relu(unfolding: str) -> None:
    """Two convs with relu between: the first conv's channel-major output flows on."""
    rng = np.random.default_rng(7)
    x = make("normal", (2, 1, 7, 6), np.float32, rng)
    w1 = make("normal", (3, 1, 3, 2), np.float32, rng)
    w2 = make("normal", (2, 3, 2, 2), np.float32, rng)

    def ref(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return naive_conv2d(np.maximum(naive_conv2d(a, b, padding=(1, 0)), 0), c, stride=(2, 1))

    check_op(lambda a, b, c: F.conv2d(F.relu(F.conv2d(a, b, padding=(1, 0))), c, stride=(2, 1)),
             ref, [x, w1, w2])


def test_conv2d_float16_computes_close_to_float64() -> None:
    rng = np.random.default_rng(3)
    x, w = make("normal", (2, 2, 5, 5), np.float16, rng), make("normal", (3, 2, 3, 3),
                                                                np.float16, rng)
    result = check_op(lambda a, b: F.conv2d(a, b, padding=1),
                      lambda a, b: naive_conv2d(a, b, padding=(1, 1)), [x, w])
    assert result.out.dtype == np.float16


@pytest.mark.parametrize("padding, dilation", [("same", 1), ("same", (2, 1)), ("valid", 1)])
def test_conv2d_padding_by_name(padding: str, dilation: Any) -> None:
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((2, 2, 3, 5))
    out = F.conv2d(mdl.tensor(x), mdl.tensor(w), padding=padding, dilation=dilation)
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        assert out.shape == (1, 2, 6, 5)
        pad = (d[0], 2 * d[1])
    else:
        pad = (0, 0)
    np.testing.assert_allclose(out.data, naive_conv2d(x, w, padding=pad, dilation=d),
                               rtol=1e-12, atol=1e-12)


CONV1D_CASES = [  # (N, C, L), (O, k), stride, padding, dilation, groups, bias
    ((2, 3, 8), (4, 3), 1, 0, 1, 1, True),
    ((1, 4, 9), (6, 2), 2, 1, 2, 2, True),
    ((3, 2, 5), (2, 5), 1, 2, 1, 2, False),
    ((2, 1, 7), (3, 1), 3, 0, 1, 1, True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias",
                         CONV1D_CASES)
def test_conv1d(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int, padding: int,
                dilation: int, groups: int, bias: bool, dtype: Any, unfolding: str) -> None:
    rng = np.random.default_rng(sum(x_shape))
    o, k = w_shape
    inputs = [make("normal", x_shape, dtype, rng),
              make("normal", (o, x_shape[1] // groups, k), dtype, rng)]
    if bias:
        inputs.append(make("normal", (o,), dtype, rng))

    def fn(*t: mdl.Tensor) -> mdl.Tensor:
        return F.conv1d(t[0], t[1], t[2] if bias else None, stride, padding, dilation, groups)

    def ref(*a: np.ndarray) -> np.ndarray:
        return naive_conv1d(a[0], a[1], a[2] if bias else None, stride, padding, dilation,
                            groups)

    assert check_op(fn, ref, inputs).op == "Conv1d"


def test_conv2d_weight_gradient_sums_over_the_batch_under_a_batch_loss() -> None:
    """Through a batch loss, conv's weight gradient is the mean over examples (deferred),
    the same as absorbed, and m times that under sum: the strategies reach conv weights."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    w0 = rng.standard_normal((3, 1, 5, 5)).astype(np.float32)
    grads = {}
    for strategy in ("deferred", "absorbed", "sum"):
        w = mdl.tensor(w0, requires_grad=True)
        with mdl.normalization(strategy):
            F.cross_entropy(F.conv2d(mdl.tensor(x), w).reshape(4, 3), mdl.tensor(y)).backward()
        grads[strategy] = w.grad
    np.testing.assert_allclose(grads["deferred"], grads["absorbed"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads["sum"], 4 * grads["absorbed"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv2d(np.zeros((3, 5, 5)), np.zeros((1, 3, 3, 3))), ShapeError, "(N, C, H, W)"),
    (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((1, 3, 3))), ShapeError, "weight"),
    (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((1, 2, 3, 3))), ShapeError,
     "3 channels"),
    (lambda: F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2), ValueError,
     "divide"),
    (lambda: F.conv2d(np.zeros((1, 1, 2, 5)), np.zeros((1, 1, 3, 3))), ShapeError,
     "more padding"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0), ValueError,
     "stride"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=(1, 2, 3)),
     TypeError, "pair"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(3)), ShapeError,
     "bias"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5), dtype=int), np.zeros((1, 1, 3, 3))), TypeError,
     "floating"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 2, 2)), padding="same"),
     ValueError, "same"),
    (lambda: F.conv1d(np.zeros((1, 2, 3)), np.zeros((1, 2, 5))), ShapeError, "more padding"),
    (lambda: F.conv1d(np.zeros((2, 3)), np.zeros((1, 2, 5))), ShapeError, "(N, C, L)"),
])
def test_conv_errors_say_what_is_wrong(call: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)
