"""Layers: ``Linear``, ``Sequential``, the activations and ``Dropout``."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl import ops
from minidl.dtypes import as_float_dtype, get_default_dtype
from minidl.errors import InvalidTypeError, InvalidValueError
from minidl.nn.init import INITIALIZERS
from minidl.nn.module import Module, Parameter
from minidl.tensor import Function, Tensor

INITS = tuple(INITIALIZERS)

class Linear(Module):
    """y = x W^T + b with W of shape (out, in), as ``torch.nn.Linear``.

    ``init="xavier"`` (Glorot & Bengio 2010, for tanh/sigmoid) or ``"he"`` (He et al.
    2015, for relu), both normal, draws W from ``generator``; ``"xavier_uniform"``,
    ``"he_uniform"`` and the course's ``"small"`` (N(0, 1) * 0.01) also work (see
    ``nn.init``); b starts at 0. Pass a seed or a ``np.random.Generator`` for
    reproducible weights.

    >>> import minidl as mdl
    >>> layer = mdl.nn.Linear(2, 4, generator=0)
    >>> layer, layer(mdl.tensor([[1.0, 2.0]])).shape
    (Linear(in_features=2, out_features=4, bias=True), (1, 4))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "xavier", generator: np.random.Generator | int | None = None,
                 dtype: Any = None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or value < 1:
                raise InvalidValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        if init not in INITS:
            raise InvalidValueError(f"Linear: init must be one of {INITS}, got {init!r}")
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        rng = np.random.default_rng(generator)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features)), dtype=dtype)
        INITIALIZERS[init](self.weight, generator=rng)
        self.bias = Parameter(np.zeros(out_features), dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Sequential(Module):
    """Modules applied in order, as ``torch.nn.Sequential``.

    >>> import minidl as mdl
    >>> net = mdl.nn.Sequential(mdl.nn.Linear(2, 4, generator=0), mdl.nn.Tanh())
    >>> len(net), net[1]
    (2, Tanh())
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise InvalidTypeError(f"Sequential: argument {index} is {type(module).__name__}, "
                                       "not a Module")
            setattr(self, str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def forward(self, x: Tensor) -> Tensor:
        for module in self._modules.values():
            x = module(x)
        return x


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class DropoutMask(Function):
    """x * keep / (1 - p), with ``keep`` drawn from ``generator`` in forward.

    An op rather than a multiplication by a constant mask, so a compiled step
    (``mdl.compile``) records the draw, not its result, and draws afresh on replay.
    """

    saved_inputs, saves_output = (), False

    def forward(self, x: np.ndarray, p: float, generator: Any) -> np.ndarray:
        keep = generator.random(x.shape) >= p
        self.scale = (keep / (1.0 - p)).astype(x.dtype)
        return x * self.scale

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.scale


class Dropout(Module):
    """Zero each input with probability ``p`` in training, scaling the rest by 1/(1-p).

    >>> import minidl as mdl
    >>> drop = mdl.nn.Dropout(0.5, generator=0).eval()
    >>> drop(mdl.tensor([1.0, 2.0]))
    tensor([1., 2.])
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise InvalidValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.generator = np.random.default_rng(generator)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return DropoutMask.apply(x, p=self.p, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
