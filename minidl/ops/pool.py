"""Pooling over the two spatial axes of (N, C, H, W): max, average, global average; and
``flatten``. Each pooling op reads its windows as a strided view (``windows.py``) and
sends its gradient back with the same scatter (col2im) the convolution uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.ops.movement import reshape
from minidl.ops.windows import Geometry, as_pair, pad, scatter_windows, unpad, windows
from minidl.tensor import Function, Tensor


class MaxPool2d(Function):
    """The largest value of each window; its gradient goes to that one element (the first
    one, on a tie, as torch's CPU kernel picks it)."""

    saved_inputs = ()
    saves_output = False

    def forward(self, x: np.ndarray, *, geometry: Geometry) -> np.ndarray:
        n, c, height, width = x.shape
        oh, ow = geometry.output_size(height, width, "max_pool2d")
        padded = pad(x, geometry.padding, value=-np.inf)  # padding is never the maximum
        kh, kw = geometry.kernel
        flat = windows(padded, geometry, (oh, ow)).reshape(n, c, oh, ow, kh * kw)
        self.argmax = flat.argmax(axis=-1)
        self.geometry, self.padded_shape = geometry, padded.shape
        return np.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        kh, kw = self.geometry.kernel
        chosen = self.argmax[..., None] == np.arange(kh * kw)  # (N, C, OH, OW, kh*kw)
        values = np.where(chosen, grad[..., None], 0).astype(grad.dtype, copy=False)
        n, c, oh, ow = grad.shape
        values = values.reshape(n, c, oh, ow, kh, kw).transpose(0, 1, 4, 5, 2, 3)
        padded = scatter_windows(values, self.geometry, self.padded_shape)
        return unpad(padded, self.geometry.padding)


class AvgPool2d(Function):
    """The mean of each window. Padding counts as zeros in the mean (torch's default,
    ``count_include_pad=True``) unless ``count_include_pad`` is False."""

    saved_inputs = ()
    saves_output = False

    def forward(self, x: np.ndarray, *, geometry: Geometry,
                count_include_pad: bool) -> np.ndarray:
        height, width = x.shape[2:]
        out_size = geometry.output_size(height, width, "avg_pool2d")
        padded = pad(x, geometry.padding)
        sums = windows(padded, geometry, out_size).sum(axis=(-2, -1), dtype=accumulator(x.dtype))
        kh, kw = geometry.kernel
        if count_include_pad or geometry.padding == (0, 0):
            divisor: Any = kh * kw
        else:  # how many real (unpadded) elements each window covers
            ones = pad(np.ones((1, 1, height, width), dtype=sums.dtype), geometry.padding)
            divisor = windows(ones, geometry, out_size).sum(axis=(-2, -1))
        self.geometry, self.padded_shape, self.divisor = geometry, padded.shape, divisor
        return (sums / divisor).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        kh, kw = self.geometry.kernel
        share = (grad / self.divisor).astype(grad.dtype, copy=False)
        # The same share for every element of a window: a broadcast view, no copy.
        values = np.broadcast_to(share[:, :, None, None], (*share.shape[:2], kh, kw,
                                                          *share.shape[2:]))
        padded = scatter_windows(values, self.geometry, self.padded_shape)
        return unpad(padded, self.geometry.padding)


class GlobalAvgPool2d(Function):
    """The mean over all of H x W, keeping them as 1 x 1: adaptive average pooling to 1."""

    saved_inputs = ()
    saves_output = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        means = x.mean(axis=(2, 3), keepdims=True, dtype=accumulator(x.dtype))
        return means.astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        area = self.shape[2] * self.shape[3]
        return np.broadcast_to((grad / area).astype(grad.dtype, copy=False), self.shape)


# ===================================== functions ========================================

def _check_image(op: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must have shape (N, C, H, W), got {x.shape}; add a "
                         "batch axis for a single image, e.g. x.reshape(1, *x.shape)")
    if x.dtype.kind != "f":
        raise InvalidTypeError(f"{op}: input must be floating point, got {x.dtype}")


def _pool_geometry(op: str, x: Tensor, kernel_size: Any, stride: Any,
                   padding: Any) -> Geometry:
    _check_image(op, x)
    kernel = as_pair(kernel_size, "kernel_size", op, 1)
    stride_ = kernel if stride is None else as_pair(stride, "stride", op, 1)
    padding_ = as_pair(padding, "padding", op, 0)
    if any(2 * p > k for p, k in zip(padding_, kernel)):
        # As torch: more padding would make windows of padding alone.
        raise InvalidValueError(f"{op}: padding {padding_} must be at most half the kernel "
                                f"{kernel}")
    geometry = Geometry(kernel, stride_, padding_, (1, 1))
    geometry.output_size(x.shape[2], x.shape[3], op)  # a clear error before any work
    return geometry


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """The maximum of each kernel_size window, as ``torch.nn.functional.max_pool2d``;
    ``stride`` defaults to ``kernel_size``, padding is -inf.

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor(np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> mdl.nn.functional.max_pool2d(x, 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    x = as_tensor(x)
    return MaxPool2d.apply(x, geometry=_pool_geometry("max_pool2d", x, kernel_size, stride,
                                                      padding))


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               count_include_pad: bool = True) -> Tensor:
    """The mean of each kernel_size window, as ``torch.nn.functional.avg_pool2d``;
    ``stride`` defaults to ``kernel_size``, padding is zeros.

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor(np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> mdl.nn.functional.avg_pool2d(x, 2)
    tensor([[[[ 2.5,  4.5],
              [10.5, 12.5]]]])
    """
    x = as_tensor(x)
    geometry = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, geometry=geometry, count_include_pad=bool(count_include_pad))


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Average pooling to an ``output_size`` grid; only 1 (global average pooling, the end
    of a ResNet) is implemented. Gives (N, C, 1, 1).

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor(np.arange(8.0, dtype=np.float32).reshape(1, 2, 2, 2))
    >>> mdl.nn.functional.adaptive_avg_pool2d(x, 1).reshape(1, 2)
    tensor([[1.5, 5.5]])
    """
    x = as_tensor(x)
    _check_image("adaptive_avg_pool2d", x)
    if output_size not in (1, (1, 1), [1, 1]):
        raise NotImplementedError(f"adaptive_avg_pool2d: only output_size 1 (global average "
                                  f"pooling) is implemented, got {output_size!r}; for other "
                                  "sizes use avg_pool2d with a matching kernel and stride")
    return GlobalAvgPool2d.apply(x)


def flatten(x: Any, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Axes ``start_dim``..``end_dim`` merged into one, as ``torch.flatten``; the default
    keeps the batch axis: (N, C, H, W) -> (N, C*H*W). A reshape, so its backward is one.

    >>> import minidl as mdl
    >>> mdl.nn.functional.flatten(mdl.tensor([[[1.0, 2.0], [3.0, 4.0]]])).shape
    (1, 4)
    """
    x = as_tensor(x)
    ndim = max(x.ndim, 1)
    start = start_dim + ndim if start_dim < 0 else start_dim
    end = end_dim + ndim if end_dim < 0 else end_dim
    if not (0 <= start < ndim and 0 <= end < ndim) or start > end:
        raise InvalidValueError(f"flatten: start_dim={start_dim}, end_dim={end_dim} do not name "
                                f"axes in order of a tensor of shape {x.shape}")
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    if x.size == 0:  # -1 is ambiguous with a zero-size axis
        merged = int(np.prod(x.shape[start:end + 1]))
        shape = x.shape[:start] + (merged,) + x.shape[end + 1:]
    return reshape(x, shape)
