"""Convolution layers: ``Conv1d`` and ``Conv2d``, as in ``torch.nn``."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.dtypes import as_float_dtype, get_default_dtype
from minidl.nn.module import Module, Parameter
from minidl.ops.conv import conv1d, conv2d
from minidl.tensor import Tensor
from minidl.errors import InvalidValueError

INITS = ("xavier", "he")
Seed = np.random.Generator | int | None


class _ConvNd(Module):
    """Weights (out, in/groups, *kernel) and a bias per output channel, as torch's."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, ...],
                 stride: Any, padding: Any, dilation: Any, groups: int, bias: bool, init: str,
                 generator: Seed, dtype: Any) -> None:
        super().__init__()
        name = type(self).__name__
        for label, value in (("in_channels", in_channels), ("out_channels", out_channels),
                             ("groups", groups), *((("kernel_size", k) for k in kernel))):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidValueError(f"{name}: {label} must be a positive integer, got "
                                        f"{value!r}")
        if in_channels % groups or out_channels % groups:
            raise InvalidValueError(f"{name}: groups={groups} must divide in_channels "
                                    f"({in_channels}) and out_channels ({out_channels})")
        if init not in INITS:
            raise InvalidValueError(f"{name}: init must be one of {INITS}, got {init!r}")
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        rng = np.random.default_rng(generator)
        # Fans as torch counts them: every kernel element is one input (or output) connection.
        receptive = int(np.prod(kernel))
        fan_in = in_channels // groups * receptive
        fan_out = out_channels // groups * receptive
        std = np.sqrt(2.0 / (fan_in + fan_out)) if init == "xavier" else np.sqrt(2.0 / fan_in)
        shape = (out_channels, in_channels // groups, *kernel)
        self.weight = Parameter(rng.standard_normal(shape) * std, dtype=dtype)
        self.bias = Parameter(np.zeros(out_channels), dtype=dtype) if bias else None
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def extra_repr(self) -> str:
        size = self.kernel_size if len(self.kernel_size) > 1 else self.kernel_size[0]
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={size}"
        for label, value, default in (("stride", self.stride, 1), ("padding", self.padding, 0),
                                      ("dilation", self.dilation, 1), ("groups", self.groups, 1)):
            if value not in (default, (default,) * len(self.kernel_size)):
                text += f", {label}={value}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) images, as ``torch.nn.Conv2d``.

    ``kernel_size``, ``stride``, ``padding`` (or "valid", "same") and ``dilation`` are an int
    or a (rows, cols) pair. ``init="xavier"`` (default, as ``Linear``) or ``"he"`` (for
    relu) draws the weight from ``generator``; the bias starts at 0.

    >>> import numpy as np, minidl as mdl
    >>> conv = mdl.nn.Conv2d(1, 4, kernel_size=3, padding=1, generator=0)
    >>> conv, conv(mdl.tensor(np.zeros((2, 1, 8, 8)))).shape
    (Conv2d(1, 4, kernel_size=(3, 3), padding=1), (2, 4, 8, 8))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 init: str = "xavier", generator: Seed = None, dtype: Any = None) -> None:
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, (int, np.integer)) \
            else tuple(kernel_size)
        if len(kernel) != 2:
            raise InvalidValueError("Conv2d: kernel_size must be an int or a pair, got "
                                    f"{kernel_size!r}")
        super().__init__(in_channels, out_channels, kernel, stride, padding, dilation, groups,
                         bias, init, generator, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) sequences, as ``torch.nn.Conv1d``.

    >>> import numpy as np, minidl as mdl
    >>> conv = mdl.nn.Conv1d(3, 2, kernel_size=5, stride=2, generator=0)
    >>> conv, conv(mdl.tensor(np.zeros((1, 3, 11)))).shape
    (Conv1d(3, 2, kernel_size=5, stride=2), (1, 2, 4))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 init: str = "xavier", generator: Seed = None, dtype: Any = None) -> None:
        if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 1:
            kernel_size = kernel_size[0]
        super().__init__(in_channels, out_channels, (kernel_size,), stride, padding, dilation,
                         groups, bias, init, generator, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)
