"""Where a batch mean's 1/m goes: the batch reduction, the strategies, the pass plan.

Everything about normalized gradients lives in this package; the engine only asks
the batch reduction of a pass for a plan (``plan.py``). A strategy chooses c (the
reported cost J = c Σ w_i l_i), s (dJ/dl_i = s w_i) and how a leaf accumulates;
the pass is seeded with s / c, so every branch is scaled alike. The built-ins:

* **deferred** (Andrew Ng's course): the cost is the mean (c = 1/N); the pass is
  seeded with N so that, after the reduction's 1/N, dJ/dl_i = 1 and dZ = A − Y;
  each leaf gets its raw sum divided by the N accumulated into it so far, so
  ``.grad`` is the exact mean over every example since it was last cleared.
* **absorbed** (PyTorch's ``reduction="mean"``): the cost is the mean, the seed is 1,
  dJ/dl_i = 1/N, so dZ = (A − Y)/N, and leaves add what backward computed
  (accumulated micro-batches sum their means).
* **sum**: the cost is the sum, the seed is 1, dJ/dl_i = 1, and leaves add what
  backward computed, so dW and db are N times the mean's.

Float16 passes that are seeded with N (deferred) carry their gradients in float32,
and every leaf accumulates in float32, cast back once written.
"""

from minidl.strategy.batch import BatchReduce, batch_reduce
from minidl.strategy.binding import Strategy
from minidl.strategy.registry import (
                                           DEFAULT_STRATEGY,
                                           NormalizationConfig,
                                           active_strategy,
                                           describe_strategies,
                                           normalization,
                                           resolve_strategy,
                                           strategy_index,
)

__all__ = ["BatchReduce", "DEFAULT_STRATEGY", "NormalizationConfig", "Strategy",
           "active_strategy", "batch_reduce", "describe_strategies", "normalization",
           "resolve_strategy", "strategy_index"]
