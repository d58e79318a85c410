"""Activations, softmax and losses as functions, as ``torch.nn.functional``.

Every loss computes per-example losses l_1..l_m. ``reduction="batch"`` (the
default) turns them into the cost through the active normalization strategy
(mean under ``deferred`` and ``absorbed``, sum under ``sum``); ``"none"``
returns the per-example vector so you can reduce it yourself
(``mdl.batch_reduce``). There is deliberately no ``"mean"``: where the 1/m
goes is the strategy's decision, not the loss's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError
from minidl.ops import linear, relu, sigmoid, tanh
from minidl.ops.activation import gelu, leaky_relu
from minidl.ops.conv import conv1d, conv2d
from minidl.ops.elementwise import as_tensor
from minidl.ops.embedding import embedding
from minidl.ops.losses import BinaryCrossEntropyWithLogits, CrossEntropy, LogSoftmax, Softmax
from minidl.ops.norm import batch_norm, layer_norm
from minidl.ops.pool import adaptive_avg_pool2d, avg_pool2d, flatten, max_pool2d
from minidl.strategy import batch_reduce
from minidl.tensor import Tensor

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits",
           "conv1d", "conv2d", "cross_entropy", "embedding", "flatten", "gelu", "layer_norm",
           "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss", "relu", "sigmoid",
           "softmax", "tanh"]

REDUCTIONS = ("batch", "none")


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, finite for any finite logits.

    >>> import minidl as mdl
    >>> mdl.nn.functional.softmax(mdl.tensor([0.0, 1000.0]))
    tensor([0., 1.])
    """
    return Softmax.apply(as_tensor(x), axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed without overflow or log(0).

    >>> import minidl as mdl
    >>> mdl.nn.functional.log_softmax(mdl.tensor([0.0, 1000.0]))
    tensor([-1000.,     0.])
    """
    return LogSoftmax.apply(as_tensor(x), axis=axis)


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is "batch" or "none"."""
    if reduction in REDUCTIONS:
        return
    hint = (" (minidl's batch reduction is the strategy's choice: use reduction='batch' and "
            "select the strategy, e.g. with mdl.normalization('sum'))"
            if reduction in ("mean", "sum") else "")
    raise InvalidValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}{hint}")


def _reduce(losses: Tensor, reduction: str, sample_weight: Any, mask: Any,
            strategy: Any) -> Tensor:
    check_reduction(reduction)
    if reduction == "none":
        return losses
    return batch_reduce(losses, sample_weight=sample_weight, mask=mask, strategy=strategy)


def _check_batch(name: str, prediction: Tensor, target: Tensor) -> None:
    if prediction.ndim == 0 or target.shape[:1] != prediction.shape[:1]:
        raise ShapeError(f"{name}: input has shape {prediction.shape} and target "
                         f"{target.shape}; both need the batch on their first axis")


def cross_entropy(logits: Any, target: Any, reduction: str = "batch", sample_weight: Any = None,
                  mask: Any = None, strategy: Any = None) -> Tensor:
    """Softmax cross-entropy of logits (m, C) against integer class labels (m,).

    >>> import minidl as mdl
    >>> logits = mdl.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> mdl.nn.functional.cross_entropy(logits, mdl.tensor([0, 1], dtype="int64"))
    tensor(0.12692805)
    """
    logits, target = as_tensor(logits), as_tensor(target)
    if logits.ndim != 2:
        raise ShapeError(f"cross_entropy: logits must have shape (m, classes), got {logits.shape}")
    _check_batch("cross_entropy", logits, target)
    labels = target._data
    if target.ndim != 1:
        # Checked before any conversion: (m, 1) labels would otherwise broadcast against
        # the (m,) losses into an (m, m) cost.
        raise ShapeError(f"cross_entropy: target must be class labels of shape (m,) = "
                         f"({logits.shape[0]},), got shape {target.shape}; flatten it, e.g. "
                         "target.reshape(-1)")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise InvalidTypeError(f"cross_entropy: target must be integer class labels of "
                                   f"shape (m,), got {labels.dtype} of shape {target.shape}")
    # The target tensor itself when its labels needed no conversion: a second tensor over
    # the same array would look, to in-place safety, like someone else holding it.
    labels_tensor = target if labels is target._data else Tensor._from_op(labels, None)
    losses = CrossEntropy.apply(logits, labels_tensor)
    return _reduce(losses, reduction, sample_weight, mask, strategy)


def _matching_target(loss: str, what: str, x: Any, target: Any) -> tuple[Tensor, Tensor]:
    """``x`` and ``target`` as tensors of one shape, a constant target in ``x``'s dtype."""
    x = as_tensor(x)
    target = x._lift(target)
    if target.shape != x.shape:
        raise ShapeError(f"{loss}: {what} has shape {x.shape} but target has shape "
                         f"{target.shape}; they must match")
    _check_batch(loss, x, target)
    if target.dtype != x.dtype and not target.requires_grad:
        target = Tensor._from_op(target._data.astype(x.dtype), None)
    return x, target


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "batch",
                                     sample_weight: Any = None, mask: Any = None,
                                     strategy: Any = None) -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against 0/1 targets, stable for any logit.

    Per-example loss is the mean over all axes after the first, so (m, 1) outputs
    give m losses. Its gradient at the logits is sigmoid(z) - y: the course's A - Y.

    >>> import minidl as mdl
    >>> z = mdl.tensor([[0.0], [0.0]])
    >>> mdl.nn.functional.binary_cross_entropy_with_logits(z, mdl.tensor([[1.0], [0.0]]))
    tensor(0.6931472)
    """
    logits, target = _matching_target("binary_cross_entropy_with_logits", "logits", logits,
                                      target)
    losses = BinaryCrossEntropyWithLogits.apply(logits, target)
    return _reduce(losses, reduction, sample_weight, mask, strategy)


def mse_loss(prediction: Any, target: Any, reduction: str = "batch", sample_weight: Any = None,
             mask: Any = None, strategy: Any = None) -> Tensor:
    """Squared error; per-example loss is the mean over all axes after the first.

    >>> import minidl as mdl
    >>> mdl.nn.functional.mse_loss(mdl.tensor([1.0, 3.0]), mdl.tensor([0.0, 0.0]))
    tensor(5.)
    """
    prediction, target = _matching_target("mse_loss", "prediction", prediction, target)
    diff = prediction - target
    squared = diff * diff
    if squared.ndim > 1:
        squared = squared.reshape(squared.shape[0], -1).mean(axis=1)
    return _reduce(squared, reduction, sample_weight, mask, strategy)
