"""One micro-batch of a ``Trainer``: forward, loss and backward, compiled by default.

The part of a training step that ``mdl.compile`` can replay is the Python that only
runs ops: the model, the loss, the batch reduction and ``backward``. What reads values
(the reported loss, the divergence check, the metrics) and what talks to other
processes or the optimizer (the all-reduce, ``step``, ``zero_grad``, the hooks) stays
outside it, in the loop, so a replayed micro-batch never falls back for reading its
own loss. A replay is bit-identical to the eager micro-batch (``tests/training/
test_compiled_trainer.py``); a loss the recorder cannot replay runs eagerly, with the
reason in ``TrainStep.eager_reason``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from minidl.capture import CompiledStep, compile, not_replayable
from minidl.strategy import Strategy
from minidl.tensor import Tensor
from minidl.training.batch_loss import cost_and_losses, weighted_total

WEIGHTED = ("the loss is weighted (sample weights, a mask) or holds several batch "
            "reductions, whose reported sums are read from the graph before backward")


class MicroBatch(NamedTuple):
    """What one micro-batch gives the loop: the model's outputs, the cost it
    backpropagated, and the float64 sum of its per-example losses over ``count``."""

    outputs: Tensor
    cost: Tensor
    loss_sum: float
    count: float


class TrainStep:
    """``step(x, y)``: forward, loss and backward of one micro-batch (gradients
    accumulate into ``.grad``), replayed by ``mdl.compile`` when ``compiled``.

    >>> import minidl as mdl
    >>> net = mdl.nn.Linear(2, 1, generator=0)
    >>> step = TrainStep(net, mdl.nn.MSELoss(reduction="none"), mdl.active_strategy(),
    ...                  compiled=True)
    >>> x, y = mdl.tensor([[1.0, 2.0]]), mdl.tensor([[1.0]])
    >>> first, again = step(x, y), step(x, y)      # traced, then replayed
    >>> first.loss_sum == again.loss_sum, step.eager_reason
    (True, None)
    """

    def __init__(self, model: Callable[[Any], Tensor], loss: Callable[..., Any],
                 strategy: Strategy, compiled: bool) -> None:
        def forward_backward(x: Tensor, y: Any) -> tuple[Any, ...]:
            outputs = model(x)
            result = loss(outputs, y)
            cost, losses = cost_and_losses(result, strategy)
            reported = None
            if losses is None:  # weighted: sum what backward is about to free
                not_replayable(WEIGHTED)
                reported = weighted_total(cost)
            cost.backward()
            return outputs, cost, losses, reported

        #: The compiled micro-batch (None when the trainer runs eagerly).
        self.compiled: CompiledStep | None = compile(forward_backward) if compiled else None
        self._run = self.compiled if self.compiled is not None else forward_backward

    @property
    def eager_reason(self) -> str | None:
        """Why the micro-batches run eagerly (None while they are replayed)."""
        if self.compiled is None:
            return "compile is off"
        return self.compiled.eager_reason

    def __call__(self, x: Tensor, y: Any) -> MicroBatch:
        outputs, cost, losses, reported = self._run(x, y)
        if reported is None:
            loss_sum, count = float(losses.data.sum(dtype=np.float64)), float(losses.size)
        else:
            loss_sum, count = reported
        return MicroBatch(outputs, cost, loss_sum, count)
