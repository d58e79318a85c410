"""Normalization layers: ``BatchNorm1d``, ``BatchNorm2d`` and ``LayerNorm``, as torch's.

Batch norm's batch mean and variance are statistics of the micro-batch in the
forward pass, not a loss reduction: the normalization strategy never touches them.
Under gradient accumulation each micro-batch is normalized by its own statistics,
as in torch.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minidl.dtypes import as_float_dtype, get_default_dtype
from minidl.errors import InvalidValueError, ShapeError
from minidl.nn.module import Module, Parameter
from minidl.ops.norm import batch_norm, layer_norm
from minidl.tensor import Tensor


class _BatchNorm(Module):
    _input_dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or num_features < 1:
            raise InvalidValueError(f"{name}: num_features must be a positive integer, "
                                    f"got {num_features!r}")
        if eps <= 0:
            raise InvalidValueError(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise InvalidValueError(f"{name}: momentum must be in [0, 1] or None (a cumulative "
                                    f"average), got {momentum}")
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features), dtype=dtype) if affine else None
        self.bias = Parameter(np.zeros(num_features), dtype=dtype) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._input_dims or x.shape[1] != self.num_features:
            dims = " or ".join(f"{d}-D" for d in self._input_dims)
            raise ShapeError(f"{type(self).__name__}({self.num_features}) expects {dims} input "
                             f"with {self.num_features} channels on axis 1, got shape {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        if update:
            self.num_batches_tracked += 1  # a 0-d array, updated in place
            if self.momentum is None:  # cumulative moving average, as torch
                momentum = 1.0 / float(self.num_batches_tracked)
        return batch_norm(x, self.running_mean if update or not use_batch_stats else None,
                          self.running_var if update or not use_batch_stats else None,
                          self.weight, self.bias, training=use_batch_stats,
                          momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) per channel (Ioffe & Szegedy 2015).

    Training normalizes by the batch's mean and (biased) variance and updates the
    running statistics with ``momentum`` (the running variance is unbiased, as torch);
    ``.eval()`` normalizes by the running statistics.

    >>> import minidl as mdl
    >>> bn = mdl.nn.BatchNorm1d(1)
    >>> bn(mdl.tensor([[1.0], [3.0]])).data.ravel().round(3), bn.running_var
    (array([-1.,  1.], dtype=float32), array([1.1], dtype=float32))
    """

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of images (N, C, H, W) per channel, over N, H and W.

    >>> import minidl as mdl
    >>> import numpy as np
    >>> bn = mdl.nn.BatchNorm2d(3)
    >>> bn(mdl.tensor(np.ones((2, 3, 4, 4)))).shape
    (2, 3, 4, 4)
    """

    _input_dims = (4,)


class LayerNorm(Module):
    """Normalize each example over its trailing ``normalized_shape`` axes (Ba et al. 2016),
    with a learned elementwise weight and bias unless ``elementwise_affine=False``.

    >>> import minidl as mdl
    >>> ln = mdl.nn.LayerNorm(2, eps=0.0)
    >>> ln(mdl.tensor([[1.0, 3.0], [0.0, -4.0]]))
    tensor([[-1.,  1.],
           [ 1., -1.]], requires_grad=True)
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: Any = None) -> None:
        super().__init__()
        shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                 else tuple(normalized_shape))
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise InvalidValueError(f"LayerNorm: normalized_shape must be positive integers, "
                                    f"got {normalized_shape!r}")
        if eps < 0:
            raise InvalidValueError(f"LayerNorm: eps must be non-negative, got {eps}")
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(shape), dtype=dtype) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape), dtype=dtype) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
