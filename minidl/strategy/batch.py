"""The batch reduction: per-example losses to one cost, under a normalization strategy.

This is the one op whose 1/m is not fixed calculus. It records the strategy active
when it ran, and when a backward pass goes through it, the engine asks it for the
pass's plan (``minidl.strategy.plan``): how to seed, how to write leaves.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError
from minidl.ops.elementwise import as_tensor
from minidl.strategy.plan import plan_pass
from minidl.strategy.registry import resolve_strategy
from minidl.tensor import Function, Tensor

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)

if TYPE_CHECKING:
    from minidl.strategy.binding import Strategy


class BatchReduce(Function):
    """cost = c * sum_i w_i l_i, where the strategy chooses c (1/N for a mean, 1 for a sum).

    Its backward is the calculus of that forward. A strategy that wants dJ/dl_i to
    be s * w_i instead (deferred: s = 1 while c = 1/N) seeds the whole pass with
    s / c, so every branch of the graph sees the same scaling.
    """

    saved_inputs, saves_output = (), False

    plan_pass = staticmethod(plan_pass)

    def forward(self, losses: np.ndarray, weights: np.ndarray | None,
                strategy: Strategy) -> np.ndarray:
        self.count = float(losses.size if weights is None else weights.sum())
        self.strategy = strategy
        self.cost_scale, self.seed_scale = strategy.scales(self.count)
        self.shape, self.dtype, self.weights = losses.shape, losses.dtype, weights
        terms = losses if weights is None else losses * weights
        # Scale before casting back: a float16 mean of large sums is finite when the sum is not.
        total = terms.sum(dtype=accumulator(losses.dtype))
        return np.asarray(total * self.cost_scale, dtype=losses.dtype)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        # A Python float: the seed may exceed the float16 range, its product does not.
        scale = float(grad) * self.cost_scale
        if self.weights is None:
            out = np.empty(self.shape, dtype=self.dtype)  # np.full, without its Python layer
            out.fill(scale)
            return out
        return (self.weights * scale).astype(self.dtype, copy=False)


def _example_weights(shape: tuple[int, ...], sample_weight: Any, mask: Any) -> np.ndarray | None:
    if sample_weight is None and mask is None:
        return None
    weights = None
    for name, given in (("sample_weight", sample_weight), ("mask", mask)):
        if given is None:
            continue
        array = np.asarray(given._data if isinstance(given, Tensor) else given)
        if array.shape != shape:
            raise ShapeError(f"batch_reduce: {name} has shape {array.shape}, the per-example "
                             f"losses have shape {shape}; give one value per example")
        if name == "mask" and array.dtype.kind != "b":
            raise InvalidTypeError(f"batch_reduce: mask must be boolean, got {array.dtype}")
        array = array.astype(np.float64)
        if name == "sample_weight" and (not np.isfinite(array).all() or (array < 0).any()):
            raise InvalidValueError("batch_reduce: sample_weight must be finite and non-negative")
        weights = array if weights is None else weights * array
    if weights is not None and weights.sum() <= 0:
        raise InvalidValueError("batch_reduce: the batch has zero total weight (every example "
                                "masked out or weighted 0), so its mean is undefined; skip "
                                "this batch")
    return weights  # float64: N must not round (or overflow) in the losses' dtype


def batch_reduce(losses: Any, sample_weight: Any = None, mask: Any = None,
                 strategy: Any = None) -> Tensor:
    """Reduce per-example losses to the cost, under the active normalization strategy.

    ``sample_weight`` weights each example and ``mask`` (bool) keeps some; the
    count N the strategy sees is then the sum of the weights, not m. ``strategy``
    (a name or ``Strategy``) overrides the active one for this call only.

    >>> import minidl as mdl
    >>> losses = mdl.tensor([1.0, 2.0, 6.0])
    >>> mdl.batch_reduce(losses), mdl.batch_reduce(losses, strategy="sum")
    (tensor(3.), tensor(9.))
    """
    losses = as_tensor(losses)
    if losses.size == 0:
        raise InvalidValueError("batch_reduce: the batch is empty")
    weights = _example_weights(losses.shape, sample_weight, mask)
    recorder = _tensor_module._recorder
    if recorder is not None and weights is not None:  # mdl.compile recomputes them per replay
        recorder.derived(weights, _example_weights, [losses.shape, sample_weight, mask])
    return BatchReduce.apply(losses, weights=weights, strategy=resolve_strategy(strategy))
