"""sum-reduction: no 1/m anywhere. The cost is the sum of the per-example losses.

dJ/dl_i = 1 and leaves accumulate as computed, so dW and db are m times the
mean's; scale the learning rate by 1/m to train like the mean strategies.
"""

from __future__ import annotations

from minidl import RankCombine, StrategyInfo, hookimpl


@hookimpl
def minidl_strategy_info() -> StrategyInfo:
    return StrategyInfo(name="sum", aliases=("sum-reduction",),
                        description="summed cost; no 1/m; dW, db are m times the mean's")


@hookimpl
def minidl_cost_scale() -> float:
    return 1.0


@hookimpl
def minidl_loss_grad_scale() -> float:
    return 1.0


@hookimpl
def minidl_combine_ranks() -> RankCombine:
    return RankCombine(weight=1.0, mean=False)  # the sum over ranks, as over micro-batches
