"""Convolutions (cross-correlations, as in torch): ``conv2d`` and ``conv1d``.

The forward is im2col plus one matrix product: every kh x kw window of the padded input
is copied once into a column matrix (the windows are a strided view, see ``windows.py``),
and the kernels multiply it in a single BLAS call per group. The backward reuses those
columns for the weight gradient, and scatters the column gradient back onto the image
(col2im) for the input gradient. No Python loop runs over the batch.

Layout: the columns are stored channel-major, (C*kh*kw, N*OH*OW), so the product with the
(O, C*kh*kw) kernels gives (O, N*OH*OW) directly. The result is returned as an (N, O, OH,
OW) *view* of that (O, N, OH, OW) array: copying it to NCHW memory would cost a pass over
the output, and the next conv's im2col reads channel-major memory faster anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.autograd import Function
from minidl.dtypes import accumulator
from minidl.errors import ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.ops.windows import Geometry, as_pair, pad, scatter_windows, unpad, windows
from minidl.tensor import Tensor


class Conv2d(Function):
    """(N, C, H, W) images cross-correlated with (O, C/groups, kh, kw) kernels, plus bias."""

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                geometry: Geometry, groups: int) -> np.ndarray:
        n, _, height, width = x.shape
        out_channels = weight.shape[0]
        oh, ow = geometry.output_size(height, width, "conv2d")
        dtype = np.result_type(x, weight)
        work = accumulator(dtype)  # float16 multiplies in float32, as torch's CPU conv does
        padded = pad(x, geometry.padding)
        # im2col: the one copy of the windows, channel-major (C, kh, kw, N, OH, OW).
        view = windows(padded, geometry, (oh, ow)).transpose(1, 4, 5, 0, 2, 3)
        cols = np.ascontiguousarray(view, dtype=work).reshape(groups, -1, n * oh * ow)
        kernels = weight.astype(work, copy=False).reshape(groups, out_channels // groups, -1)
        out = (kernels[0] @ cols[0] if groups == 1 else kernels @ cols)
        out = out.reshape(out_channels, n, oh, ow)
        if bias is not None:
            out += bias.astype(work, copy=False)[:, None, None, None]
        self.geometry, self.groups, self.padded_shape = geometry, groups, padded.shape
        self.weight_shape, self.has_bias = weight.shape, bias is not None
        self.cols, self.kernels = cols, kernels
        return out.astype(dtype, copy=False).transpose(1, 0, 2, 3)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs_x, needs_w = self.needs_input_grad[:2]
        cols, kernels, groups = self.cols, self.kernels, self.groups
        out_channels = self.weight_shape[0]
        # (O, N, OH, OW): free when grad kept the forward's channel-major memory.
        channel_major = np.ascontiguousarray(grad.transpose(1, 0, 2, 3), dtype=cols.dtype)
        g = channel_major.reshape(groups, out_channels // groups, -1)
        grad_x = grad_w = grad_b = None
        if needs_w:
            grad_w = (g[0] @ cols[0].T if groups == 1
                      else g @ cols.transpose(0, 2, 1)).reshape(self.weight_shape)
        if self.has_bias and self.needs_input_grad[2]:
            grad_b = g.reshape(out_channels, -1).sum(axis=1)
        if needs_x:
            grad_cols = (kernels[0].T @ g[0] if groups == 1
                         else kernels.transpose(0, 2, 1) @ g)
            n, channels = self.padded_shape[:2]
            kh, kw = self.geometry.kernel
            grad_cols = grad_cols.reshape(channels, kh, kw, n, *grad.shape[2:])
            padded = scatter_windows(grad_cols, self.geometry, self.padded_shape,
                                     channels_first=True)
            grad_x = unpad(padded, self.geometry.padding)
        if self.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w


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
            raise ValueError(f"{op}: padding='same' needs stride 1 and an odd kernel span "
                             f"(dilation x (kernel - 1) even), got kernel {kernel}, dilation "
                             f"{dilation}, stride {stride}; pass the padding as numbers")
        return spans[0] // 2, spans[1] // 2
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be a number, a pair, 'valid' or 'same', "
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
        raise TypeError(f"{op}: input and weight must be floating point, got {x.dtype} and "
                        f"{weight.dtype}; convert with x.astype(np.float32)")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    channels, out_channels = x.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels "
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
