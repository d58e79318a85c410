"""Pooling and flattening: the layers between a stack of convolutions and its classifier."""

from __future__ import annotations

from typing import Any, Sequence

from minidl.nn.module import Module
from minidl.ops.movement import reshape
from minidl.ops.pool import adaptive_avg_pool2d, avg_pool2d, flatten, max_pool2d
from minidl.tensor import Tensor
from minidl.errors import InvalidValueError


class MaxPool2d(Module):
    """Max over windows, as ``torch.nn.MaxPool2d``; ``stride`` defaults to the kernel.

    >>> import numpy as np, minidl as mdl
    >>> pool = mdl.nn.MaxPool2d(2)
    >>> pool, pool(mdl.tensor(np.zeros((1, 3, 8, 6)))).shape
    (MaxPool2d(kernel_size=2, stride=2, padding=0), (1, 3, 4, 3))
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """Mean over windows, as ``torch.nn.AvgPool2d``; ``stride`` defaults to the kernel.

    >>> import numpy as np, minidl as mdl
    >>> mdl.nn.AvgPool2d(2)(mdl.tensor(np.ones((1, 1, 4, 4)))).shape
    (1, 1, 2, 2)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                          self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to an ``output_size`` grid; only 1 (global average) is implemented.

    >>> import numpy as np, minidl as mdl
    >>> mdl.nn.AdaptiveAvgPool2d(1)(mdl.tensor(np.ones((2, 5, 7, 3)))).shape
    (2, 5, 1, 1)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        if output_size not in (1, (1, 1), [1, 1]):
            raise NotImplementedError(f"AdaptiveAvgPool2d: only output_size 1 is implemented, "
                                      f"got {output_size!r}")
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge axes ``start_dim``..``end_dim`` (default: all but the batch), as ``torch.nn.Flatten``.

    >>> import numpy as np, minidl as mdl
    >>> mdl.nn.Flatten()(mdl.tensor(np.zeros((2, 3, 4, 4)))).shape
    (2, 48)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size``, as ``torch.nn.Unflatten``: turns rows of
    pixels (N, 64) back into images (N, 1, 8, 8).

    >>> import numpy as np, minidl as mdl
    >>> mdl.nn.Unflatten(1, (1, 8, 8))(mdl.tensor(np.zeros((2, 64)))).shape
    (2, 1, 8, 8)
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else self.dim
        if not 0 <= dim < x.ndim:
            raise InvalidValueError(f"Unflatten: dim {self.dim} is not an axis of shape {x.shape}")
        return reshape(x, x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
