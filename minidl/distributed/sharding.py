"""Each global batch split over the ranks: every example used once, the same batches at any R.

Every rank builds the same ``DataLoader`` from the same seed, so every rank draws the
same global batches in the same order; rank r then keeps its slice of each. One
process (R = 1) keeps the whole batch, so 1, 2 and 3 ranks see the same data per step.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from minidl.errors import InvalidValueError
from minidl.tensor import Tensor, from_numpy


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s slice ``[start, stop)`` of a batch of ``size`` examples.

    The first ``size % world_size`` ranks take one example more (``numpy.array_split``);
    when the batch is smaller than the world, the last ranks get none.

    >>> [shard_bounds(7, r, 3) for r in range(3)]
    [(0, 3), (3, 5), (5, 7)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidValueError(f"rank {rank} is not in 0..{world_size - 1}")
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard(array: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s rows of ``array`` (a view)."""
    start, stop = shard_bounds(len(array), rank, world_size)
    return array[start:stop]


def shard_batches(batches: Iterable[tuple[Tensor, Tensor]], rank: int, world_size: int
                  ) -> Iterator[tuple[Tensor, Tensor]]:
    """Rank ``rank``'s part of every global batch ``(x, y)``; a part may be empty.

    >>> import numpy as np, minidl as mdl
    >>> loader = mdl.data.DataLoader(mdl.data.Dataset(np.zeros((5, 1)), np.arange(5)),
    ...                              batch_size=5)
    >>> [y.data.tolist() for _, y in shard_batches(loader, rank=1, world_size=2)]
    [[3, 4]]
    """
    if world_size == 1:
        yield from batches
        return
    for x, y in batches:
        yield (from_numpy(shard(x.data, rank, world_size)),
               from_numpy(shard(y.data, rank, world_size)))
