"""Fused, numerically stable primitives behind softmax and the losses.

Each loss returns per-example values (shape (m,)); the batch reduction that
turns them into a cost lives in ``minidl.strategy``. Fusing softmax with its
log and cross-entropy keeps logits of +-1000 finite in float32 and gives the
course's clean gradient (softmax - onehot, sigmoid - y) in one step.
"""

from __future__ import annotations

import numpy as np

from minidl.errors import InvalidValueError
from minidl.ops.elementwise import _sigmoid_from_exp, _times
from minidl.ops.embedding import first_out_of_range
from minidl.ops.rows import row_indices, row_max, row_sums
from minidl.tensor import Function


def _max(x: np.ndarray, axis: int) -> np.ndarray:
    return row_max(x) if axis in (-1, x.ndim - 1) else x.max(axis=axis, keepdims=True)


def _sum(x: np.ndarray, axis: int) -> np.ndarray:
    return row_sums(x) if axis in (-1, x.ndim - 1) else x.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - _max(x, axis)  # the largest exponent becomes 0
    return shifted - np.log(_sum(np.exp(shifted), axis))


def _trailing_mean(values: np.ndarray) -> np.ndarray:
    """Per-example values: the mean over every axis after the batch axis."""
    if values.ndim <= 1:
        return values
    if values.size == values.shape[0]:  # (m, 1, ...): already one value per example
        return values.reshape(values.shape[0])
    return values.reshape(values.shape[0], -1).mean(axis=1)


class LogSoftmax(Function):
    saved_inputs, saves_output = (), True

    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        self.out = _log_softmax(x, axis)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad - np.exp(self.out) * _sum(grad, self.axis)


class Softmax(Function):
    saved_inputs, saves_output = (), True

    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        self.axis = axis
        e = np.exp(x - _max(x, axis))
        self.out = e / _sum(e, axis)
        return self.out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        out = self.out
        return out * (grad - _sum(grad * out, self.axis))


class CrossEntropy(Function):
    """Per-example -log softmax(logits)[target] for logits (m, C), integer targets (m,)."""

    saved_inputs, saves_output = (1,), False

    def forward(self, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        classes = logits.shape[1]
        bad = first_out_of_range(target, classes)  # in the op, so compiled replays check too
        if bad is not None:
            raise InvalidValueError(f"cross_entropy: label {bad} is out of range for {classes} "
                                    f"classes (labels must be 0..{classes - 1})")
        rows = row_indices(logits.shape[0])
        shifted = logits - row_max(logits)  # the largest exponent is 0
        e = np.exp(shifted)
        total = row_sums(e)
        e /= total  # the softmax, into exp's fresh array: one exp, not two
        self.probs, self.rows, self.target = e, rows, target
        return np.log(total[:, 0]) - shifted[rows, target]  # -log_softmax at the target

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, None]:
        grad_logits = self.probs.copy()
        grad_logits[self.rows, self.target] -= 1  # softmax - onehot
        grad_logits *= grad[:, None]
        return grad_logits, None


class BinaryCrossEntropyWithLogits(Function):
    """Per-example binary cross-entropy of sigmoid(z) against targets y in [0, 1].

    Written as max(z, 0) - z y + log(1 + exp(-|z|)), which never overflows.
    """

    saved_inputs, saves_output = (0, 1), False

    def forward(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.z, self.y = z, y
        e = np.abs(z)
        if type(e) is np.ndarray:  # exp(-|z|) in one array (not a 0-d z's numpy scalar)
            self.e = np.exp(np.negative(e, out=e), out=e)
        else:
            self.e = np.exp(-e)
        # self.e is kept: backward's sigmoid reuses it.
        losses = np.maximum(z, 0)
        if type(losses) is np.ndarray and z.dtype == y.dtype and z.shape == y.shape:
            losses -= z * y  # into the fresh array: the same values, two arrays fewer
            losses += np.log1p(self.e)
        else:
            losses = losses - z * y + np.log1p(self.e)
        return _trailing_mean(losses)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        needs_z, needs_y = self.needs_input_grad
        per_element = grad.reshape(grad.shape + (1,) * (self.z.ndim - grad.ndim))
        per_example = self.z.size // max(grad.size, 1)
        if per_example != 1:
            per_element = per_element / per_example
        grad_z = None
        if needs_z:
            grad_z = _sigmoid_from_exp(self.z, self.e)
            if type(grad_z) is np.ndarray and grad_z.dtype == self.y.dtype \
                    and grad_z.shape == self.y.shape:
                grad_z -= self.y  # into the sigmoid's fresh array: the same values
            else:
                grad_z = grad_z - self.y
            grad_z = _times(per_element, grad_z)
        grad_y = per_element * -self.z if needs_y else None
        return grad_z, grad_y
