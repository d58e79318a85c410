"""Every hook minidl calls, grouped by phase. Plugins implement them with ``@mdl.hookimpl``.

A *strategy* plugin decides where a batch mean's 1/m lives (see DESIGN, "Gradient
normalization"). It implements ``minidl_strategy_info`` and ``minidl_cost_scale``,
and optionally ``minidl_loss_grad_scale`` and ``minidl_leaf_grad``. Exactly one
strategy answers these hooks for a backward pass: minidl calls them on the active
strategy's plugin only. Any plugin may implement the observer hooks.

Hooks are called with keyword arguments; an implementation may accept any subset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from minidl.strategy import StrategyInfo
    from minidl.tensor import Tensor

PROJECT_NAME = "minidl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The hooks a strategy answers; only a plugin that describes a strategy may implement them.
STRATEGY_HOOKS = ("minidl_strategy_info", "minidl_cost_scale", "minidl_loss_grad_scale",
                  "minidl_leaf_grad")


# -------------------------------------------------------------------------------------------
# Strategy: describing itself
# -------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def minidl_strategy_info() -> StrategyInfo | None:
    """Describe the normalization strategy this plugin implements.

    Called once per plugin when the plugin manager indexes the installed strategies,
    and by ``minidl plugins``. Implementing it is what makes a plugin a strategy.

    :return: A :class:`minidl.StrategyInfo` with the strategy's name, aliases,
        one-line description and, if it takes options, their pydantic model.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------
# Strategy: the three places a 1/m can live
# -------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def minidl_cost_scale(count: float, options: BaseModel | None) -> float | None:
    """Choose the factor c of the reported cost J = c * sum_i w_i l_i.

    Called in the forward pass, each time per-example losses are batch-reduced
    (a loss's default reduction or ``mdl.batch_reduce``). Required of a strategy.

    :param count: N, the number of examples in the batch, or the sum of their
        sample weights (a mask counts the examples it keeps).
    :param options: The strategy's validated options model, or None if it has none.
    :return: c, a positive finite number: ``1 / count`` for a mean, ``1.0`` for a sum.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def minidl_loss_grad_scale(count: float, options: BaseModel | None) -> float | None:
    """Choose s, so that backward starts at the per-example losses with dJ/dl_i = s * w_i.

    Called in the forward pass beside ``minidl_cost_scale``. This gradient flows
    down into every dZ and dA. When s differs from c, the engine seeds the whole
    backward pass with s / c, so branches that skip the batch reduction (an L2
    penalty added to the cost) are scaled by the same policy as the data term.

    :param count: N, as for ``minidl_cost_scale``.
    :param options: The strategy's validated options model, or None.
    :return: s, a positive finite number; None (not implemented) means s = c,
        plain calculus of the reported cost.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def minidl_leaf_grad(grad: np.ndarray | None, count: float, new_grad: np.ndarray,
                     new_count: float, options: BaseModel | None) -> np.ndarray | None:
    """Compute the gradient to store in a leaf (dW, db) at the end of a backward pass.

    Called once per leaf that requires grad, for every backward pass whose graph
    contains a batch reduction. minidl keeps plain-calculus contributions (passes
    with no batch reduction) apart and adds them back afterwards, so ``grad`` here
    is only what strategies accumulated. Arrays are float32 for a float16 leaf (sums
    over a batch pass float16's 65,504 long before a mean does); minidl casts back.

    :param grad: The leaf's normalized gradient so far, or None when ``count`` is 0
        (cleared since the last step, or never normalized).
    :param count: Examples behind ``grad``: the sum of the N of every normalized pass
        that reached this leaf since it was cleared (a leaf missing from a pass's
        graph does not count that pass's examples).
    :param new_grad: What this pass computed for the leaf (a fresh array you may keep).
    :param new_count: N of this pass.
    :param options: The strategy's validated options model, or None.
    :return: An array of the leaf's shape; None (not implemented) means
        ``new_grad`` added to ``grad``.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------
# Observers
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_after_backward(root: Tensor, leaves: Sequence[Tensor],
                          grads: Sequence[np.ndarray], strategy: str | None) -> None:
    """Observe the leaf gradients a backward pass has just written.

    Called at the end of every ``backward()``, after the strategy wrote the leaves.

    :param root: The tensor ``backward()`` was called on.
    :param leaves: The leaves this pass reached, in the order they were written.
    :param grads: Their ``.grad`` arrays as read-only views (observers read, never change).
    :param strategy: The name of the strategy that normalized the pass, or None when
        no batch reduction took part (plain calculus).
    :return: Ignored.
    """


# -------------------------------------------------------------------------------------------
# Training (called by minidl.Trainer)
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_train_start(trainer: Any) -> None:
    """Called once before the first epoch.

    :param trainer: The :class:`minidl.Trainer` about to run (config, model, optimizer).
    :return: Ignored.
    """


@hookspec
def minidl_step_end(trainer: Any, step: int, loss: float) -> None:
    """Called after each optimizer step.

    :param trainer: The running trainer.
    :param step: Optimizer steps taken so far (1 after the first).
    :param loss: The reported cost of that step's batch (averaged over its micro-batches).
    :return: Ignored.
    """


@hookspec
def minidl_epoch_end(trainer: Any, epoch: int, metrics: dict[str, float]) -> bool | None:
    """Called after each epoch, with its metrics; can stop training early.

    :param trainer: The running trainer.
    :param epoch: Epochs finished so far (1 after the first).
    :param metrics: ``train_loss``, ``train_accuracy`` and, with a validation split,
        ``val_loss`` and ``val_accuracy``.
    :return: True to stop training after this epoch; None or False to go on.
    """


@hookspec
def minidl_train_end(trainer: Any, history: list[dict[str, float]]) -> None:
    """Called once after the last epoch (also when a plugin stopped training early).

    :param trainer: The trainer that ran.
    :param history: One metrics dict per epoch, in order.
    :return: Ignored.
    """
