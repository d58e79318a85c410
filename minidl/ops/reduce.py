"""Reductions over axes: sum, mean and max, each forward beside its backward.

Mean is a primitive, not sum times 1/n, so a float16 mean can scale its float32
sum before casting back (the sum of 100,000 float16 ones is inf; their mean is 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minidl.dtypes import accurate_sum
from minidl.errors import InvalidValueError
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Function, Tensor

Axis = int | tuple[int, ...] | None


def _normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)  # np.int64 too
    normalized = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise InvalidValueError(f"axis {ax} is out of bounds for a tensor with {ndim} "
                                    "dimensions")
        normalized.append(int(ax) % ndim)
    return tuple(normalized)


def _keep_reduced_axes(grad: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """``grad`` with the reduced axes restored as size 1, ready to broadcast back."""
    return grad if keepdims else np.expand_dims(grad, axes)


class Sum(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        self.shape, self.axes, self.keepdims = a.shape, axes, keepdims
        total = accurate_sum(a, axis=axes, keepdims=keepdims)
        # Floats keep their dtype; bool and int sums count, as in numpy (int64).
        return total.astype(a.dtype, copy=False) if a.dtype.kind == "f" else total

    def backward(self, grad: np.ndarray) -> np.ndarray:
        grad = _keep_reduced_axes(grad, self.axes, self.keepdims)
        return np.broadcast_to(grad, self.shape)


class Mean(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        self.shape, self.axes, self.keepdims = a.shape, axes, keepdims
        count = math.prod(a.shape[ax] for ax in axes)  # Python ints: no numpy call per op
        self.scale = 1.0 / count if count else float("nan")  # an empty mean is NaN, as numpy
        total = accurate_sum(a, axis=axes, keepdims=keepdims) * self.scale
        # Floats keep their dtype; the mean of bool or int values is float64, as numpy's.
        return total.astype(a.dtype, copy=False) if a.dtype.kind == "f" else total

    def backward(self, grad: np.ndarray) -> np.ndarray:
        grad = _keep_reduced_axes(grad, self.axes, self.keepdims)
        return np.broadcast_to(grad * self.scale, self.shape)


class Max(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        out = a.max(axis=axes, keepdims=True)
        # Ties share the gradient evenly, so it sums to exactly the output's gradient.
        is_max = a == out
        self.share = is_max / is_max.sum(axis=axes, keepdims=True)
        self.axes, self.keepdims = axes, keepdims
        return out if keepdims else np.squeeze(out, axis=axes)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return _keep_reduced_axes(grad, self.axes, self.keepdims) * self.share


def sum(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes by default), as ``np.sum``.

    This is plain calculus: no normalization strategy touches a bare sum.

    >>> import minidl as mdl
    >>> mdl.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(axis=0)
    tensor([4., 6.])
    """
    a = as_tensor(a)
    return Sum.apply(a, axes=_normalize_axes(axis, a.ndim), keepdims=keepdims)


def mean(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``, as ``np.mean`` (plain calculus, not a batch reduction).

    >>> import minidl as mdl
    >>> mdl.tensor([1.0, 2.0, 6.0]).mean()
    tensor(3.)
    """
    a = as_tensor(a)
    return Mean.apply(a, axes=_normalize_axes(axis, a.ndim), keepdims=keepdims)


def max(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient evenly.

    >>> import minidl as mdl
    >>> mdl.tensor([[1.0, 7.0], [3.0, 4.0]]).max(axis=1)
    tensor([7., 4.])
    """
    a = as_tensor(a)
    if a.size == 0:
        raise InvalidValueError("max of an empty tensor has no value")
    return Max.apply(a, axes=_normalize_axes(axis, a.ndim), keepdims=keepdims)
