"""``DataParallel``: the few calls a training loop makes to train over every rank.

In one process each call returns at once and changes nothing, so a loop that makes
them trains exactly as before. Over R ranks (``mpiexec -n R``):

* ``start(model)``: rank 0's parameters and buffers, broadcast to every rank;
* ``batches(loader)``: this rank's shard of each global (micro-)batch;
* ``combine(parameters, strategy)``: before each optimizer step, the step's one
  all-reduce of every gradient, combined as the strategy decides;
* ``sum_over_ranks(...)``: metric sums (loss, correct, seen) over every rank;
* ``is_writer``: only rank 0 prints and writes files.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from minidl.distributed.comm import LocalGroup, MPIGroup, world
from minidl.distributed.gradients import combine_gradients, unique_leaves
from minidl.distributed.sharding import shard_batches

if TYPE_CHECKING:
    from minidl.strategy.binding import Strategy
    from minidl.tensor import Tensor


class DataParallel:
    """The ranks of a data-parallel run, as the training loop uses them.

    >>> ranks = DataParallel()      # not under mpiexec: one rank, every call a no-op
    >>> ranks.size, ranks.is_writer, ranks.sum_over_ranks(2.0, 3.0)
    (1, True, (2.0, 3.0))
    """

    def __init__(self, group: LocalGroup | MPIGroup | None = None) -> None:
        self.group = group if group is not None else world()
        self.rank, self.size = self.group.rank, self.group.size
        self.is_writer = self.rank == 0
        #: Bytes sent and seconds spent in the gradient all-reduce so far (for benchmarks).
        self.bytes_sent = 0
        self.allreduce_seconds = 0.0

    def start(self, model: Any) -> None:
        """Give every rank rank 0's parameters and buffers (at start and after a resume)."""
        if self.size > 1:
            broadcast_parameters(model, group=self.group)

    def batches(self, loader: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
        """This rank's shard of every batch ``loader`` gives (every rank's loader must give
        the same batches: same dataset, batch size and seed). A shard may be empty."""
        return shard_batches(loader, self.rank, self.size)

    def combine(self, parameters: Iterable[Tensor], strategy: Strategy) -> None:
        """The step's one all-reduce: every rank leaves with the same combined gradients."""
        if self.size == 1:
            return
        started = time.perf_counter()
        self.bytes_sent += combine_gradients(unique_leaves(parameters), strategy, self.group)
        self.allreduce_seconds += time.perf_counter() - started

    def sum_over_ranks(self, *values: float) -> tuple[float, ...]:
        """Each value summed over every rank (float64), in one all-reduce."""
        if self.size == 1:
            return values
        summed = self.group.allreduce_sum(np.array(values, dtype=np.float64))
        return tuple(float(v) for v in summed)


def broadcast_parameters(model_or_parameters: Any, root: int = 0,
                         group: LocalGroup | MPIGroup | None = None) -> None:
    """Copy rank ``root``'s parameters (and a module's buffers) into every rank, in place.

    One broadcast of one float64 buffer (exact for float16/32/64 values and for integer
    buffers below 2**53). Every rank must call it with the same model.
    """
    group = group if group is not None else world()
    if group.size == 1:
        return
    arrays = _state_arrays(model_or_parameters)
    buffer = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays]) if arrays \
        else np.zeros(0)
    buffer = group.broadcast(buffer, root=root)
    start = 0
    for array in arrays:
        array[...] = buffer[start:start + array.size].reshape(array.shape)
        start += array.size


def _state_arrays(model_or_parameters: Any) -> list[np.ndarray]:
    named_buffers = getattr(model_or_parameters, "named_buffers", None)
    if named_buffers is not None:  # a Module: its parameters, then its buffers
        arrays = [p.data for p in model_or_parameters.parameters()]
        arrays += [b for _, b in named_buffers() if isinstance(b, np.ndarray)]
        return arrays
    return [getattr(p, "data", p) for p in model_or_parameters]
