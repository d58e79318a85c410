"""The reverse-mode engine: walk the graph from a root, call each op's backward.

Three duties live here and nowhere else, so no op repeats them:

* broadcasting is undone once, when a gradient reaches an input of another shape;
* a gradient is cast once to the dtype of the input it flows into;
* the order is found iteratively (a 10,000-op chain must not hit the recursion limit).

The engine knows nothing of normalization strategies or plugins. An op that wants
a say in a pass (only the batch reduction, ``minidl.strategy``) sets
``Function.plan_pass``; the engine asks it for a ``PassPlan`` (how to seed the pass,
how to write a leaf) and uses ``PLAIN_CALCULUS`` when no such op took part.
Observers of backward (the plugin manager, once built) register with
``set_backward_observer``; a plain backward imports no plugin code at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from minidl.dtypes import accurate_sum
from minidl.errors import GraphError, ShapeError
from minidl.gradmode import anomaly_enabled, check_finite
from minidl.inplace import check_function
from minidl.inplace import state as inplace_state

if TYPE_CHECKING:
    from minidl.tensor import Tensor


class PassPlan(Protocol):
    """How one backward pass is seeded and how it writes leaves.

    ``seed_scale`` multiplies the root's seed (so every branch of the graph sees it);
    ``carry_dtype(dtype)`` is the dtype an intermediate gradient of a ``dtype`` node
    is carried in; ``write_leaves`` adds the pass's gradient of each leaf to its ``.grad``;
    ``name`` is what observers are told (None for plain calculus).
    """

    name: str | None
    seed_scale: float

    def carry_dtype(self, dtype: np.dtype) -> np.dtype: ...

    def write_leaves(self, leaves: Sequence[Tensor], grads: Sequence[np.ndarray]) -> None: ...


class PlainCalculus:
    """The plan of a pass no batch reduction took part in: seed 1, leaves add the gradient.

    If a leaf's ``.grad`` also holds a strategy's normalized part, its record keeps
    the plain part apart (``add_plain``), so the strategy never rescales plain terms.
    """

    name = None
    seed_scale = 1.0

    @staticmethod
    def carry_dtype(dtype: np.dtype) -> np.dtype:
        return dtype

    @staticmethod
    def write_leaves(leaves: Sequence[Tensor], grads: Sequence[np.ndarray]) -> None:
        for leaf, grad in zip(leaves, grads):
            grad = np.asarray(grad, dtype=leaf._data.dtype)
            if leaf._grad_record is not None:
                leaf._grad_record.add_plain(grad)
            leaf._grad = grad if leaf._grad is None else np.asarray(leaf._grad + grad)


PLAIN_CALCULUS = PlainCalculus()

BackwardObserver = Callable[["Tensor", Sequence["Tensor"], "str | None"], None]
_observer: BackwardObserver | None = None


def set_backward_observer(observer: BackwardObserver | None) -> BackwardObserver | None:
    """Call ``observer(root, leaves, plan_name)`` after every backward; returns the old one.

    The plugin manager installs itself here when it is built, so observers of
    ``minidl_after_backward`` are reached without the engine importing plugin code.
    """
    global _observer
    previous, _observer = _observer, observer
    return previous


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...], op_name: str) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added, so it has ``shape``."""
    extra = grad.ndim - len(shape)
    # Each trailing axis must match or be 1 in the input (a broadcast axis); comparing only
    # sizes would let a transposed (3, 2) gradient pass as (2, 3).
    if extra < 0 or any(size not in (1, g) for g, size in zip(grad.shape[extra:], shape)):
        raise ShapeError(f"{op_name} backward returned grad of shape {grad.shape} for an input "
                         f"of shape {shape}")
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    summed = accurate_sum(grad, axis=axes) if axes else grad
    return summed.reshape(shape)


def _walk(root: Tensor) -> tuple[list[Tensor], list[Any], list[Tensor]]:
    """Nodes reachable from ``root`` through inputs needing grad, root first; and, found on
    the way, the ops that plan passes (batch reductions) and the leaves, inputs first."""
    order: list[Tensor] = []
    planners: list[Any] = []
    leaves: list[Tensor] = []
    visited: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node is None:  # a marker: the node below it has every input ordered
            node = stack.pop()
            order.append(node)
            fn = node._ctx
            if fn is None:
                leaves.append(node)
            elif fn.plan_pass is not None:
                planners.append(fn)
            continue
        # Mark a node when it is expanded, not when it is pushed: every consumer of a node
        # must finish after it (so, reversed, backward reaches the node only once all its
        # consumers have sent their gradient), including a consumer met after the push.
        key = id(node)
        if key in visited:
            continue
        visited.add(key)
        stack.append(node)
        stack.append(None)
        fn = node._ctx
        if fn is None:
            continue
        parents = fn.parents
        if parents is None:
            raise GraphError(
                "trying to backward through the graph a second time: its saved values were "
                "freed by the first backward(). Pass retain_graph=True to the first call if you "
                "need to backward twice, or recompute the forward pass."
            )
        for parent, needs in zip(parents, fn.needs_input_grad):
            if needs and id(parent) not in visited:
                stack.append(parent)
    order.reverse()
    planners.reverse()
    leaves.reverse()
    return order, planners, leaves


def _plan(planners: list[Any], leaves: list[Tensor]) -> PassPlan:
    """Ask the ops that plan passes (batch reductions) for this pass's plan."""
    if not planners:
        return PLAIN_CALCULUS
    return planners[0].plan_pass(planners, leaves)


def _seed(root: Tensor, grad: Any, plan: PassPlan) -> np.ndarray:
    """The gradient backward starts from at ``root``, scaled by the plan."""
    scale = plan.seed_scale
    if grad is None:
        seed = np.empty(root._data.shape, dtype=np.float64)  # np.full, without its wrapper
        seed.fill(scale)
    else:
        seed = np.array(getattr(grad, "data", grad), dtype=np.float64)
        if seed.shape != root.shape:
            raise ShapeError(f"backward(grad): grad has shape {seed.shape}, the tensor has "
                             f"shape {root.shape}")
        if scale != 1.0:
            seed = seed * scale
    if root._data.ndim > 0:  # a 0-d seed stays float64: scaled, it may pass float16's range
        seed = seed.astype(plan.carry_dtype(root.dtype))
    return seed


def run_backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Backpropagate from ``root`` into every leaf that requires grad (see Tensor.backward)."""
    if not root.requires_grad:
        raise GraphError(
            "backward() on a tensor that does not require grad: no input of the graph has "
            "requires_grad=True, or it was computed under no_grad()"
        )
    if grad is None and root._data.size != 1:
        raise GraphError(
            f"backward() without a gradient needs a scalar; this tensor has shape "
            f"{root.shape}. Reduce it first (e.g. loss.mean()) or pass backward(grad) "
            "with a gradient of the same shape."
        )
    order, planners, graph_leaves = _walk(root)
    plan = _plan(planners, graph_leaves)
    grads: dict[int, np.ndarray] = {id(root): _seed(root, grad, plan)}
    anomaly = anomaly_enabled.get()
    leaves: list[Tensor] = []
    leaf_grads: list[np.ndarray] = []  # written together once the pass is through
    handed_to_leaves: set[int] = set()
    for position in range(len(order)):
        node = order[position]
        # Drop the pass's own reference: once its consumers are released, an intermediate
        # tensor (and its array) is freed as soon as it is processed, unless someone holds it.
        order[position] = None  # type: ignore[call-overload]
        g = grads.pop(id(node), None)
        if g is None:  # every consumer returned None for it (a zero gradient, as in torch)
            if node._ctx is not None and not retain_graph:
                node._ctx.release()
            continue
        if node._retains_grad:
            retained = g.astype(node._data.dtype)  # a copy: the pass goes on using g
            node._grad = retained if node._grad is None else node._grad + retained
        fn = node._ctx
        if fn is None:
            if id(g) in handed_to_leaves or g.base is not None or type(g) is not np.ndarray:
                g = np.array(g)  # each .grad is an array that owns its memory
            handed_to_leaves.add(id(g))
            leaves.append(node)
            leaf_grads.append(g)
            continue
        if fn._guards is not None or fn._snapshot_mark != inplace_state.snapshots:
            check_function(fn, node)  # an array it saved may have been changed in place
        input_grads = fn.backward(g)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        parents = fn.parents
        if len(input_grads) != len(parents):
            op_name = type(fn).__name__
            raise GraphError(f"{op_name}.backward returned {len(input_grads)} gradient(s) for "
                             f"{len(parents)} input(s); return one per input (None where "
                             "needs_input_grad is False)")
        index = -1
        for parent, needs, pg in zip(parents, fn.needs_input_grad, input_grads):
            index += 1
            if pg is None or not needs:
                continue
            data = parent._data
            if pg.shape != data.shape:
                pg = unbroadcast(pg, data.shape, type(fn).__name__)
            # Cast to the input's dtype (as the plan carries it), except for leaves, which
            # the plan writes from the gradient as computed, and 0-d gradients.
            if pg.dtype != data.dtype and pg.ndim > 0 and parent._ctx is not None:
                target = plan.carry_dtype(data.dtype)
                if pg.dtype != target:
                    pg = pg.astype(target)
            if anomaly:
                check_finite(pg, f"{type(fn).__name__} backward (gradient of input {index})")
            key = id(parent)
            # Out of place: a backward may hand the same array to two inputs.
            if key in grads:
                grads[key] = grads[key] + pg
            else:
                grads[key] = pg
        if not retain_graph:
            fn.release()
    plan.write_leaves(leaves, leaf_grads)
    if _observer is not None:
        _observer(root, leaves, plan.name)
