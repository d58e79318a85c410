"""Data-parallel training on MPI (``pip install 'minidl[mpi]'``), for the trainer and your loop.

Start R copies of a script with ``mpiexec -n R python script.py``; each is a *rank*.
Every rank builds the same model and draws the same global batches, trains on its
shard of each, and before each optimizer step calls :func:`allreduce_gradients`:
one all-reduce after which every rank holds the same gradients, combined as the
active strategy decides (``minidl_combine_ranks``): ``deferred`` the exact mean over
every example on every rank, ``absorbed`` the mean of the per-rank means (as
PyTorch's DistributedDataParallel), ``sum`` the sum.

Without ``mpiexec`` the world is this process alone: ``world_size()`` is 1 and every
call returns at once, so the same script runs unchanged. mpi4py is imported only
when an MPI launcher started the process, never by ``import minidl``.

>>> import minidl as mdl
>>> mdl.distributed.world_size(), mdl.distributed.rank()
(1, 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from minidl.distributed.comm import launched_by_mpi, world
from minidl.distributed.gradients import combine_gradients, simulate_ranks, unique_leaves
from minidl.distributed.sharding import shard, shard_batches, shard_bounds
from minidl.distributed.training import DataParallel, broadcast_parameters

if TYPE_CHECKING:
    from minidl.tensor import Tensor


def world_size() -> int:
    """How many ranks take part (1 when not started by ``mpiexec``)."""
    return world().size


def rank() -> int:
    """This process's rank, 0..world_size()-1."""
    return world().rank


def is_main() -> bool:
    """True on rank 0, the one that prints and writes files."""
    return world().rank == 0


def allreduce_gradients(parameters: Iterable[Tensor], strategy: Any = None) -> int:
    """Combine every rank's gradients of ``parameters`` in one all-reduce; returns bytes sent.

    Call it on every rank after the backward passes of a step and before
    ``optimizer.step()``, with the parameters in the same order (``model.parameters()``).
    ``strategy`` (a name or ``Strategy``) defaults to the active one; it must be the
    strategy the losses were reduced under.

    >>> import minidl as mdl
    >>> w = mdl.tensor([1.0, 2.0], requires_grad=True)
    >>> mdl.nn.functional.mse_loss(w, mdl.tensor([0.0, 0.0])).backward()
    >>> mdl.distributed.allreduce_gradients([w])   # one process: unchanged, nothing sent
    0
    >>> w.grad
    array([1., 2.], dtype=float32)
    """
    from minidl.strategy import active_strategy, resolve_strategy

    if strategy is None:
        strategy = active_strategy()
    elif isinstance(strategy, str):
        strategy = resolve_strategy(strategy)
    return combine_gradients(unique_leaves(parameters), strategy, world())


def abort_on_failure(debug: bool = False) -> Any:
    """A context manager: an exception inside it on any rank prints one message naming the
    rank and ends every rank (``MPI_Abort``), so no rank waits forever in an all-reduce.

    >>> with abort_on_failure():      # one process: exceptions pass through unchanged
    ...     pass
    """
    from minidl.distributed.faults import abort_on_failure as guard

    return guard(world(), debug=debug)


def allreduce_sum(values: Any) -> np.ndarray:
    """``values`` (numbers or an array) summed over every rank, as float64.

    >>> allreduce_sum([1.0, 2.0])
    array([1., 2.])
    """
    return world().allreduce_sum(np.array(values, dtype=np.float64))


__all__ = ["DataParallel", "abort_on_failure", "allreduce_gradients", "allreduce_sum",
           "broadcast_parameters", "combine_gradients", "is_main", "launched_by_mpi", "rank",
           "shard", "shard_batches", "shard_bounds", "simulate_ranks", "world", "world_size"]
