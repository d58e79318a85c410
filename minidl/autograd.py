"""The reverse-mode engine: ``Function`` (one primitive op) and the backward pass.

Every differentiable primitive is a small ``Function`` subclass whose ``forward``
computes on numpy arrays and saves what its ``backward`` needs, and whose
``backward`` returns one gradient per input (``None`` where no input needs one).
``Function.apply`` wires the graph; ``run_backward`` walks it iteratively.

Two duties live here and nowhere else, so no op repeats them:

* broadcasting is undone once, when a gradient reaches an input of another shape;
* a gradient is cast once to the dtype of the input it flows into.

The engine does not decide where a batch mean's 1/m goes. A ``Function`` marked
``is_batch_reduction`` carries the normalization strategy chosen when it ran; the
engine asks that strategy how to seed the pass and how to write leaf gradients.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

from minidl.dtypes import accumulator, accurate_sum
from minidl.errors import AnomalyError, GraphError, ShapeError
from minidl.pluginmanager import notify_after_backward

if TYPE_CHECKING:
    from minidl.tensor import Tensor

# ContextVars, not globals: each thread (and each asyncio task) has its own mode.
_grad_enabled: ContextVar[bool] = ContextVar("minidl_grad_enabled", default=True)
_anomaly_enabled: ContextVar[bool] = ContextVar("minidl_anomaly_enabled", default=False)

F = TypeVar("F", bound=Callable[..., Any])

#: ``minidl.tensor.Tensor``, bound by that module once the class exists (it imports this
#: one), so ``Function.apply`` does not run an import statement for every op.
_Tensor: Any = None


class _ModeSwitch:
    """A context manager (and decorator) that sets one ContextVar for its block."""

    _var: ContextVar[bool]
    _value: bool

    def __new__(cls, func: Any = None) -> Any:
        if func is not None:  # used bare, as @mdl.no_grad: decorate func directly
            return object.__new__(cls)(func)
        return object.__new__(cls)

    def __init__(self, func: Any = None) -> None:
        self._tokens: list[Any] = []  # a stack, so one instance may be entered re-entrantly

    def __enter__(self) -> None:
        self._tokens.append(self._var.set(self._value))

    def __exit__(self, *exc_info: object) -> None:
        self._var.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = func.__doc__
        return wrapper  # type: ignore[return-value]


class no_grad(_ModeSwitch):
    """Run a block without building a graph (inference, optimizer updates).

    >>> import minidl as mdl
    >>> w = mdl.tensor([1.0, 2.0], requires_grad=True)
    >>> with mdl.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    _var = _grad_enabled
    _value = False


class enable_grad(_ModeSwitch):
    """Build graphs again inside a ``no_grad`` block."""

    _var = _grad_enabled
    _value = True


class detect_anomaly(_ModeSwitch):
    """Raise ``AnomalyError`` at the first op whose forward or backward makes NaN or inf.

    Slower (every result is checked), so use it to find where a NaN starts.

    >>> import minidl as mdl
    >>> x = mdl.tensor([0.0], requires_grad=True)
    >>> with mdl.detect_anomaly():
    ...     mdl.log(x)
    Traceback (most recent call last):
    minidl.errors.AnomalyError: Log forward produced -inf ...
    """

    _var = _anomaly_enabled
    _value = True


def is_grad_enabled() -> bool:
    """Whether ops record a graph here (False inside ``no_grad``)."""
    return _grad_enabled.get()


def _check_finite(array: np.ndarray, where: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = "nan" if np.isnan(array).any() else ("inf" if np.isposinf(array).any() else "-inf")
        raise AnomalyError(
            f"{where} produced {bad} (first under detect_anomaly); look at this op's inputs"
        )


class Function:
    """One differentiable primitive: ``forward`` and ``backward`` side by side.

    Subclasses implement ``forward(*arrays, **options) -> ndarray`` (saving on
    ``self`` what backward needs) and ``backward(grad) -> gradient or tuple``, one
    entry per tensor input, ``None`` where ``self.needs_input_grad[i]`` is False.
    ``backward`` may return gradients in the broadcast output shape; the engine
    sums them back to each input's shape. It must not modify ``grad`` in place.

    >>> import numpy as np, minidl as mdl
    >>> class Cube(mdl.Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x ** 3
    ...     def backward(self, grad):
    ...         return grad * 3 * self.x ** 2
    >>> x = mdl.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward(); x.grad
    array([12.], dtype=float32)

    Check a new op with ``mdl.gradcheck`` before trusting it.
    """

    #: True only for the batch reduction whose strategy normalizes a backward pass.
    is_batch_reduction = False
    parents: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]

    def forward(self, *arrays: Any, **options: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(*arrays)")

    def backward(self, grad: np.ndarray) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement backward(grad), returning one gradient "
            "per input (None where needs_input_grad is False)"
        )

    @classmethod
    def apply(cls, *inputs: Tensor, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' data and record the op if any input needs grad."""
        fn = cls()
        needs = tuple([t.requires_grad for t in inputs])
        track = True in needs and _grad_enabled.get()
        fn.needs_input_grad = needs
        try:
            out = fn.forward(*[t.data for t in inputs], **options)
        except ValueError as err:
            shapes = ", ".join(str(t.shape) for t in inputs)
            # numpy reports misfitting shapes as ValueError; name the op and the shapes.
            kind = ShapeError if _about_shapes(str(err)) else type(err)
            raise kind(f"{cls.__name__}: {err} (input shapes: {shapes})") from None
        if type(out) is not np.ndarray:  # numpy returns scalars for full reductions
            out = np.asarray(out)
        if _anomaly_enabled.get():
            _check_finite(out, f"{cls.__name__} forward")
        if track:
            fn.parents = inputs
            return _Tensor._from_op(out, fn)
        return _Tensor._from_op(out, None)

    def release(self) -> None:
        """Drop saved arrays and parents once backward has run (``retain_graph=False``)."""
        self.__dict__.clear()
        self.parents = None


def _about_shapes(message: str) -> bool:
    return any(word in message for word in ("shape", "broadcast", "dimension", "axis",
                                            "size", "operand"))


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


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root`` through inputs needing grad, root first.

    Iterative depth-first search: a 10,000-op chain must not hit the recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        # Mark a node when it is expanded, not when it is pushed: every consumer of a node
        # must finish after it (so, reversed, backward reaches the node only once all its
        # consumers have sent their gradient), including a consumer met after the push.
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        fn = node._ctx
        if fn is None:
            continue
        if fn.parents is None:
            raise GraphError(
                "trying to backward through the graph a second time: its saved values were "
                "freed by the first backward(). Pass retain_graph=True to the first call if you "
                "need to backward twice, or recompute the forward pass."
            )
        for parent, needs in zip(fn.parents, fn.needs_input_grad):
            if needs and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _pass_strategy(order: list[Tensor]) -> tuple[Any, float, float]:
    """The normalization strategy, example count and seed scale of this pass.

    (None, 0, 1) when no batch reduction took part: the pass is plain calculus.
    Checks, before any leaf is written, that the pass is normalized one way only.
    """
    reductions = []
    leaves = []
    for node in order:
        fn = node._ctx
        if fn is None:
            leaves.append(node)
        elif fn.is_batch_reduction:
            reductions.append(fn)
    if not reductions:
        return None, 0.0, 1.0
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
        if leaf._grad_strategy is not None and leaf._grad_strategy != key:
            raise GraphError(
                f"a leaf (shape {leaf.shape}) holds a gradient normalized by another strategy "
                f"than {first.strategy.name!r}; clear it (zero_grad() or .grad = None) before "
                "switching strategies"
            )
    return first.strategy, max(r.count for r in reductions), first.seed_scale


def run_backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Backpropagate from ``root`` into every leaf that requires grad (see Tensor.backward)."""
    if not root.requires_grad:
        raise GraphError(
            "backward() on a tensor that does not require grad: no input of the graph has "
            "requires_grad=True, or it was computed under no_grad()"
        )
    if grad is None:
        if root.data.size != 1:
            raise GraphError(
                f"backward() without a gradient needs a scalar; this tensor has shape "
                f"{root.shape}. Reduce it first (e.g. loss.mean()) or pass backward(grad) "
                "with a gradient of the same shape."
            )
        seed = None  # ones times the strategy's scale, made below in one go
    else:
        seed = np.array(getattr(grad, "data", grad), dtype=np.float64)
        if seed.shape != root.shape:
            raise ShapeError(f"backward(grad): grad has shape {seed.shape}, the tensor has "
                             f"shape {root.shape}")

    order = _topological_order(root)
    strategy, count, seed_scale = _pass_strategy(order)
    # The strategy seeds the pass with a factor (deferred: m), so that every branch,
    # not just the batch reduction, is scaled by one policy. Scaled gradients above the
    # reduction may pass float16's 65,504, so such a pass carries float16 in float32.
    widen = seed_scale != 1.0
    if seed is None:
        seed = np.full(root.shape, seed_scale, dtype=np.float64)
    elif widen:
        seed = seed * seed_scale
    if root.data.ndim > 0:
        seed = seed.astype(accumulator(root.dtype) if widen else root.dtype)
    anomaly = _anomaly_enabled.get()
    grads: dict[int, np.ndarray] = {id(root): seed}
    leaves: list[Tensor] = []
    handed_to_leaves: set[int] = set()
    for node in order:
        g = grads.pop(id(node), None)
        if g is None:  # every consumer returned None for it (a zero gradient, as in torch)
            if node._ctx is not None and not retain_graph:
                node._ctx.release()
            continue
        if node._retains_grad:
            retained = g.astype(node.data.dtype)  # a copy: the pass goes on using g
            node._grad = retained if node._grad is None else node._grad + retained
        fn = node._ctx
        if fn is None:
            if id(g) in handed_to_leaves or g.base is not None or type(g) is not np.ndarray:
                g = np.array(g)  # each .grad is an array that owns its memory
            handed_to_leaves.add(id(g))
            _write_leaf_grad(node, g, strategy, count)
            leaves.append(node)
            continue
        input_grads = fn.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        op_name = type(fn).__name__
        if len(input_grads) != len(fn.parents):
            raise GraphError(f"{op_name}.backward returned {len(input_grads)} gradient(s) for "
                             f"{len(fn.parents)} input(s); return one per input (None where "
                             "needs_input_grad is False)")
        for i, (parent, needs, pg) in enumerate(zip(fn.parents, fn.needs_input_grad,
                                                      input_grads)):
            if not needs or pg is None:
                continue
            if pg.shape != parent.data.shape:
                pg = unbroadcast(pg, parent.data.shape, op_name)
            # Cast to the input's dtype, except for leaves (cast once the strategy has
            # written them, so a float16 weight's mean comes from its float32 sum), for
            # 0-d gradients, and for float16 in a seeded pass (see ``widen`` above).
            if pg.dtype != parent.data.dtype and pg.ndim > 0 and parent._ctx is not None:
                target = accumulator(parent.data.dtype) if widen else parent.data.dtype
                if pg.dtype != target:
                    pg = pg.astype(target)
            if anomaly:
                _check_finite(pg, f"{op_name} backward (gradient of input {i})")
            key = id(parent)
            # Out of place: a backward may hand the same array to two inputs.
            grads[key] = grads[key] + pg if key in grads else pg
        if not retain_graph:
            fn.release()
    notify_after_backward(root, leaves, strategy)


def _write_leaf_grad(leaf: Tensor, g: np.ndarray, strategy: Any, count: float) -> None:
    """Add this pass's gradient to a leaf, through the strategy when one normalized it.

    A leaf's ``.grad`` is a normalized part (what strategies accumulated, over
    ``_grad_count`` examples) plus a plain-calculus part (passes with no batch
    reduction), kept apart so a strategy's running mean never rescales plain terms.
    While the count is 0 all of ``.grad`` is plain, so only then may it be used as is.
    """
    dtype = leaf.data.dtype
    if strategy is None:  # no batch reduction: plain calculus
        g = np.asarray(g, dtype=dtype)
        if leaf._grad_count:
            plain = leaf._plain_grad
            leaf._plain_grad = g.copy() if plain is None else plain + g
        leaf._grad = g if leaf._grad is None else np.asarray(leaf._grad + g)
        return
    work = accumulator(dtype)  # float16 leaves are accumulated in float32
    if leaf._grad_count:
        plain = leaf._plain_grad
        normalized = leaf._grad if plain is None else leaf._grad - plain
        normalized = normalized.astype(work, copy=False)
    else:  # everything so far (if anything) is plain calculus, including in-place edits
        plain = None if leaf._grad is None else leaf._grad.copy()
        normalized = None
    new = strategy.accumulate(leaf, normalized, leaf._grad_count, g.astype(work, copy=False),
                              count)
    if plain is not None:
        new = new + plain
    leaf._grad = np.asarray(new, dtype=dtype)
    leaf._plain_grad = plain
    leaf._grad_count += count
    leaf._grad_strategy = strategy.key
