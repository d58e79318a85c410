"""Metrics as small functions of (outputs, targets): numpy arrays or Tensors in, a Python
float out, computed in float64 and never recorded by autograd. Each fits a trainer's
``metrics`` (a callable of predictions and targets).

>>> import numpy as np
>>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidValueError, ShapeError

__all__ = ["accuracy", "mean_absolute_error", "top_k_accuracy"]


def _array(value: Any) -> np.ndarray:
    return np.asarray(getattr(value, "data", value))  # a Tensor's array, or the array


def _check_rows(outputs: np.ndarray, targets: np.ndarray, name: str) -> None:
    if outputs.ndim == 0 or targets.ndim == 0 or len(outputs) != len(targets):
        raise ShapeError(f"{name}: outputs of shape {outputs.shape} and targets of shape "
                         f"{targets.shape} need one row per example, the same number of rows")
    if len(outputs) == 0:
        raise ShapeError(f"{name}: no examples (empty outputs)")


def accuracy(outputs: Any, targets: Any, threshold: float = 0.5) -> float:
    """Share of examples predicted right.

    - Several columns (m, k): the class is the argmax (logits or probabilities);
      targets are labels (m,) or one-hot/probability rows (m, k).
    - One column (m,) or (m, 1): binary, predicted 1 where output > ``threshold``
      (0.5 for probabilities; pass 0.0 for logits); targets are 0/1 (> 0.5 is 1).

    >>> import numpy as np
    >>> accuracy(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]), np.eye(3)[[0, 1]])
    0.5
    >>> accuracy(np.array([0.9, 0.4, 0.6]), np.array([1, 0, 0]))
    0.6666666666666666
    >>> accuracy(np.array([[1.2], [-0.3]]), np.array([[1.0], [0.0]]), threshold=0.0)
    1.0
    """
    outputs, targets = _array(outputs), _array(targets)
    _check_rows(outputs, targets, "accuracy")
    columns = int(np.prod(outputs.shape[1:])) if outputs.ndim > 1 else 1
    if columns > 1:
        predicted = outputs.reshape(len(outputs), -1).argmax(axis=1)
        if targets.ndim > 1 and int(np.prod(targets.shape[1:])) > 1:
            if targets.shape != outputs.shape:
                raise ShapeError(f"accuracy: one-hot targets of shape {targets.shape} do not "
                                 f"match outputs of shape {outputs.shape}")
            labels = targets.reshape(len(targets), -1).argmax(axis=1)
        else:
            labels = targets.reshape(len(targets))
        return float(np.mean(predicted == labels))
    if targets.size != len(targets):
        raise ShapeError(f"accuracy: binary outputs (one column, shape {outputs.shape}) need "
                         f"one 0/1 target per example, got targets of shape {targets.shape}")
    predicted = outputs.reshape(-1) > threshold
    return float(np.mean(predicted == (targets.reshape(-1) > 0.5)))


def top_k_accuracy(outputs: Any, labels: Any, k: int = 5) -> float:
    """Share of examples whose label is among the ``k`` highest scores of its row.
    Ties count in the label's favour: it is in the top k when fewer than k classes
    score strictly higher.

    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    >>> top_k_accuracy(scores, np.array([2, 2]), k=2)
    0.5
    """
    outputs, labels = _array(outputs), _array(labels)
    _check_rows(outputs, labels, "top_k_accuracy")
    if outputs.ndim != 2:
        raise ShapeError(f"top_k_accuracy: outputs must be scores of shape (m, classes), got "
                         f"{outputs.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidValueError(f"top_k_accuracy: k must be a positive integer, got {k!r}")
    labels = labels.reshape(-1)
    if labels.size != len(outputs) or labels.dtype.kind not in "iu" or (
            labels.min() < 0 or labels.max() >= outputs.shape[1]):
        last = outputs.shape[1] - 1
        raise InvalidValueError(f"top_k_accuracy: labels must be integers in 0..{last}, one "
                                "per example")
    label_scores = outputs[np.arange(len(outputs)), labels]
    higher = (outputs > label_scores[:, None]).sum(axis=1)
    return float(np.mean(higher < k))


def mean_absolute_error(outputs: Any, targets: Any) -> float:
    """Mean of |output - target| over every entry (in float64).

    >>> import numpy as np
    >>> mean_absolute_error(np.array([[1.0], [2.0]]), np.array([1.5, 1.0]))
    0.75
    """
    outputs, targets = _array(outputs), _array(targets)
    _check_rows(outputs, targets, "mean_absolute_error")
    if outputs.shape != targets.shape:
        if outputs.size != targets.size:
            raise ShapeError(f"mean_absolute_error: outputs of shape {outputs.shape} and "
                             f"targets of shape {targets.shape} hold different numbers of values")
        targets = targets.reshape(outputs.shape)  # (m,) against (m, 1)
    difference = outputs.astype(np.float64) - targets.astype(np.float64)
    return float(np.mean(np.abs(difference)))
