"""Matrix products: batched matmul, and the fused affine map of ``nn.Linear``."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.ops.rows import column_sums
from minidl.tensor import Function, Tensor


class MatMul(Function):
    saved_inputs, saves_output = (0, 1), False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError("MatMul: matmul needs tensors of at least one dimension; use * for "
                             "scalars")
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = self.a, self.b
        needs_a, needs_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product
            return (grad * b if needs_a else None, grad * a if needs_b else None)
        # Treat a vector as a one-row (a) or one-column (b) matrix, then drop that axis.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        grad_a = grad_b = None
        if needs_a:
            grad_a = _gradient_product(g2, np.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                grad_a = grad_a[..., 0, :]
        if needs_b:
            grad_b = _gradient_product(np.swapaxes(a2, -1, -2), g2)
            if b.ndim == 1:
                grad_b = grad_b[..., 0]
        return grad_a, grad_b  # batch axes are summed back by the engine


class Linear(Function):
    """x @ W.T + b in one node: the layer every MLP step runs, so it costs one op."""

    saved_inputs, saves_output = (0, 1), False

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        self.x, self.weight = x, weight
        out = _product(x, weight.T)
        if (type(out) is np.ndarray and out.dtype == bias.dtype
                and out.shape[out.ndim - bias.ndim:] == bias.shape):
            out += bias  # into the product's fresh array: the same sums, one array fewer
            return out
        return out + bias

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs_x, needs_w, needs_b = self.needs_input_grad
        x2 = self.x if self.x.ndim == 2 else self.x.reshape(-1, self.x.shape[-1])
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
        grad_x = _product(grad, self.weight) if needs_x else None
        grad_w = _gradient_product(g2.T, x2) if needs_w else None
        grad_b = column_sums(g2) if needs_b else None
        return grad_x, grad_w, grad_b


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b; small matrix products through ``ndarray.dot``, which reaches the same BLAS
    gemm with 0.5 us less dispatch than the matmul ufunc but zero-fills its output first
    (a pass over it that gemm makes again), so large ones stay with matmul. The method,
    not ``np.dot``: that adds a Python-level ``__array_function__`` dispatcher (0.23 us)."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[0] * b.shape[1] <= _SMALL_PRODUCT:
        return a.dot(b)
    return a @ b


_SMALL_PRODUCT = 4096  # output elements: below this, dispatch costs more than the fill


def _gradient_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for a weight gradient; float16 multiplies in float32 and stays there, because
    it sums over the batch and would pass 65,504 before a strategy's 1/N."""
    work = accumulator(a.dtype)
    if work != a.dtype:
        return _product(a.astype(work), b.astype(work))
    return _product(a, b)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with numpy's rules (vectors, batches broadcast), as ``a @ b``."""
    return MatMul.apply(as_tensor(a), as_tensor(b))


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` (weight has shape (out, in)), as ``torch.nn.functional.linear``.

    >>> import minidl as mdl
    >>> w = mdl.tensor([[1.0, 2.0]]); b = mdl.tensor([0.5])
    >>> mdl.nn.functional.linear(mdl.tensor([[1.0, 1.0]]), w, b)
    tensor([[3.5]])
    """
    x = as_tensor(x)
    if x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
        raise ShapeError(  # clearer than numpy's matmul message
            f"linear: input has shape {x.shape} but the weight expects {weight.shape[-1]} "
            f"features in the last axis (weight shape {weight.shape})")
    if bias is None:
        return MatMul.apply(x, weight.T)
    return Linear.apply(x, weight, bias)
