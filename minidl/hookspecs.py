"""Every hook minidl calls, grouped by phase. Plugins implement them with ``@mdl.hookimpl``.

A *strategy* plugin decides where a batch mean's 1/m lives. For a batch of N examples
it chooses up to three things: the reported cost J = c * sum_i w_i l_i
(``minidl_cost_scale``, required), the gradient dJ/dl_i = s * w_i that starts
backward at the per-example losses and flows into every dZ and dA
(``minidl_loss_grad_scale``, default s = c), and how each leaf's ``.grad`` (dW, db)
combines passes (``minidl_leaf_grad``, default: add), and, in data-parallel
training, how the ranks' gradients combine (``minidl_combine_ranks``). The built-ins: ``deferred``
(c = 1/N, s = 1, leaves keep the running mean over all examples), ``absorbed``
(c = s = 1/N, leaves add), ``sum`` (c = s = 1, leaves add). A strategy also
implements ``minidl_strategy_info``, which is what makes a plugin a strategy.

A strategy is checked with ``minidl.testing.check_strategy`` (its formulas, and its
gradients against finite differences) and compared with the built-ins by
``minidl compare --strategies ...``; ``minidl new-strategy NAME`` writes a package
to start from.

How the hooks are called:

* Strategy hooks are called on the *active strategy's plugin only*, never on every
  registered plugin: exactly one strategy normalizes a backward pass, and another
  strategy's answer must not leak in. So none of them is ``firstresult``: there is
  only ever one result. (``minidl_strategy_info`` is called on each strategy plugin
  in turn, when minidl indexes the installed strategies.)
* Observer hooks (``minidl_after_backward`` and the training hooks) are called on
  every plugin that implements them, in pluggy's order; their results are
  collected, and only ``minidl_epoch_end`` looks at them (any True stops training).
* ``minidl_models`` is called on every plugin that implements it; their dicts of
  named model factories are merged (a name claimed twice is an error).

Hooks are called with keyword arguments; an implementation may accept any subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pluggy
from pydantic import BaseModel

from minidl.errors import InvalidTypeError

if TYPE_CHECKING:
    from minidl.tensor import Tensor

PROJECT_NAME = "minidl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The hooks a strategy answers; only a plugin that describes a strategy may implement them.
STRATEGY_HOOKS = ("minidl_strategy_info", "minidl_cost_scale", "minidl_loss_grad_scale",
                  "minidl_leaf_grad", "minidl_combine_ranks")


@dataclass(frozen=True)
class StrategyInfo:
    """How a strategy plugin describes itself, returned by ``minidl_strategy_info``.

    >>> from pydantic import BaseModel
    >>> class Options(BaseModel):
    ...     power: float = 0.5
    >>> StrategyInfo(name="rms", description="divide by m ** power", options=Options).name
    'rms'
    """

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: A pydantic model of the strategy's options, validated with the config.
    options: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidTypeError(f"StrategyInfo.name must be a non-empty str, got {self.name!r}")
        aliases = self.aliases
        if not isinstance(aliases, tuple) or not all(isinstance(a, str) and a for a in aliases):
            raise InvalidTypeError("StrategyInfo.aliases must be a tuple of names, got "
                                   f"{aliases!r}")
        if not isinstance(self.description, str):
            raise InvalidTypeError("StrategyInfo.description must be a str, got "
                                   f"{self.description!r}")
        if self.options is not None and not (isinstance(self.options, type)
                                             and issubclass(self.options, BaseModel)):
            raise InvalidTypeError("StrategyInfo.options must be a pydantic BaseModel subclass (or "
                                   f"None), got {self.options!r}")


@dataclass(frozen=True)
class RankCombine:
    """How one rank's gradient of a leaf enters the sum over ranks (``minidl_combine_ranks``).

    Every rank adds ``weight * grad`` (and ``weight``) into one all-reduce; the combined
    gradient is ``sum_r weight_r * grad_r``, divided by ``sum_r weight_r`` when ``mean``.

    >>> RankCombine(weight=3.0, mean=True)      # deferred: weigh by examples, then divide
    RankCombine(weight=3.0, mean=True)
    """

    weight: float = 1.0
    mean: bool = False

    def __post_init__(self) -> None:
        weight = self.weight
        if (isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating,
                                                                np.integer))
                or not np.isfinite(weight) or weight < 0):
            raise InvalidTypeError(f"RankCombine.weight must be a finite number >= 0, got "
                                   f"{weight!r}")
        if not isinstance(self.mean, bool):
            raise InvalidTypeError(f"RankCombine.mean must be a bool, got {self.mean!r}")


#: What a strategy that does not implement ``minidl_combine_ranks`` gets: ranks add up,
#: as micro-batches do under a strategy without ``minidl_leaf_grad``.
SUM_OVER_RANKS = RankCombine(weight=1.0, mean=False)


# -------------------------------------------------------------------------------------------
# Strategy: describing itself
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_strategy_info() -> StrategyInfo:
    """Describe the normalization strategy this plugin implements.

    Called on each strategy plugin when minidl indexes the installed strategies
    (after any plugin is registered or unregistered), and by ``minidl plugins``.
    Implementing it is what makes a plugin a strategy.

    :return: A :class:`minidl.StrategyInfo` with the strategy's name, aliases,
        one-line description and, if it takes options, their pydantic model.
    """


# -------------------------------------------------------------------------------------------
# Strategy: the three places a 1/m can live
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_cost_scale(count: float, options: BaseModel | None) -> float | None:
    """Choose the factor c of the reported cost J = c * sum_i w_i l_i.

    Called on the active strategy's plugin in the forward pass, each time
    per-example losses are batch-reduced (a loss's default reduction or
    ``mdl.batch_reduce``). Required of a strategy.

    :param count: N, the number of examples in the batch, or the sum of their
        sample weights (a mask counts the examples it keeps).
    :param options: The strategy's validated options model, or None if it has none.
    :return: c, a positive finite number: ``1 / count`` for a mean, ``1.0`` for a sum.
    """


@hookspec
def minidl_loss_grad_scale(count: float, options: BaseModel | None) -> float | None:
    """Choose s, so that backward starts at the per-example losses with dJ/dl_i = s * w_i.

    Called on the active strategy's plugin, beside ``minidl_cost_scale``. This gradient flows
    down into every dZ and dA. When s differs from c, the engine seeds the whole
    backward pass with s / c, so branches that skip the batch reduction (an L2
    penalty added to the cost) are scaled by the same policy as the data term.

    :param count: N, as for ``minidl_cost_scale``.
    :param options: The strategy's validated options model, or None.
    :return: s, a positive finite number; None (not implemented) means s = c,
        plain calculus of the reported cost.
    """


@hookspec
def minidl_leaf_grad(grad: np.ndarray | None, count: float, new_grad: np.ndarray,
                     new_count: float, options: BaseModel | None) -> np.ndarray | None:
    """Compute the gradient to store in a leaf (dW, db) at the end of a backward pass.

    Called on the strategy's plugin once per leaf that requires grad, for every
    backward pass whose graph contains a batch reduction made under that strategy.
    minidl keeps plain-calculus contributions (passes with no batch reduction) apart
    and adds them back afterwards, so ``grad`` here is only what strategies accumulated.
    Arrays are float32 for a float16 leaf (sums over a batch pass float16's 65,504 long
    before a mean does); minidl casts back.

    :param grad: The leaf's normalized gradient so far, or None when ``count`` is 0
        (cleared since the last step, or never normalized).
    :param count: Examples behind ``grad``: the sum of the N of every normalized pass
        that reached this leaf since it was cleared (a leaf missing from a pass's
        graph does not count that pass's examples).
    :param new_grad: What this pass computed for the leaf, with dJ/dl_i = s * w_i (the
        raw sum over the batch when s = 1); a fresh array you may keep.
    :param new_count: N of this pass.
    :param options: The strategy's validated options model, or None.
    :return: An array of the leaf's shape; None (not implemented) means
        ``new_grad`` added to ``grad``.

    The running mean over every example accumulated (``deferred``, with s = 1, so
    ``new_grad`` holds the pass's raw sum)::

        @mdl.hookimpl
        def minidl_leaf_grad(grad, count, new_grad, new_count):
            if grad is None:
                return new_grad * (1.0 / new_count)
            return (grad * count + new_grad) * (1.0 / (count + new_count))
    """


# -------------------------------------------------------------------------------------------
# Strategy: where the 1/m goes across ranks (data-parallel training)
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_combine_ranks(count: float, world_size: int,
                         options: BaseModel | None) -> RankCombine | None:
    """Choose how a leaf's gradient on this rank enters the combination over all ranks.

    Called on the active strategy's plugin, on every rank, once per leaf and optimizer
    step, when data-parallel training combines the ranks' gradients
    (``minidl.distributed.allreduce_gradients``), before the step's one all-reduce. Each
    rank adds ``weight * .grad`` and ``weight`` to a buffer that is summed over ranks;
    the leaf then holds ``sum_r weight_r * grad_r``, divided by ``sum_r weight_r`` when
    ``mean`` is True, on every rank alike. The built-ins: ``deferred`` weighs by
    ``count`` and divides (the exact mean over every example on every rank), ``absorbed``
    weighs 1 and divides (DistributedDataParallel's mean of the per-rank means), ``sum``
    weighs 1 and adds.

    :param count: N of this leaf on this rank: the examples (or total weight) accumulated
        into its ``.grad`` since it was cleared (``Tensor.grad_count``); 0 if this rank's
        shard did not reach it.
    :param world_size: The number of ranks taking part (at least 2: one process
        combines nothing).
    :param options: The strategy's validated options model, or None.
    :return: A :class:`minidl.RankCombine`; None (not implemented) means
        ``RankCombine(weight=1.0, mean=False)``: ranks add up, as micro-batches do under
        a strategy without ``minidl_leaf_grad``, so R ranks give what one process gives
        accumulating the same R shards. A strategy that implements ``minidl_leaf_grad``
        must implement this hook too (minidl cannot guess how its running values combine).
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
# Models
# -------------------------------------------------------------------------------------------

@hookspec
def minidl_models() -> dict[str, Any]:
    """Provide named models, so config can say ``model.name = "lenet"``.

    Called on every plugin that implements it whenever minidl looks a model name up:
    building the model of a config (``minidl train``), loading a saved model whose
    factory is a name (``mdl.load``, ``minidl predict``), listing the known names in an
    error. A name two plugins claim, or a built-in name (``mlp``), is an error.

    :return: A dict of model name to factory: a callable returning an ``nn.Module``.
        It receives ``model.options`` as keyword arguments (validated by the pydantic
        model it declares as ``Options``, else by its signature) and, if its signature
        asks for them, ``inputs``, ``outputs``, ``generator`` and ``dtype`` from the run.
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
