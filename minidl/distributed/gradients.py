"""One all-reduce per optimizer step: every leaf's gradient in one buffer, counts beside.

Each rank packs, per leaf, ``weight * .grad`` followed by three numbers: ``weight``,
the leaf's example count N (``Tensor.grad_count``) and 1 if the rank holds a gradient.
The strategy chooses ``weight`` and whether the sum is divided by the summed weights
(``minidl_combine_ranks``). The summed buffer is unpacked the same way on every rank,
so every rank ends the step with the same gradients, bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from minidl.hookspecs import RankCombine
from minidl.strategy.plan import LeafRecord

if TYPE_CHECKING:
    from minidl.strategy.binding import Strategy
    from minidl.tensor import Tensor

TAIL = 3  # weight, example count, "this rank holds a gradient" after each leaf's values


def unique_leaves(parameters: Iterable[Tensor]) -> list[Tensor]:
    """The parameters that take gradients, each once, in the given (same-on-every-rank) order."""
    seen: set[int] = set()
    leaves = []
    for parameter in parameters:
        if parameter.requires_grad and id(parameter) not in seen:
            seen.add(id(parameter))
            leaves.append(parameter)
    return leaves


def buffer_dtype(leaves: Sequence[Tensor]) -> np.dtype:
    """float64 when any leaf is float64, else float32 (float16 gradients travel widened)."""
    return np.dtype(np.float64 if any(p.data.dtype == np.float64 for p in leaves)
                    else np.float32)


def pack(leaves: Sequence[Tensor], strategy: Strategy, world_size: int,
         dtype: np.dtype) -> tuple[np.ndarray, list[RankCombine]]:
    """This rank's contribution to the step's all-reduce, and the strategy's rule per leaf."""
    buffer = np.zeros(sum(p.data.size + TAIL for p in leaves), dtype=dtype)
    rules, start = [], 0
    for leaf in leaves:
        size = leaf.data.size
        grad, count = leaf.grad, leaf.grad_count
        rule = strategy.combine_ranks(count, world_size)
        rules.append(rule)
        if grad is not None:
            np.multiply(grad.reshape(-1), rule.weight, out=buffer[start:start + size],
                        casting="unsafe")
        buffer[start + size:start + size + TAIL] = (rule.weight, count, grad is not None)
        start += size + TAIL
    return buffer, rules


def unpack(summed: np.ndarray, leaves: Sequence[Tensor], rules: Sequence[RankCombine],
           strategy: Strategy) -> None:
    """Write the combined gradients (and summed counts) from the summed buffer into the leaves."""
    start = 0
    for leaf, rule in zip(leaves, rules):
        size = leaf.data.size
        values = summed[start:start + size]
        weight, count, holders = summed[start + size:start + size + TAIL]
        start += size + TAIL
        if holders == 0:  # no rank's shard reached this leaf: it keeps no gradient
            leaf.grad = None
            continue
        if rule.mean and weight > 0:
            values = values / weight
        leaf._grad = np.array(values.reshape(leaf.data.shape), dtype=leaf.data.dtype)
        if count > 0:  # a normalized gradient over every rank's examples
            record = LeafRecord()
            record.key, record.count = strategy.key, float(count)
            leaf._grad_record = record
        else:  # plain calculus on every rank (no batch reduction reached this leaf)
            leaf._grad_record = None


def combine_gradients(leaves: Sequence[Tensor], strategy: Strategy, group) -> int:
    """All-reduce the leaves' gradients as ``strategy`` decides; returns the bytes sent.

    Must be called by every rank, with the same leaves in the same order.
    """
    if group.size == 1:
        return 0
    buffer, rules = pack(leaves, strategy, group.size, buffer_dtype(leaves))
    summed = group.allreduce_sum(buffer)
    unpack(summed, leaves, rules, strategy)
    return buffer.nbytes


def simulate_ranks(shards: Sequence[Sequence[Tensor]], strategy: Strategy) -> list[np.ndarray]:
    """The gradients R ranks would end with, from R copies of the same model.

    ``shards[r]`` are rank r's leaves after its backward passes. The buffers are summed
    in rank order, as an all-reduce would, and unpacked by the same code as a real run
    (used by ``minidl compare --ranks`` and the tests that need no mpiexec).
    """
    world_size = len(shards)
    dtype = buffer_dtype(shards[0])
    packed = [pack(leaves, strategy, world_size, dtype) for leaves in shards]
    summed = packed[0][0].copy()
    for buffer, _ in packed[1:]:
        summed += buffer
    unpack(summed, shards[0], packed[0][1], strategy)
    return [leaf.grad for leaf in shards[0]]
