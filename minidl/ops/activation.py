"""Activations beyond relu, tanh and sigmoid: leaky relu and GELU, forward beside backward."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import InvalidValueError
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Function, Tensor

GELU_APPROXIMATIONS = ("none", "tanh")

# math.erf is exact to the last bit; numpy has no erf, and frompyfunc costs ~0.1 us an
# element, so approximate="tanh" is there for large activations (as in torch).
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class LeakyRelu(Function):
    saved_inputs, saves_output = (), False

    def forward(self, a: np.ndarray, negative_slope: float) -> np.ndarray:
        self.slope = np.where(a > 0, 1, negative_slope).astype(a.dtype, copy=False)
        return a * self.slope

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.slope


class Gelu(Function):
    """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel 2016), or its tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    saved_inputs, saves_output = (0,), False

    def forward(self, a: np.ndarray, approximate: str) -> np.ndarray:
        work = accumulator(a.dtype)
        x = a.astype(work, copy=False)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
            out = 0.5 * x * (1 + self.t)
        else:
            self.cdf = 0.5 * (1 + _erf(x / math.sqrt(2.0)).astype(work))
            out = x * self.cdf
        return out.astype(a.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        x = self.x
        if self.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            local = 0.5 * (1 + self.t) + 0.5 * x * (1 - self.t * self.t) * inner
        else:
            local = self.cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)  # Phi + x phi
        return grad * local


def leaky_relu(a: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope`` * x, as torch's ``leaky_relu``.

    >>> import minidl as mdl
    >>> mdl.nn.functional.leaky_relu(mdl.tensor([-2.0, 3.0]), 0.5)
    tensor([-1.,  3.])
    """
    return LeakyRelu.apply(as_tensor(a), negative_slope=float(negative_slope))


def gelu(a: Any, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit x * Phi(x), as torch's ``gelu`` (``approximate="tanh"``
    for the faster tanh form).

    >>> import minidl as mdl
    >>> mdl.nn.functional.gelu(mdl.tensor([0.0, 1.0]))
    tensor([0.       , 0.8413447])
    """
    if approximate not in GELU_APPROXIMATIONS:
        raise InvalidValueError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS}, "
                                f"got {approximate!r}")
    return Gelu.apply(as_tensor(a), approximate=approximate)
