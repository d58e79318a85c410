"""The pass plan of a batch-reduced backward pass, and what it keeps on each leaf.

The engine (``minidl.autograd``) asks the batch reduction of a pass for its plan;
this module answers, so every rule about normalized gradients lives here:

* the seed: the strategy's s / c, so all branches see one scaling;
* float16 widening: a seeded pass carries float16 gradients in float32, since a
  gradient scaled by m may pass float16's 65,504 long before the mean does;
* the leaves: each ``.grad`` is a normalized part (what the strategy accumulated over
  ``count`` examples) plus a plain-calculus part kept apart in the leaf's record, so
  a strategy's running mean never rescales plain terms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from minidl.dtypes import accumulator
from minidl.errors import GraphError

if TYPE_CHECKING:
    from minidl.strategy.batch import BatchReduce
    from minidl.strategy.binding import Strategy
    from minidl.tensor import Tensor


class LeafRecord:
    """What a strategy keeps about one leaf's ``.grad`` (``Tensor._grad_record``).

    Made afresh for every leaf on the first normalized pass after each
    ``zero_grad()``, so it has no ``__init__``: the defaults are class attributes.
    """

    count = 0.0  # examples (or total weight) behind the normalized part
    plain: np.ndarray | None = None  # the plain-calculus part of .grad
    key: Any = None  # the strategy (and options) that normalized it

    def add_plain(self, grad: np.ndarray) -> None:
        """Called by the plain-calculus plan: keep this term out of the running mean."""
        self.plain = grad.copy() if self.plain is None else self.plain + grad


class BatchPlan:
    """The plan of a pass through batch reductions made under one strategy (see module doc)."""

    __slots__ = ("strategy", "name", "count", "seed_scale")

    def __init__(self, strategy: Strategy, count: float, seed_scale: float) -> None:
        self.strategy, self.name = strategy, strategy.name
        self.count, self.seed_scale = count, seed_scale

    def carry_dtype(self, dtype: np.dtype) -> np.dtype:
        return accumulator(dtype) if self.seed_scale != 1.0 else dtype

    def write_leaves(self, leaves: Sequence[Tensor], grads: Sequence[np.ndarray]) -> None:
        """For each leaf in turn, as a pass ends: hand the strategy the leaf's normalized
        part and this pass's sum; store its answer."""
        strategy = self.strategy
        count, key, fold, built_in = self.count, strategy.key, strategy.direct_fold, \
            strategy.built_in
        for leaf, grad in zip(leaves, grads):
            dtype = leaf._data.dtype
            work = accumulator(dtype)  # float16 leaves are accumulated in float32
            record = leaf._grad_record
            if record is None:  # all so far (if anything) is plain calculus, in-place edits too
                record = LeafRecord()
                record.key = key
                plain = None if leaf._grad is None else leaf._grad.copy()
                normalized = None
            else:
                plain = record.plain
                normalized = leaf._grad if plain is None else leaf._grad - plain
                normalized = normalized.astype(work, copy=False)
            if grad.dtype != work:
                grad = grad.astype(work)
            if fold is None:
                new = strategy.accumulate(leaf, normalized, record.count, grad, count)
            else:
                try:
                    new = fold(normalized, record.count, grad, count)
                except BaseException as err:
                    raise strategy.fold_failed(err) from err
                if not built_in or type(new) is not np.ndarray:
                    new = strategy.checked_leaf_grad(new, leaf, normalized, record.count, grad,
                                                     count)
            if plain is not None:
                new = new + plain
            if type(new) is not np.ndarray or (new.dtype is not dtype and new.dtype != dtype):
                new = np.asarray(new, dtype=dtype)
            leaf._grad = new
            record.plain = plain
            record.count += count
            leaf._grad_record = record


def plan_pass(reductions: Sequence[BatchReduce], leaves: Sequence[Tensor]) -> BatchPlan:
    """The plan for a pass through ``reductions``; refuses, before any leaf is written,
    a pass normalized two ways or onto a gradient another strategy normalized."""
    first = reductions[0]
    for other in reductions[1:]:
        if other.strategy.key != first.strategy.key:
            raise GraphError(
                f"one backward pass mixes normalization strategies {first.strategy.name!r} "
                f"and {other.strategy.name!r}; compute both losses under one strategy"
            )
        if other.seed_scale != first.seed_scale:
            raise GraphError(
                f"this backward pass adds batch reductions over different example counts "
                f"({first.count:g} and {other.count:g}) under {first.strategy.name!r}, which "
                "scales each by its own count; call backward() on each loss separately "
                "(gradients accumulate)"
            )
    key = first.strategy.key
    for leaf in leaves:
        record = leaf._grad_record
        if record is not None and record.key != key:
            raise GraphError(
                f"a leaf (shape {leaf.shape}) holds a gradient normalized by another strategy "
                f"than {first.strategy.name!r}; clear it (zero_grad() or .grad = None) before "
                "switching strategies"
            )
    return BatchPlan(first.strategy, max(r.count for r in reductions), first.seed_scale)
