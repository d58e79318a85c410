"""``Standardize``: inputs scaled as the training data was, kept with the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidValueError, ShapeError
from minidl.nn.module import Module
from minidl.tensor import Tensor, from_numpy


class Standardize(Module):
    """(x - mean) / std per feature, with the training split's statistics as buffers.

    A model saved with input scaling (``minidl train`` with ``data.standardize``) loads
    as ``Sequential(Standardize(mean, std, dtype), model)``, so it takes raw features.
    A constant input is scaled in float64 and cast once to ``dtype`` (default: the
    input's), exactly as the training data was: give it raw float64 features.

    >>> import minidl as mdl
    >>> scale = mdl.nn.Standardize(mean=[1.0, 10.0], std=[2.0, 5.0])
    >>> scale(mdl.tensor([[3.0, 0.0]]))
    tensor([[ 1., -2.]])
    """

    def __init__(self, mean: Any, std: Any, dtype: Any = None) -> None:
        super().__init__()
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if mean.shape != std.shape or mean.ndim != 1:
            raise ShapeError(f"Standardize: mean and std must be vectors of one value per "
                             f"feature, got shapes {mean.shape} and {std.shape}")
        if not (np.isfinite(std).all() and (std > 0).all()):
            raise InvalidValueError("Standardize: std must be finite and positive")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.dtype = None if dtype is None else np.dtype(dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != self.mean.shape:
            raise ShapeError(f"Standardize: the input has {x.shape[-1] if x.ndim else 0} "
                             f"features per example, the model was trained on "
                             f"{len(self.mean)}")
        if not x.requires_grad:  # as the training split was scaled: in float64, cast once
            scaled = (x.data.astype(np.float64, copy=False) - self.mean) / self.std
            return from_numpy(scaled.astype(self.dtype or x.dtype, copy=False))
        return (x - self.mean.astype(x.dtype)) / self.std.astype(x.dtype)

    def extra_repr(self) -> str:
        return f"features={len(self.mean)}"
