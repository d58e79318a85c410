"""Convolutions (cross-correlations, as in torch): ``conv2d`` and ``conv1d``.

How it is computed, and why (the layout decides the speed):

* Activations are kept in *rows-first* memory, (H, N, W, C), and shown as (N, C, H, W)
  views: every (row, image, column) position is one matrix row, every channel a column,
  so each product below is tall and narrow, the shape that measured fastest here
  (OpenBLAS, against the same products laid out wide).
* Forward: the kw-wide windows along the width are copied once (``sliding_window_view``,
  (Hp, N, OW, kw, C): kw times the input, not kh*kw times as full im2col), and the output
  is the sum over the kh kernel rows p of (rows p.. of those windows) @ (kernel row p).
  That is im2col split by kernel row: the same arithmetic as one big product, with a
  kh-times smaller copy. With few channels (a row of fewer than ``FOLD_BELOW`` columns,
  e.g. a first layer on grey images) the kernel rows are folded into the copy as well:
  full im2col, one product. That copy is made transposed, (kh*kw*C, OH*N*OW), as kh*kw
  shifted copies of the input (long contiguous runs, where the untransposed copy writes
  runs of kw numbers).
* Weight gradient: the same windows, transposed, times the output gradient, per kernel row
  (folded: one product of the transposed copy).
* Input gradient: for stride 1 along the width, a transposed convolution along the width
  (windows of the zero-padded output gradient times the flipped kernels, one product per
  block of output rows, ``BLOCK_BYTES`` of windows each) whose kh rows are added back at
  their row offsets; otherwise the general col2im: one product, then a scatter-add per
  kernel offset. No Python loop runs over the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minidl.dtypes import accumulator
from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.ops.windows import Geometry, as_pair
from minidl.tensor import Function, Tensor


def _grouped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, g, K) @ (g, K, J) per group -> (M, g*J).

    One 2-D product per group: numpy runs a stacked matmul of these strided operands
    without BLAS, many times slower."""
    if a.shape[1] == 1:
        return a[:, 0, :] @ b[0]
    return np.concatenate([a[:, i, :] @ b[i] for i in range(a.shape[1])], axis=1)


def _grouped_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, g, K) and (M, g, J) -> (g, K, J): a.T @ b per group, summed over the M rows."""
    return np.stack([a[:, i, :].T @ b[:, i, :] for i in range(a.shape[1])])


#: Below this many columns per kernel row (kw * C/groups), the kernel rows are folded into
#: the one copy too (full im2col): a product with so short an inner dimension runs far
#: below BLAS speed, and the copy of so few channels is cheap.
FOLD_BELOW = 32


#: Size of the blocks the input gradient is computed in: small enough that their
#: temporaries come back from the allocator warm, instead of as fresh pages each call.
BLOCK_BYTES = 1 << 20


def _unfold(rows: np.ndarray, geometry: Geometry, out_size: tuple[int, int], groups: int,
            dtype: np.dtype) -> np.ndarray:
    """The one copy of the kw-wide windows of the padded (Hp, N, Wp, C) input, along the
    width: (Hp, N*OW, g, kw*Cg)."""
    (_, kw), (_, sw), (_, dw) = geometry.kernel, geometry.stride, geometry.dilation
    (_, ow), n, group_channels = out_size, rows.shape[1], rows.shape[3] // groups
    view = sliding_window_view(rows, dw * (kw - 1) + 1, axis=2)[:, :, ::sw][:, :, :ow]
    view = view[..., ::dw].reshape(*view.shape[:3], groups, group_channels, kw)
    strips = np.ascontiguousarray(view.transpose(0, 1, 2, 3, 5, 4), dtype=dtype)
    return strips.reshape(strips.shape[0], n * ow, groups, -1)


def _unfold_transposed(rows: np.ndarray, geometry: Geometry, out_size: tuple[int, int],
                       groups: int, dtype: np.dtype) -> np.ndarray:
    """Full im2col of the padded (Hp, N, Wp, C) input, transposed: (g, kh*kw*Cg, OH*N*OW).

    Built as kh*kw shifted copies of the input, each a long run of contiguous memory; the
    untransposed (OH*N*OW, kh*kw*Cg) copy writes runs of kw numbers and measured 3-4x
    slower for a grey first layer."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    (oh, ow), n, channels = out_size, rows.shape[1], rows.shape[3]
    cols = np.empty((groups, kh, kw, channels // groups, oh, n, ow), dtype=dtype)
    for p in range(kh):
        for q in range(kw):
            shifted = rows[p * dh: p * dh + sh * (oh - 1) + 1: sh, :,
                           q * dw: q * dw + sw * (ow - 1) + 1: sw]  # (OH, N, OW, C)
            cols[:, p, q] = shifted.transpose(3, 0, 1, 2).reshape(groups, -1, oh, n, ow)
    return cols.reshape(groups, kh * kw * (channels // groups), oh * n * ow)


def _row_slices(geometry: Geometry, oh: int) -> list[slice]:
    """Which rows of the unfolded input each kernel row reads."""
    (kh, _), (sh, _), (dh, _) = geometry.kernel, geometry.stride, geometry.dilation
    return [slice(p * dh, p * dh + sh * (oh - 1) + 1, sh) for p in range(kh)]


class Conv2d(Function):
    """(N, C, H, W) images cross-correlated with (O, C/groups, kh, kw) kernels, plus bias."""

    saved_inputs = (0, 1)  # the weight; x through the windows it unfolds
    saves_output = False

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                geometry: Geometry, groups: int) -> np.ndarray:
        n, channels, height, width = x.shape
        out_channels, group_channels, kh, kw = weight.shape
        oh, ow = geometry.output_size(height, width, "conv2d")
        ph, pw = geometry.padding
        dtype = np.result_type(x, weight)
        work = accumulator(dtype)  # float16 multiplies in float32, as torch's CPU conv does
        rows = x.transpose(2, 0, 3, 1)  # (H, N, W, C): free when x came from a conv
        if ph or pw:
            rows = np.pad(rows, ((ph, ph), (0, 0), (pw, pw), (0, 0)))
        fold = kw * group_channels < FOLD_BELOW
        kernels = weight.astype(work, copy=False).reshape(
            groups, out_channels // groups, group_channels, kh, kw)
        slices = _row_slices(geometry, oh)
        if fold:  # all kernel rows as one (kh*kw*Cg, O/g) matrix per group
            strips = _unfold_transposed(rows, geometry, (oh, ow), groups, work)
            kernels = kernels.transpose(0, 3, 4, 2, 1).reshape(groups, strips.shape[1], -1)
            out = np.concatenate([strips[i].T @ kernels[i] for i in range(groups)], axis=1)
        else:  # kernel row p of group g as a (kw*Cg, O/g) matrix, (kh, g, kw*Cg, O/g)
            strips = _unfold(rows, geometry, (oh, ow), groups, work)
            kernels = kernels.transpose(3, 0, 4, 2, 1).reshape(
                kh, groups, -1, out_channels // groups)
            out = _grouped(strips[slices[0]].reshape(-1, *strips.shape[2:]), kernels[0])
            for rows_p, kernel_p in zip(slices[1:], kernels[1:]):
                out += _grouped(strips[rows_p].reshape(-1, *strips.shape[2:]), kernel_p)
        if bias is not None:
            out += bias.astype(work, copy=False)
        self.geometry, self.groups, self.x_shape = geometry, groups, x.shape
        self.weight, self.has_bias, self.work = weight, bias is not None, work
        self.strips = strips if self.needs_input_grad[1] else None  # only dW reads them
        self.fold, self.slices = fold, slices
        # (OH*N*OW, O) rows-first -> an (N, O, OH, OW) view
        return out.astype(dtype, copy=False).reshape(oh, n, ow, out_channels).transpose(
            1, 3, 0, 2)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs_x, needs_w = self.needs_input_grad[:2]
        n, out_channels, oh, ow = grad.shape
        work = self.work
        # (OH*N*OW, O): free when grad kept the forward's rows-first memory
        g = np.ascontiguousarray(grad.transpose(2, 0, 3, 1), dtype=work).reshape(-1, out_channels)
        grad_x = grad_w = grad_b = None
        if needs_w:
            grad_w = self._weight_grad(g)
        if self.has_bias and self.needs_input_grad[2]:
            grad_b = np.ones(g.shape[0], dtype=work) @ g  # column sums, as one BLAS gemv
        if needs_x:
            if self.geometry.stride[1] == 1:
                padded = self._input_grad_transposed(g.reshape(oh, n, ow, out_channels))
            else:
                padded = self._input_grad_scattered(g.reshape(oh, n, ow, out_channels))
            (ph, pw), hp, wp = self.geometry.padding, padded.shape[0], padded.shape[2]
            grad_x = padded[ph: hp - ph, :, pw: wp - pw].transpose(1, 3, 0, 2)
        if self.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w

    def _weight_grad(self, g: np.ndarray) -> np.ndarray:
        out_channels, group_channels, kh, kw = self.weight.shape
        groups, strips = self.groups, self.strips
        by_group = g.reshape(-1, groups, out_channels // groups)
        if self.fold:  # (g, kh*kw*Cg, M) @ (M, O/g) per group
            stacked = np.stack([strips[i] @ by_group[:, i, :] for i in range(groups)])
            stacked = stacked.reshape(groups, kh, kw, group_channels, -1)
        else:  # (kh, g, kw*Cg, O/g)
            rows = []
            for rows_p in self.slices:
                x_rows = strips[rows_p].reshape(-1, *strips.shape[2:])  # (M, g, K)
                rows.append(_grouped_outer(x_rows, by_group))  # (g, K, O/g)
            stacked = np.stack(rows).reshape(kh, groups, kw, group_channels, -1)
            stacked = stacked.transpose(1, 0, 2, 3, 4)
        # (g, kh, kw, Cg, O/g) -> (O, Cg, kh, kw)
        return stacked.transpose(0, 4, 3, 1, 2).reshape(self.weight.shape)

    def _input_grad_transposed(self, g: np.ndarray) -> np.ndarray:
        """Stride 1 along the width: each padded-input row is a 1-D transposed convolution
        of output-gradient rows; kernel row p adds it at row offset p*dh (one product per
        block of rows)."""
        out_channels, group_channels, kh, kw = self.weight.shape
        groups, (oh, n, ow, _) = self.groups, g.shape
        (dh, dw), (sh, _) = self.geometry.dilation, self.geometry.stride
        span = dw * (kw - 1)
        wp = ow + span
        # flipped kernels, (g, kw*O/g, kh*Cg): window element j meets kernel column kw-1-j
        flipped = self.weight.astype(self.work, copy=False)[..., ::-1].reshape(
            groups, out_channels // groups, group_channels, kh, kw).transpose(0, 4, 1, 3, 2)
        flipped = flipped.reshape(groups, kw * (out_channels // groups), kh * group_channels)
        hp = self.x_shape[2] + 2 * self.geometry.padding[0]
        padded = np.zeros((hp, n, wp, groups * group_channels), dtype=self.work)
        # Blocks of output rows whose windows take about BLOCK_BYTES: one copy of all of
        # them (10 MB for the benchmark's second layer) measured 2.5x slower, most of it
        # the kernel handing fresh pages to each new large array.
        block = max(1, BLOCK_BYTES // (n * wp * kw * out_channels * g.itemsize))
        padded_g = np.zeros((min(block, oh), n, ow + 2 * span, out_channels), dtype=g.dtype)
        for start in range(0, oh, block):
            size = min(block, oh - start)
            padded_g[:size, :, span: span + ow] = g[start: start + size]
            view = sliding_window_view(padded_g[:size], span + 1, axis=2)[..., ::dw]
            view = view.reshape(size, n, wp, groups, out_channels // groups, kw)
            cols = np.ascontiguousarray(view.transpose(0, 1, 2, 3, 5, 4)).reshape(
                size * n * wp, groups, kw * (out_channels // groups))
            rows = _grouped(cols, flipped).reshape(size, n, wp, groups, kh, group_channels)
            for p in range(kh):
                first = p * dh + start * sh
                padded[first: first + sh * (size - 1) + 1: sh] += rows[:, :, :, :, p].reshape(
                    size, n, wp, -1)
        return padded

    def _input_grad_scattered(self, g: np.ndarray) -> np.ndarray:
        """Any stride: every window element's gradient in one product, then added back
        where it came from, one strided add per kernel offset (col2im)."""
        out_channels, group_channels, kh, kw = self.weight.shape
        groups, (oh, n, ow, _) = self.groups, g.shape
        (dh, dw), (sh, sw) = self.geometry.dilation, self.geometry.stride
        kernels = self.weight.astype(self.work, copy=False).reshape(
            groups, out_channels // groups, group_channels * kh * kw)
        cols = _grouped(g.reshape(-1, groups, out_channels // groups), kernels).reshape(
            oh, n, ow, groups, group_channels, kh, kw)
        (ph, pw), height, width = self.geometry.padding, *self.x_shape[2:]
        padded = np.zeros((height + 2 * ph, n, width + 2 * pw, groups * group_channels),
                          dtype=self.work)
        for p in range(kh):
            rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
            for q in range(kw):
                columns = slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)
                padded[rows, :, columns] += cols[..., p, q].reshape(oh, n, ow, -1)
        return padded


class Conv1d(Conv2d):
    """(N, C, L) sequences: ``Conv2d`` on (N, C, 1, L) images with (O, C/groups, 1, k) kernels."""

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                geometry: Geometry, groups: int) -> np.ndarray:
        out = super().forward(x[:, :, None, :], weight[:, :, None, :], bias, geometry=geometry,
                              groups=groups)
        return out[:, :, 0, :]

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grads = super().backward(grad[:, :, None, :])
        # x and weight lose the height axis of 1 they gained; the bias is (O,) already.
        return tuple(g[:, :, 0, :] if g is not None and i < 2 else g
                     for i, g in enumerate(grads))


# ===================================== functions ========================================

def _padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int],
             stride: tuple[int, int], op: str) -> tuple[int, int]:
    """``padding`` as a pair; "valid" is no padding, "same" keeps the size (stride 1)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        spans = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if stride != (1, 1) or any(span % 2 for span in spans):
            raise InvalidValueError(f"{op}: padding='same' needs stride 1 and an odd kernel "
                                    f"span (dilation x (kernel - 1) even), got kernel {kernel}, "
                                    f"dilation {dilation}, stride {stride}; pass the padding as "
                                    "numbers")
        return spans[0] // 2, spans[1] // 2
    if isinstance(padding, str):
        raise InvalidValueError(f"{op}: padding must be a number, a pair, 'valid' or 'same', "
                                f"got {padding!r}")
    return as_pair(padding, "padding", op, 0)


def _check_conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, groups: Any,
                layout: str) -> None:
    dims = len(layout)
    if x.ndim != dims:
        raise ShapeError(f"{op}: input must have shape ({', '.join(layout)}), got {x.shape}; "
                         f"add a batch axis for a single example, e.g. x.reshape(1, *x.shape)")
    if weight.ndim != dims:
        raise ShapeError(f"{op}: weight must have shape (out_channels, in_channels / groups, "
                         f"{'kh, kw' if dims == 4 else 'k'}), got {weight.shape}")
    if x.dtype.kind != "f" or weight.dtype.kind != "f":
        raise InvalidTypeError(f"{op}: input and weight must be floating point, got {x.dtype} and "
                               f"{weight.dtype}; convert with x.astype(np.float32)")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise InvalidValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    channels, out_channels = x.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise InvalidValueError(f"{op}: groups={groups} must divide both the input channels "
                                f"({channels}) and the output channels ({out_channels})")
    if weight.shape[1] * groups != channels:
        raise ShapeError(f"{op}: input has {channels} channels but the weight {weight.shape} "
                         f"expects {weight.shape[1]} x groups {groups} = "
                         f"{weight.shape[1] * groups}")
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), one per output "
                         f"channel, got {bias.shape}")


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) input with (O, C/groups, kh, kw) weight, as
    ``torch.nn.functional.conv2d``; gives (N, O, OH, OW).

    ``stride``, ``padding`` (zeros; or "valid", "same") and ``dilation`` are an int or a
    (rows, cols) pair; ``groups`` splits the channels into independent convolutions.

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor(np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> mdl.nn.functional.conv2d(x, mdl.tensor(np.ones((1, 1, 2, 2), dtype=np.float32)), stride=2)
    tensor([[[[10., 18.],
              [42., 50.]]]])
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_conv("conv2d", x, weight, bias, groups, "NCHW")
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    stride = as_pair(stride, "stride", "conv2d", 1)
    dilation = as_pair(dilation, "dilation", "conv2d", 1)
    geometry = Geometry(kernel, stride, _padding(padding, kernel, dilation, stride, "conv2d"),
                        dilation)
    geometry.output_size(x.shape[2], x.shape[3], "conv2d")  # a clear error before any work
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*inputs, geometry=geometry, groups=int(groups))


def _single(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    return as_pair(value, name, "conv1d", minimum)[1]


def conv1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of (N, C, L) input with (O, C/groups, k) weight, as
    ``torch.nn.functional.conv1d``; gives (N, O, OL).

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    >>> mdl.nn.functional.conv1d(x, mdl.tensor([[[1.0, -1.0]]]), padding=1)
    tensor([[[-1., -1., -1., -1.,  4.]]])
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_conv("conv1d", x, weight, bias, groups, "NCL")
    kernel = (1, int(weight.shape[2]))
    stride_ = (1, _single(stride, "stride", 1))
    dilation_ = (1, _single(dilation, "dilation", 1))
    if isinstance(padding, str):
        padding_ = _padding(padding, kernel, dilation_, stride_, "conv1d")
    else:
        padding_ = (0, _single(padding, "padding", 0))
    geometry = Geometry(kernel, stride_, padding_, dilation_)
    geometry.output_size(1, x.shape[2], "conv1d")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv1d.apply(*inputs, geometry=geometry, groups=int(groups))
