"""Embedding lookup: integer indices select rows of a weight matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidTypeError, ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Function, Tensor


def first_out_of_range(indices: np.ndarray, size: int) -> Any:
    """The first of ``indices`` outside ``0..size-1``, or None (numpy would wrap a negative
    index silently, or fail without naming the op).

    >>> int(first_out_of_range(np.array([0, 2, -1, 5]), 3)), first_out_of_range(np.array([2]), 3)
    (-1, None)
    """
    if not indices.size:
        return None
    if indices.dtype.kind == "i":
        # Read as unsigned, a negative index is larger than any size: one pass, not two.
        in_range = indices.view(_UNSIGNED[indices.dtype.itemsize]).max() < size
    else:
        in_range = indices.min() >= 0 and indices.max() < size
    if in_range:
        return None
    return indices[(indices < 0) | (indices >= size)].flat[0]


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class Embedding(Function):
    """weight[indices]; the backward scatter-adds each row's gradient into its index
    (np.add.at, so an index used many times accumulates every use)."""

    saved_inputs, saves_output = (1,), False

    def forward(self, weight: np.ndarray, indices: np.ndarray,
                padding_idx: int | None) -> np.ndarray:
        rows = weight.shape[0]
        bad = first_out_of_range(indices, rows)  # here, not before apply: replays check too
        if bad is not None:
            raise IndexError(f"embedding: index {bad} is out of range for {rows} embeddings "
                             f"(indices must be 0..{rows - 1})")
        self.indices, self.rows, self.padding_idx = indices, rows, padding_idx
        return weight[indices]

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, None]:
        if not self.needs_input_grad[0]:
            return None, None
        dim = grad.shape[-1]
        out = np.zeros((self.rows, dim), dtype=grad.dtype)
        np.add.at(out, self.indices.reshape(-1), grad.reshape(-1, dim))
        if self.padding_idx is not None:
            out[self.padding_idx] = 0  # the padding row never learns, as in torch
        return out, None


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at integer ``indices`` of any shape.

    >>> import minidl as mdl
    >>> w = mdl.tensor([[0.0, 0.0], [1.0, 2.0]])
    >>> mdl.nn.functional.embedding(mdl.tensor([[1, 1, 0]], dtype="int64"), w).shape
    (1, 3, 2)
    """
    indices, weight = as_tensor(indices), as_tensor(weight)
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    if indices.dtype.kind not in "iu":
        raise InvalidTypeError(f"embedding: indices must be integers, got {indices.dtype}; pass "
                               "dtype='int64'")
    return Embedding.apply(weight, indices, padding_idx=padding_idx)
