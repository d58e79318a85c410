"""rms: a custom minidl strategy that divides the summed cost by m ** power.

power = 0.5 (the default) divides by sqrt(m), between ``sum`` (power 0) and the
mean strategies (power 1). Backward is plain calculus of that cost, so dJ/dl_i =
m ** -power, and leaves accumulate as computed (minidl's default).

Select it with ``strategy = "rms"`` in config, or ``mdl.normalization("rms", power=0.25)``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import minidl as mdl


class RmsOptions(BaseModel):
    power: float = Field(0.5, ge=0.0, le=1.0, description="divide the summed cost by m**power")


@mdl.hookimpl
def minidl_strategy_info() -> mdl.StrategyInfo:
    return mdl.StrategyInfo(name="rms", aliases=("root-mean",), options=RmsOptions,
                            description="summed cost divided by m ** power (sqrt(m) by default)")


@mdl.hookimpl
def minidl_cost_scale(count: float, options: RmsOptions) -> float:
    return count ** -options.power
