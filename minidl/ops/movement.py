"""Ops that move or select elements without arithmetic: reshape, transpose,
indexing, concatenate, stack. Their backwards route the gradient back into place."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minidl.errors import InvalidValueError
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Function, Tensor


class Reshape(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self.shape)


class Transpose(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
        self.inverse = None if axes is None else tuple(np.argsort(axes))
        return a.transpose(axes)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.transpose(self.inverse)


class GetItem(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, index: Any) -> np.ndarray:
        self.shape, self.index = a.shape, index
        return a[index]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape, dtype=grad.dtype)
        if _is_basic(self.index):
            out[self.index] = grad
        else:
            np.add.at(out, self.index, grad)  # an index repeated in an array accumulates
        return out


class Concatenate(Function):
    saved_inputs, saves_output = (), False

    def forward(self, *arrays: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.split(grad, self.splits, axis=self.axis))


class Stack(Function):
    saved_inputs, saves_output = (), False

    def forward(self, *arrays: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(np.moveaxis(grad, self.axis, 0))


def _is_basic(index: Any) -> bool:
    """True for numpy basic indexing (ints, slices, None, Ellipsis), which never repeats."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis)))
               for p in parts)


def _plain_index(index: Any) -> Any:
    """Tensors and lists inside an index become numpy arrays, as numpy expects."""
    if isinstance(index, tuple):
        return tuple(_plain_index(p) for p in index)
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def reshape(a: Any, shape: int | Sequence[int]) -> Tensor:
    """``a`` with a new shape (one axis may be -1), as ``np.reshape``."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return Reshape.apply(as_tensor(a), shape=shape)


def transpose(a: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them by default), as ``np.transpose``."""
    a = as_tensor(a)
    if axes is not None:
        given = tuple(int(ax) for ax in axes)
        # Only -ndim..ndim-1 wrap around (as numpy); 2 on a 2-D tensor is an error, not 0.
        axes = tuple(ax % a.ndim if -a.ndim <= ax < a.ndim else ax for ax in given)
        if sorted(axes) != list(range(a.ndim)):
            raise InvalidValueError(f"transpose: axes {given} are not a permutation of the "
                                    f"{a.ndim} axes of a tensor of shape {a.shape}")
    return Transpose.apply(a, axes=axes)


def getitem(a: Any, index: Any) -> Tensor:
    """``a[index]`` with basic or integer-array indexing; repeated indices accumulate."""
    return GetItem.apply(as_tensor(a), index=_plain_index(index))


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, as ``np.concatenate``.

    >>> import minidl as mdl
    >>> mdl.concatenate([mdl.tensor([1.0]), mdl.tensor([2.0, 3.0])])
    tensor([1., 2., 3.])
    """
    if len(tensors) == 0:
        raise InvalidValueError("concatenate needs at least one tensor")
    return Concatenate.apply(*[as_tensor(t) for t in tensors], axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis, as ``np.stack``.

    >>> import minidl as mdl
    >>> mdl.stack([mdl.tensor([1.0, 2.0]), mdl.tensor([3.0, 4.0])]).shape
    (2, 2)
    """
    if len(tensors) == 0:
        raise InvalidValueError("stack needs at least one tensor")
    return Stack.apply(*[as_tensor(t) for t in tensors], axis=axis)
