"""Gradient clipping, as ``torch.nn.utils``: call between ``backward()`` and ``step()``."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from minidl.errors import InvalidTypeError, InvalidValueError, NonFiniteGradientError
from minidl.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for index, param in enumerate(params):
        if not isinstance(param, Tensor):
            raise InvalidTypeError(f"parameter {index} is {type(param).__name__}, not a Tensor; "
                                   "pass model.parameters()")
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so their joint norm is at most ``max_norm``; return
    the norm before clipping. As torch: the factor is max_norm / (norm + 1e-6), capped
    at 1; the norm is computed in float64 over every gradient as one vector.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([0.0, 0.0])
    >>> w.grad = [3.0, 4.0]
    >>> clip_grad_norm_([w], max_norm=1.0)
    5.0
    >>> w.grad.round(4)
    array([0.6, 0.8], dtype=float32)
    """
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise InvalidValueError(f"max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise InvalidValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    params = _with_grads(parameters)
    if not params:
        return 0.0
    grads = [np.abs(p.grad.astype(np.float64)) for p in params]
    if norm_type == np.inf:
        total = max(float(g.max()) if g.size else 0.0 for g in grads)
    else:
        total = float(sum(float((g ** norm_type).sum()) for g in grads) ** (1 / norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise NonFiniteGradientError(f"the total gradient norm is {total}: some gradient "
                                     "holds NaN or inf, so clipping cannot repair it")
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for param in params:
            param.grad = param.grad * coefficient  # the setter keeps the example count
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value].

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([0.0, 0.0])
    >>> w.grad = [3.0, -0.5]
    >>> clip_grad_value_(w, 1.0); w.grad
    array([ 1. , -0.5], dtype=float32)
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise InvalidValueError(f"clip_value must be >= 0, got {clip_value}")
    for param in _with_grads(parameters):
        param.grad = np.clip(param.grad, -clip_value, clip_value)
