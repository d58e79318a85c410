"""``minidl compare --ranks 1,2,3``: one batch split over R ranks, against one process.

The batch is the config's training data, shuffled with its seed. For each R and
strategy, R copies of the same float64 network each take a backward
pass on their shard of one batch; their gradients are combined by the same packing
and unpacking a real all-reduce uses (``minidl.distributed.simulate_ranks``), and
compared with one process doing the whole batch under that strategy.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minidl.builders import build_data, build_model
from minidl.compare.gradients import relative_difference
from minidl.config import Config
from minidl.distributed import shard_bounds, simulate_ranks
from minidl.strategy import batch_reduce, resolve_strategy
from minidl.tensor import from_numpy


def uneven_bounds(m: int, world_size: int) -> list[int]:
    """Shards in the ratio 1 : 2 : ... : R (rank r holds (r + 1) parts), as boundaries.

    >>> uneven_bounds(400, 3)
    [0, 67, 200, 400]
    """
    parts = world_size * (world_size + 1) // 2
    return [round(m * (r * (r + 1) // 2) / parts) for r in range(world_size + 1)]


def even_bounds(m: int, world_size: int) -> list[int]:
    """The trainer's split: sizes differ by at most one."""
    return [0] + [shard_bounds(m, r, world_size)[1] for r in range(world_size)]


def compare_ranks(config: Config, ranks: Sequence[int], strategies: Sequence[str]
                  ) -> dict[str, Any]:
    """Relative difference from the single-process gradient, per R, split and strategy."""
    rng = np.random.default_rng(config.train.seed)
    data = build_data(config.data, config.loss.name, config.model.outputs, rng)
    model = build_model(config.model, data.features, data.task.outputs, rng, rng, np.float64)
    state = model.state_dict()
    order = rng.permutation(len(data.train))  # shuffled, as the trainer's batches are: built-in
    x, y = data.train.features[order], data.train.targets[order]  # sets come sorted by class
    m = len(x)

    def gradients(rows: slice, strategy: Any) -> list[Any]:
        copy = build_model(config.model, data.features, data.task.outputs, rng, rng,
                           np.float64)
        copy.load_state_dict(state)
        leaves = list(copy.parameters())
        if rows.stop > rows.start:
            targets = y[rows] if y.dtype.kind in "iu" else y[rows].astype(np.float64)
            losses = data.task.loss(copy(from_numpy(x[rows].astype(np.float64))),
                                    from_numpy(targets), reduction="none")
            batch_reduce(losses, strategy=strategy).backward()
        return leaves

    rows = []
    for world_size in ranks:
        for split, bounds in (("uneven", uneven_bounds(m, world_size)),
                              ("even", even_bounds(m, world_size))):
            if world_size == 1 and split == "even":
                continue
            row: dict[str, Any] = {"ranks": world_size, "split": split,
                                   "shards": np.diff(bounds).tolist(), "rel_diff": {}}
            for name in strategies:
                strategy = resolve_strategy(name)
                whole = [leaf.grad for leaf in gradients(slice(0, m), strategy)]
                shards = [gradients(slice(bounds[r], bounds[r + 1]), strategy)
                          for r in range(world_size)]
                combined = (simulate_ranks(shards, strategy) if world_size > 1
                            else [leaf.grad for leaf in shards[0]])
                row["rel_diff"][strategy.name] = max(
                    relative_difference(got, want) for got, want in zip(combined, whole))
            rows.append(row)
    return {"m": m, "strategies": [resolve_strategy(n).name for n in strategies], "rows": rows}


def render_ranks(result: dict[str, Any]) -> str:
    """The table ``minidl compare --ranks`` prints (within 100 columns)."""
    from minidl.compare.report import note, table

    names = result["strategies"]
    body = [[str(r["ranks"]), r["split"], " + ".join(map(str, r["shards"])),
             *[f"{r['rel_diff'][n]:.2e}" for n in names]] for r in result["rows"]]
    return "\n".join([
        table(["R", "split", "shards", *names], body, keep=3),
        note(f"One batch of m = {result['m']} split over R ranks (float64): the largest "
             "relative difference of dW, db from one process doing the whole batch under the "
             "same strategy. absorbed averages the ranks' means (as DDP does), so uneven "
             "shards bias it; deferred and sum are exact to rounding.")])
