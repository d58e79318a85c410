"""Elementwise ops: unary, binary and ternary, each forward beside its backward.

Binary ops return gradients in the broadcast output shape: the engine sums them
back to each input's shape (``minidl.autograd.unbroadcast``), once for every op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.dtypes import as_float_dtype
from minidl.errors import InvalidTypeError
from minidl.tensor import Function, Tensor, tensor


def as_tensor(x: Any) -> Tensor:
    """``x`` if it is a Tensor, else a constant tensor built by ``mdl.tensor``."""
    return x if isinstance(x, Tensor) else tensor(x)


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands as tensors, promoted as torch does: a number, or an integer or bool
    tensor, takes the floating operand's dtype (numpy would make int64 * float32 float64)."""
    if isinstance(a, Tensor):
        a, b = a, a._lift(b)
    elif isinstance(b, Tensor):
        a, b = b._lift(a), b
    else:
        a, b = tensor(a), tensor(b)
    kind_a, kind_b = a._data.dtype.kind, b._data.dtype.kind
    if kind_a == "f" and kind_b in "biu":
        b = Tensor._from_op(b._data.astype(a._data.dtype), None)
    elif kind_b == "f" and kind_a in "biu":
        a = Tensor._from_op(a._data.astype(b._data.dtype), None)
    return a, b


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows; both branches are exact where they are used.
    return _sigmoid_from_exp(x, np.exp(-np.abs(x)))


def _sigmoid_from_exp(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """sigmoid(x) given e = exp(-|x|): 1 / (1 + e) where x >= 0, else e / (1 + e)."""
    # The same values as computing both branches, in 4 array passes instead of 6; the
    # Python 1 keeps x's dtype (float16, float32 or float64).
    denominator = 1 + e
    if type(denominator) is not np.ndarray:  # a 0-d x: numpy scalars, no out=
        return np.where(x >= 0, 1, e) / denominator
    return np.divide(np.where(x >= 0, 1, e), denominator, out=denominator)


def _times(grad: np.ndarray, local: np.ndarray) -> np.ndarray:
    """``grad * local`` for a ``local`` derivative the op just made: into ``local`` when
    the product has its shape and dtype (the same values; IEEE products commute)."""
    if local.dtype == grad.dtype and local.shape == grad.shape:
        local *= grad
        return local
    return grad * local


# ======================================= unary ==========================================

class Exp(Function):
    saved_inputs, saves_output = (), True

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = np.exp(a)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.out


class Log(Function):
    saved_inputs, saves_output = (0,), False

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.a = a
        return np.log(a)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad / self.a


class Tanh(Function):
    saved_inputs, saves_output = (), True

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = np.tanh(a)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        local = self.out * self.out
        if type(local) is not np.ndarray:  # a 0-d output: numpy scalars, no out=
            return grad * (1 - local)
        np.subtract(1, local, out=local)  # 1 - out^2 in the square's fresh array
        return _times(grad, local)


class Sigmoid(Function):
    saved_inputs, saves_output = (), True

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = _stable_sigmoid(a)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.out * (1 - self.out)


class Relu(Function):
    # Keeps its output, not a mask: the next layer keeps that array anyway, so relu costs
    # no memory of its own (out > 0 exactly where a > 0, NaN and -0.0 included).
    saved_inputs, saves_output = (), True

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = np.maximum(a, 0)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * (self.out > 0)


class Abs(Function):
    saved_inputs, saves_output = (0,), False

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.a = a
        return np.abs(a)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * np.sign(self.a)


class Sqrt(Function):
    saved_inputs, saves_output = (), True

    def forward(self, a: np.ndarray) -> np.ndarray:
        self.out = np.sqrt(a)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad / (2 * self.out)


class Cast(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return a.astype(dtype)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad  # the engine casts it back to the input's dtype


# ======================================= binary =========================================

class Add(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return grad, grad


class Mul(Function):
    saved_inputs, saves_output = (0, 1), False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        needs_a, needs_b = self.needs_input_grad
        return (grad * self.b if needs_a else None, grad * self.a if needs_b else None)


class Div(Function):
    saved_inputs, saves_output = (1,), True
    # A primitive rather than a * b**-1, so the forward value is a correctly rounded a / b.
    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        needs_a, needs_b = self.needs_input_grad
        grad_a = grad / self.b
        return (grad_a if needs_a else None, -grad_a * self.out if needs_b else None)


class Pow(Function):
    saved_inputs, saves_output = (0, 1), True

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        needs_a, needs_b = self.needs_input_grad
        grad_a = None
        if needs_a:
            if np.all(self.b):
                local = self.b * self.a ** (self.b - 1)
            else:  # d(a^0)/da is 0, also at a = 0, where the formula says 0 * inf
                with np.errstate(divide="ignore", invalid="ignore"):
                    local = np.where(self.b == 0, 0, self.b * self.a ** (self.b - 1))
            grad_a = grad * local
        # d(a^b)/db = a^b log a, defined for a > 0 (only computed when b needs it).
        grad_b = grad * self.out * np.log(self.a) if needs_b else None
        return grad_a, grad_b


class Maximum(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # Ties split the gradient evenly, as torch does: the subgradient midpoint.
        self.share_a = (a > b) + 0.5 * (a == b)
        return np.maximum(a, b)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad_a = grad * self.share_a
        return grad_a, grad - grad_a


class Where(Function):
    saved_inputs, saves_output = (0,), False

    def forward(self, condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.condition = condition
        return np.where(condition, a, b)

    def backward(self, grad: np.ndarray) -> tuple[None, np.ndarray, np.ndarray]:
        zero = np.zeros((), dtype=grad.dtype)
        return None, np.where(self.condition, grad, zero), np.where(self.condition, zero, grad)


# ====================================== functions =======================================

def add(a: Any, b: Any) -> Tensor:
    return Add.apply(*_pair(a, b))


def mul(a: Any, b: Any) -> Tensor:
    return Mul.apply(*_pair(a, b))


def div(a: Any, b: Any) -> Tensor:
    return Div.apply(*_pair(a, b))


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001  (mirrors the operator's name)
    return Pow.apply(*_pair(a, b))


def neg(a: Any) -> Tensor:
    return mul(as_tensor(a), -1)  # -a


def sub(a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    return Add.apply(a, neg(b))  # a + (-b)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; at ties each input gets half the gradient.

    >>> import minidl as mdl
    >>> mdl.maximum(mdl.tensor([1.0, 5.0]), 3.0)
    tensor([3., 5.])
    """
    return Maximum.apply(*_pair(a, b))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (broadcasting as ``np.where``).

    >>> import minidl as mdl
    >>> x = mdl.tensor([-1.0, 2.0])
    >>> mdl.where(x > 0, x, 0.0)
    tensor([0., 2.])
    """
    cond = as_tensor(condition)
    if cond.dtype.kind != "b":
        raise InvalidTypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    return Where.apply(cond, *_pair(a, b))


def exp(a: Any) -> Tensor:
    return Exp.apply(as_tensor(a))


def log(a: Any) -> Tensor:
    return Log.apply(as_tensor(a))


def tanh(a: Any) -> Tensor:
    return Tanh.apply(as_tensor(a))


def sigmoid(a: Any) -> Tensor:
    return Sigmoid.apply(as_tensor(a))


def relu(a: Any) -> Tensor:
    return Relu.apply(as_tensor(a))


def abs(a: Any) -> Tensor:  # noqa: A001
    return Abs.apply(as_tensor(a))


def sqrt(a: Any) -> Tensor:
    return Sqrt.apply(as_tensor(a))


def cast(a: Any, dtype: Any) -> Tensor:
    return Cast.apply(as_tensor(a), dtype=as_float_dtype(dtype))
