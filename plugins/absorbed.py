"""absorbed-1/m, PyTorch's ``reduction="mean"``: the 1/m sits inside dZ.

The reported cost is the mean and backward is its plain calculus: dJ/dl_i = 1/m,
so dZ = (A - Y) / m, and leaves accumulate what backward computed. Accumulating
micro-batches therefore sums their means (PyTorch recipes then divide by their count).
"""

from __future__ import annotations

from minidl import RankCombine, StrategyInfo, hookimpl


@hookimpl
def minidl_strategy_info() -> StrategyInfo:
    return StrategyInfo(name="absorbed", aliases=("absorbed-1/m",),
                        description="mean cost; dZ = (A - Y) / m; leaves accumulate as computed")


@hookimpl
def minidl_cost_scale(count: float) -> float:
    return 1.0 / count


@hookimpl
def minidl_loss_grad_scale(count: float) -> float:
    return 1.0 / count


@hookimpl
def minidl_combine_ranks() -> RankCombine:
    # DistributedDataParallel's rule: the mean of the per-rank gradients. With uneven
    # shards this is a mean of means, not the mean over every example.
    return RankCombine(weight=1.0, mean=True)
