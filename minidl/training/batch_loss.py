"""What a trainer's loss gave back: per-example losses, or a cost some batch reduction made.

A trainer accepts a loss module or any function of ``(outputs, targets)``. It returns
either per-example losses (``reduction="none"``), which the trainer batch-reduces under
its strategy, or a scalar cost whose graph holds a batch reduction (a loss's default
``reduction="batch"``, or ``mdl.batch_reduce``, perhaps plus a penalty). A scalar no
batch reduction made (``.mean()``, a bare ``.sum()``) is plain calculus: no strategy
normalizes it and the optimizer would refuse to step, so the trainer refuses it first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidTypeError, InvalidValueError
from minidl.strategy import BatchReduce, Strategy, batch_reduce
from minidl.tensor import Tensor

PLAIN_SCALAR = (
    "the loss returned a scalar that no batch reduction made (e.g. ((p - y) ** 2).mean() "
    "or a bare .sum()): that is plain calculus, so no normalization strategy divides its "
    "gradient and the optimizer would refuse to step. Return per-example losses "
    "(reduction=\"none\"), use a minidl loss with its default reduction=\"batch\", or "
    "reduce with mdl.batch_reduce(losses)")


def cost_and_losses(result: Any, strategy: Strategy) -> tuple[Tensor, Tensor | None]:
    """The cost to backpropagate, and the per-example losses whose float64 sum and size
    are what to report; ``None`` for those when the cost is weighted or holds several
    batch reductions (report those with ``cost_and_total``, before backward).

    Reads the graph's structure, never a value, so it runs inside a compiled step.
    """
    if not isinstance(result, Tensor):
        raise InvalidTypeError(f"the loss must return a Tensor, got {type(result).__name__}")
    if result.ndim > 0:  # per-example losses
        return batch_reduce(result, strategy=strategy), result
    reductions = _batch_reductions(result)
    if not reductions:
        raise InvalidValueError(PLAIN_SCALAR)
    if len(reductions) == 1 and reductions[0].weights is None:
        return result, reductions[0].parents[0]
    return result, None


def cost_and_total(result: Any, strategy: Strategy) -> tuple[Tensor, float, float]:
    """The cost to backpropagate, and (sum of per-example losses, examples) to report.

    The reported pair is summed in float64: in float16 a batch's sum overflows past
    65,504 (about 95,000 losses of 0.69) though every loss is fine.
    """
    cost, losses = cost_and_losses(result, strategy)
    if losses is not None:
        return cost, float(losses.data.sum(dtype=np.float64)), float(losses.size)
    return cost, *weighted_total(cost)


def weighted_total(cost: Tensor) -> tuple[float, float]:
    """(sum of weighted per-example losses, total weight) of a cost whose batch
    reductions are weighted or several; read from the graph, so before backward."""
    sums = []
    for reduction in _batch_reductions(cost):
        losses, weights = reduction.parents[0].data, reduction.weights
        terms = losses if weights is None else losses * weights
        sums.append((float(terms.sum(dtype=np.float64)), reduction.count))
    if len(sums) == 1:  # one weighted reduction
        return sums[0]
    # Several (a multi-task cost): report the sum of their means, per example.
    examples = max(count for _, count in sums)
    return examples * sum(total / count for total, count in sums), examples


def _batch_reductions(root: Tensor) -> list[Any]:
    """Every ``BatchReduce`` node in ``root``'s graph (iteratively: graphs may be deep)."""
    found, stack, seen = [], [root._ctx], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if isinstance(fn, BatchReduce):
            found.append(fn)
        stack.extend(parent._ctx for parent in (fn.parents or ()))
    return found
