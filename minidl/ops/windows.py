"""Sliding windows over the two spatial axes of an (N, C, H, W) array, and their adjoint.

Pooling reads every kh x kw window of a (padded) image. ``windows``
returns them as a strided *view* (no copy): ``np.lib.stride_tricks.sliding_window_view``
over the padded image, then steps for the stride and the dilation. ``scatter_windows`` is
its adjoint (col2im): it adds a value per window element back onto the image, one
vectorized add per kernel offset (kh x kw of them), never a Python loop over the batch.

Also here: the geometry (kernel, stride, padding, dilation) and its checks, shared by
``conv2d`` and the pooling ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError

Pair = tuple[int, int]


def as_pair(value: Any, name: str, op: str, minimum: int) -> Pair:
    """An int or a pair of ints as a pair, each at least ``minimum``; else a ``ValueError``.

    >>> as_pair(3, "stride", "conv2d", 1), as_pair((1, 2), "padding", "conv2d", 0)
    ((3, 3), (1, 2))
    """
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in pair)):
        raise InvalidTypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise InvalidValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class Geometry:
    """Where the windows of a kernel sit on an image: sizes per spatial axis (rows, cols)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair

    def output_size(self, height: int, width: int, op: str) -> Pair:
        """(OH, OW), or a ``ShapeError`` if the kernel does not fit the padded input."""
        sizes = []
        for axis, size in enumerate((height, width)):
            span = self.dilation[axis] * (self.kernel[axis] - 1) + 1
            padded = size + 2 * self.padding[axis]
            if padded < span:
                raise ShapeError(
                    f"{op}: the kernel spans {span} {('rows', 'columns')[axis]} (kernel "
                    f"{self.kernel}, dilation {self.dilation}) but the input has only {padded} "
                    f"(size {size} + padding 2 x {self.padding[axis]}); use a smaller kernel or "
                    "more padding")
            sizes.append((padded - span) // self.stride[axis] + 1)
        return sizes[0], sizes[1]


def pad(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` rows/columns of ``value`` on each side of its last two axes."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def windows(padded: np.ndarray, geometry: Geometry, out_size: Pair) -> np.ndarray:
    """Every window of the padded (N, C, Hp, Wp) image as a (N, C, OH, OW, kh, kw) view."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(padded, span, axis=(2, 3))
    oh, ow = out_size
    return view[:, :, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, ::dh, ::dw]


def scatter_windows(values: np.ndarray, geometry: Geometry,
                    padded_shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of ``windows`` (col2im): add each window element's value back where it
    came from. ``values`` has shape (N, C, kh, kw, OH, OW); returns the gradient of the
    padded (N, C, Hp, Wp) image. Overlapping windows accumulate.
    """
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    oh, ow = values.shape[-2:]
    out = np.zeros(padded_shape, dtype=values.dtype)
    for p in range(kh):
        rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
        for q in range(kw):
            cols = slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)
            out[:, :, rows, cols] += values[:, :, p, q]
    return out


def unpad(x: np.ndarray, padding: Pair) -> np.ndarray:
    """``x`` without the ``padding`` rows/columns ``pad`` added (a view)."""
    ph, pw = padding
    return x[:, :, ph : x.shape[2] - ph, pw : x.shape[3] - pw]
