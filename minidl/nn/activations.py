"""Activation modules beyond ReLU, Tanh and Sigmoid: ``LeakyReLU``, ``GELU``, ``Softmax``,
``Identity``."""

from __future__ import annotations

from typing import Any

from minidl.errors import InvalidTypeError, InvalidValueError
from minidl.nn.functional import softmax
from minidl.nn.module import Module
from minidl.ops.activation import GELU_APPROXIMATIONS, gelu, leaky_relu
from minidl.tensor import Tensor


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope`` * x.

    >>> import minidl as mdl
    >>> mdl.nn.LeakyReLU(0.1)(mdl.tensor([-1.0, 2.0]))
    tensor([-0.1,  2. ])
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x) (``approximate="none"``, exact) or its tanh approximation.

    >>> import minidl as mdl
    >>> mdl.nn.GELU("tanh")(mdl.tensor([0.0]))
    tensor([0.])
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in GELU_APPROXIMATIONS:
            raise InvalidValueError(f"GELU: approximate must be one of {GELU_APPROXIMATIONS}, "
                                    f"got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """softmax along ``axis`` (torch's ``dim``).

    >>> import minidl as mdl
    >>> mdl.nn.Softmax(axis=1)(mdl.tensor([[0.0, 0.0]]))
    tensor([[0.5, 0.5]])
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if not isinstance(axis, int):
            raise InvalidTypeError(f"Softmax: axis must be an integer, got {axis!r}")
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Identity(Module):
    """Returns its input unchanged (a placeholder layer, e.g. a removed head).

    >>> import minidl as mdl
    >>> mdl.nn.Identity()(mdl.tensor([1.0]))
    tensor([1.])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # accepts and ignores, as torch
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x
