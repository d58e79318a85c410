"""Batch and layer normalization, each one fused op with its closed-form backward.

Both normalize x to x_hat = (x - mean) / sqrt(var + eps) and return x_hat * weight + bias.
Batch norm takes its statistics over every axis except the channel axis 1 (the batch,
and the length or height and width); layer norm over the trailing ``normalized_shape``.
With x_hat a function of the statistics, the gradient at x is (over those n values)

    dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps)

where dx_hat = grad * weight; it is three reductions instead of the dozen nodes the
same maths costs as a composition of engine ops. In batch norm's eval mode the
statistics are constants (the running ones), so dx = dx_hat / sqrt(var + eps).

The batch statistics are forward statistics of the micro-batch, not a loss
reduction: no normalization strategy touches them (the batch reduction in
``minidl.strategy`` is the only op a strategy acts on).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import InvalidValueError, ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Function, Tensor


def _channel_shape(ndim: int, channels: int) -> tuple[int, ...]:
    """The shape that broadcasts a per-channel (C,) vector against (N, C, ...)."""
    return (1, channels) + (1,) * (ndim - 2)


def _scale_and_shift(x_hat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
            shape: tuple[int, ...] | None = None) -> np.ndarray:
    """x_hat * weight + bias, each optional: ``weight`` already in x_hat's dtype and shape,
    ``bias`` cast here (and reshaped to ``shape``, batch norm's per-channel broadcast)."""
    out = x_hat if weight is None else x_hat * weight
    if bias is not None:
        bias = bias.astype(x_hat.dtype)
        out = out + (bias if shape is None else bias.reshape(shape))
    return out


def _through_statistics(d_hat: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray,
                        axes: tuple[int, ...]) -> np.ndarray:
    """dL/dx of x_hat = (x - mean) * inv_std, mean and variance taken over ``axes``,
    given dL/dx_hat: the closed form shared by batch and layer norm."""
    mean_d = d_hat.mean(axis=axes, keepdims=True)
    mean_dx = np.mean(d_hat * x_hat, axis=axes, keepdims=True)
    return (d_hat - mean_d - x_hat * mean_dx) * inv_std

class BatchNorm(Function):
    """Per-channel normalization of x (N, C, ...) with the batch's statistics (training)
    or given running statistics (eval); optional per-channel weight and bias."""

    saved_inputs, saves_output = (), False

    def forward(self, x: np.ndarray, weight: np.ndarray | None = None,
                bias: np.ndarray | None = None, *, eps: float,
                running_mean: np.ndarray | None, running_var: np.ndarray | None,
                momentum: float, use_batch_stats: bool) -> np.ndarray:
        work = accumulator(x.dtype)  # float16 statistics are taken in float32, as torch
        xw = x.astype(work, copy=False)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x.ndim, x.shape[1])
        if use_batch_stats:
            count = x.size // x.shape[1]
            if count < 2:
                raise InvalidValueError(f"batch norm in training mode needs more than one value "
                                        f"per channel, got input of shape {x.shape}; use a larger "
                                        "batch or call .eval()")
            mean = xw.mean(axis=axes, keepdims=True)
            centered = xw - mean
            var = np.mean(centered * centered, axis=axes, keepdims=True)
            if running_mean is not None and running_var is not None:
                # In place: the module's buffers are these arrays (as torch updates them
                # inside the kernel). The running variance is the unbiased one.
                unbiased = var.reshape(-1) * (count / (count - 1))
                running_mean *= 1 - momentum
                running_mean += momentum * mean.reshape(-1).astype(running_mean.dtype)
                running_var *= 1 - momentum
                running_var += momentum * unbiased.astype(running_var.dtype)
        else:
            if running_mean is None or running_var is None:
                raise InvalidValueError("batch norm without batch statistics needs running_mean "
                                        "and running_var")
            centered = xw - running_mean.astype(work).reshape(shape)
            var = running_var.astype(work).reshape(shape)
        self.inv_std = 1.0 / np.sqrt(var + eps)
        self.x_hat = centered * self.inv_std
        self.use_batch_stats, self.axes, self.shape = use_batch_stats, axes, shape
        self.weight = None if weight is None else weight.astype(work).reshape(shape)
        return _scale_and_shift(self.x_hat, self.weight, bias, shape).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs = self.needs_input_grad
        g = grad.astype(self.x_hat.dtype, copy=False)
        grads: list[np.ndarray | None] = [None] * len(needs)
        if needs[0]:
            d_hat = g if self.weight is None else g * self.weight
            if self.use_batch_stats:
                grads[0] = _through_statistics(d_hat, self.x_hat, self.inv_std, self.axes)
            else:  # running statistics are constants
                grads[0] = d_hat * self.inv_std
        if len(needs) > 1 and needs[1]:
            grads[1] = np.sum(g * self.x_hat, axis=self.axes)
        if len(needs) > 2 and needs[2]:
            grads[2] = np.sum(g, axis=self.axes)
        return tuple(grads)


class LayerNorm(Function):
    """Normalization of x over its last ``dims`` axes, with optional weight and bias of
    those axes' shape."""

    saved_inputs, saves_output = (), False

    def forward(self, x: np.ndarray, weight: np.ndarray | None = None,
                bias: np.ndarray | None = None, *, dims: int, eps: float) -> np.ndarray:
        work = accumulator(x.dtype)
        xw = x.astype(work, copy=False)
        axes = tuple(range(x.ndim - dims, x.ndim))
        mean = xw.mean(axis=axes, keepdims=True)
        centered = xw - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(var + eps)
        self.x_hat = centered * self.inv_std
        self.axes = axes
        self.weight = None if weight is None else weight.astype(work)
        return _scale_and_shift(self.x_hat, self.weight, bias).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs = self.needs_input_grad
        g = grad.astype(self.x_hat.dtype, copy=False)
        grads: list[np.ndarray | None] = [None] * len(needs)
        if needs[0]:
            d_hat = g if self.weight is None else g * self.weight
            grads[0] = _through_statistics(d_hat, self.x_hat, self.inv_std, self.axes)
        # Weight and bias gradients in x's shape: the engine sums the leading axes away.
        if len(needs) > 1 and needs[1]:
            grads[1] = g * self.x_hat
        if len(needs) > 2 and needs[2]:
            grads[2] = g
        return tuple(grads)


def _affine(weight: Any, bias: Any) -> list[Tensor]:
    if (weight is None) != (bias is None):
        raise InvalidValueError("pass both weight and bias, or neither (affine=False)")
    return [] if weight is None else [as_tensor(weight), as_tensor(bias)]


def batch_norm(x: Any, running_mean: np.ndarray | None = None,
               running_var: np.ndarray | None = None, weight: Any = None, bias: Any = None,
               training: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization of x (N, C) or (N, C, ...) per channel, as torch's ``batch_norm``.

    In training the batch's statistics normalize x, and ``running_mean``/``running_var``
    (float arrays of shape (C,), if given) are updated in place with ``momentum``
    (the variance unbiased); in eval the running statistics normalize x.

    >>> import numpy as np, minidl as mdl
    >>> x = mdl.tensor([[1.0], [3.0]])
    >>> mdl.nn.functional.batch_norm(x, eps=0.0)
    tensor([[-1.],
           [ 1.]])
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: input must be (N, C) or (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is not None and (not isinstance(stat, np.ndarray) or stat.shape != (channels,)):
            raise ShapeError(f"batch_norm: {name} must be a numpy array of shape ({channels},) "
                             f"for input of shape {x.shape}")
    params = _affine(weight, bias)
    for param in params:
        if param.shape != (channels,):
            raise ShapeError(f"batch_norm: weight and bias must have shape ({channels},) for "
                             f"input of shape {x.shape}, got {param.shape}")
    return BatchNorm.apply(x, *params, eps=eps, running_mean=running_mean,
                           running_var=running_var, momentum=momentum,
                           use_batch_stats=training)


def layer_norm(x: Any, normalized_shape: int | Sequence[int], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` axes, as torch's ``layer_norm``.

    >>> import minidl as mdl
    >>> mdl.nn.functional.layer_norm(mdl.tensor([[1.0, 3.0]]), 2, eps=0.0)
    tensor([[-1.,  1.]])
    """
    x = as_tensor(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) == 0 or x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ShapeError(f"layer_norm: normalized_shape {shape} must be the trailing axes of "
                         f"the input, whose shape is {x.shape}")
    params = _affine(weight, bias)
    for param in params:
        if param.shape != shape:
            raise ShapeError(f"layer_norm: weight and bias must have shape {shape}, got "
                             f"{param.shape}")
    return LayerNorm.apply(x, *params, dims=len(shape), eps=eps)
