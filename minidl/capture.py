"""``compile``: trace a training step once, then replay it on plain numpy arrays.

This module records and guards; ``minidl.replay`` replays.

The first call of a compiled step runs eagerly while a recorder watches
``Function.apply``, ``Tensor.backward`` and the optimizers. It records each op (its
``Function`` class, where each input comes from, its options), each backward pass
(the order the engine walked, which ops planned the pass, the leaves) and each
``optimizer.step()`` / ``zero_grad()``. A later call with the same guards replays
that record: one reused ``Function`` instance per op runs ``forward`` and ``backward`` on the
arrays in the recorded order, the pass plan (the same strategy objects) writes the
leaves, and the optimizer's own ``step`` updates them. The numpy calls are the same,
in the same order, so the results are bit-identical to eager; what is skipped is
building Tensors, the graph walk, in-place checks and per-op Python bookkeeping.

Guards (a change re-traces, said once per change under ``MINIDL_DEBUG``): the
shapes, dtypes and ``requires_grad`` of tensor arguments, the values of other
arguments, the active strategy, grad mode, the parameters the step used (shape,
dtype, ``requires_grad``) and the modules it called (every attribute by identity:
``training``, parameters, buffers, a dropout's ``p`` and generator).

Not replayable, so the step runs eagerly from then on (said once under
``MINIDL_DEBUG``): Python control flow on values (``.item()``, ``bool(t)``, a
comparison, ``.data``/``.numpy()``/``.grad`` read outside an optimizer step), a
constant array that is not an argument of the step (build it outside and pass it
in), a tensor created inside the step that requires grad, ``retain_graph``, an LR
scheduler stepped inside the step, a plugin observing every backward
(``minidl_after_backward``), ``detect_anomaly``. Values the step reads from its
closure (Python numbers, 0-d constants) are frozen at trace time; Python side effects
other than ops and optimizer calls (a counter a module keeps, a print) and input checks
done in Python outside ops (label ranges) happen on the traced call only. Random ops
must be ``Function``s that draw in ``forward`` (``nn.Dropout`` does), so a replay
draws fresh randomness from the same generator.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

import numpy as np

from minidl import autograd
from minidl.gradmode import anomaly_enabled, grad_enabled
from minidl.replay import BUSY, CONST, PARAM, RECIPE, TABLE, Refused, Trace
from minidl.tensor import Function, Tensor

_FUNCTION_APPLY = Function.apply.__func__
_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)


def _debug(message: str) -> None:
    if os.environ.get("MINIDL_DEBUG"):
        print(f"minidl.compile: {message}", file=sys.stderr)


def _active_strategy() -> Any:
    """The active strategy; its module is imported on first use, not by ``import minidl``
    (it builds the plugin manager), and then found in ``sys.modules`` (0.6 us less)."""
    registry = sys.modules.get("minidl.strategy.registry")
    if registry is None:
        from minidl.strategy import registry
    return registry.resolve_strategy(None)


def _holds_array(value: Any) -> bool:
    if isinstance(value, (np.ndarray, Tensor)):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(_holds_array(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    return False


def _observers_listening() -> bool:
    """Whether a plugin implements ``minidl_after_backward`` (replay would skip it)."""
    observer = autograd._observer
    manager = getattr(observer, "__self__", None)
    if observer is None:
        return False
    if manager is None:
        return True  # someone else's observer: assume it listens
    return bool(manager.hook.minidl_after_backward.get_hookimpls())


class Recorder:
    """Watches one eager call of a step and records what it ran (see module doc).

    Nothing it does changes the eager call: when it meets something it cannot
    record, it notes the ``reason`` and lets the call finish eagerly.
    """

    def __init__(self, arg_tensors: list[Tensor]) -> None:
        self.thread = threading.get_ident()
        self._inside = False  # inside an op or an optimizer call: not the user's code
        self.in_optimizer = False
        self.reason: str | None = None
        self.n_args = len(arg_tensors)
        # id(array) -> table index: a tensor is found by its array, so a detached tensor is
        # its source, and a tensor whose .data was rebound is not what it was.
        self.by_array: dict[int, int] = {}
        self.keep: list[Any] = []  # every object whose id is a key here stays alive
        for index, t in enumerate(arg_tensors):
            self._remember(t, index)
        self.fn_op: dict[int, int] = {}  # id(Function instance) -> op number
        self.events: list[tuple[Any, ...]] = []
        self.n_ops = 0
        self.params: dict[int, Tensor] = {}
        self.created_ids: set[int] = set()
        self.recipes: dict[int, tuple[Callable[..., Any], list[Any]]] = {}
        self.modules: dict[int, Any] = {}

    # ---- bookkeeping -----------------------------------------------------------------
    def _remember(self, t: Tensor, index: int) -> None:
        self.by_array[id(t._data)] = index
        self.keep.append(t._data)

    @property
    def paused(self) -> bool:
        """True inside an op or optimizer call, and for every other thread."""
        return self._inside or threading.get_ident() != self.thread

    def _active(self) -> bool:
        return self.reason is None and not self.paused

    def unsupported(self, reason: str) -> None:
        if self.reason is None and threading.get_ident() == self.thread:
            self.reason = reason

    def _ref(self, t: Tensor) -> tuple[int, Any]:
        index = self.by_array.get(id(t._data))
        if index is not None:
            return (TABLE, index)
        if t._ctx is None and t.requires_grad:
            if id(t) in self.created_ids:
                raise Refused("a tensor that requires grad was created inside the step")
            self.params[id(t)] = t
            return (PARAM, t)
        if t._data.ndim == 0 and t._ctx is None:
            return (CONST, t._data)
        raise Refused(f"a tensor of shape {t.shape} that is neither an argument of the step "
                       "nor computed in it (pass it as an argument)")

    def _option(self, value: Any) -> tuple[int, Any]:
        if isinstance(value, np.ndarray):
            index = self.by_array.get(id(value))
            if index is not None:
                return (TABLE, index)
            recipe = self.recipes.get(id(value))
            if recipe is not None:
                return (RECIPE, recipe)
            if any(buffer is value for module in self.modules.values()
                   for buffer in module._buffers.values()):
                return (CONST, value)  # a module's buffer (running statistics), by reference
            raise Refused(f"an array option of shape {value.shape} from outside the step")
        if _holds_array(value):
            raise Refused("an option holding arrays or tensors")
        return (CONST, value)

    # ---- what the hooks in tensor.py, nn and optim call -------------------------------
    def apply(self, cls: Any, inputs: tuple[Tensor, ...], options: dict[str, Any]) -> Tensor:
        refs = opts = None
        if self.reason is None and getattr(cls.apply, "__func__", None) is not _FUNCTION_APPLY:
            self.reason = f"{cls.__name__} overrides Function.apply"
        if self.reason is None:
            try:
                refs = [self._ref(t) for t in inputs]
                opts = [(name, self._option(value)) for name, value in options.items()]
            except Refused as refused:
                self.reason = str(refused)
        self._inside = True
        try:
            out = cls.apply(*inputs, **options)
        finally:
            self._inside = False
        if refs is None or self.reason is not None:
            return out
        fn = out._ctx
        needs = fn.needs_input_grad if fn is not None else tuple(t.requires_grad for t in inputs)
        op = self.n_ops
        self.n_ops += 1
        if fn is not None:
            self.fn_op[id(fn)] = op
            self.keep.append(fn)
        self._remember(out, self.n_args + op)
        self.events.append(("op", cls, refs, opts, needs))
        return out

    def derived(self, array: np.ndarray, recipe: Callable[..., Any], inputs: list[Any]) -> None:
        """``array`` (an op's option) is ``recipe(*inputs)``; tensors among them are refs."""
        if not self._active():
            return
        try:
            refs = [self._ref(v) if isinstance(v, Tensor) else (CONST, v) for v in inputs]
        except Refused as refused:
            self.reason = str(refused)
            return
        if any(kind == CONST and _holds_array(value) for kind, value in refs):
            self.reason = "sample weights or a mask that is not a tensor argument of the step"
            return
        self.recipes[id(array)] = (recipe, refs)
        self.keep.append(array)

    def backward(self, root: Tensor, grad: Any, retain_graph: bool) -> None:
        if self._active():
            try:
                self._record_backward(root, grad, retain_graph)
            except Refused as refused:
                self.reason = str(refused)
        autograd.run_backward(root, grad, retain_graph)

    def _record_backward(self, root: Tensor, grad: Any, retain_graph: bool) -> None:
        if retain_graph:
            raise Refused("backward(retain_graph=True)")
        if grad is not None and not isinstance(grad, Tensor):
            raise Refused("backward(grad) with a gradient that is not a tensor of the step")
        grad_ref = None if grad is None else self._ref(grad)
        if not root.requires_grad or (grad is None and root._data.size != 1):
            return  # run_backward raises its own error
        if _observers_listening():
            raise Refused("a plugin observes every backward (minidl_after_backward)")
        order, planners, leaves = autograd._walk(root)
        node_of = {id(node): k for k, node in enumerate(order)}
        nodes = []
        for node in order:
            if node._retains_grad:
                raise Refused("retain_grad() on a tensor of the step")
            fn = node._ctx
            if fn is None:
                if id(node) not in self.params:
                    raise Refused("a leaf of the backward pass is not a parameter")
                nodes.append((None, node, ()))
                continue
            op = self.fn_op.get(id(fn))
            if op is None:
                raise Refused("the backward pass reaches ops run outside the step")
            parents = tuple(
                (node_of[id(parent)], self._ref(parent), parent._ctx is not None) if needs
                else None for parent, needs in zip(fn.parents, fn.needs_input_grad))
            nodes.append((op, None, parents))
        if not order or order[0] is not root:
            raise Refused("an unexpected graph walk")
        planner_ops = [self.fn_op[id(fn)] for fn in planners]
        self.events.append(("backward", nodes[0][0], grad_ref, nodes, planner_ops, leaves,
                            self.n_args + nodes[0][0]))

    def read(self, tensor: Tensor, what: str) -> None:
        """Python code reads a value: the control flow after it may depend on it."""
        if self._active():
            self.reason = (f"{what} reads a tensor's value inside the step, so what follows "
                           "may depend on it")

    def created(self, tensor: Tensor) -> None:
        if threading.get_ident() == self.thread:
            self.created_ids.add(id(tensor))
            self.keep.append(tensor)

    def module_called(self, module: Any) -> None:
        if self._active():
            self.modules[id(module)] = module

    def optimizer_call(self, optimizer: Any, method: str) -> bool:
        """Record ``optimizer.<method>()``; False when the caller should just run it."""
        if not self._active():
            return False
        self.events.append(("call", getattr(optimizer, method)))
        self.in_optimizer = self._inside = True
        try:
            getattr(optimizer, method)()
        finally:
            self.in_optimizer = self._inside = False
        return True


_MAX_TRACES = 8  # guard keys kept per step (batch shapes); the oldest goes first
_MAX_INVALIDATIONS = 16  # traces invalidated by a change before the step goes eager


class CompiledStep:
    """A step function that replays its recorded numpy calls (see ``compile``)."""

    def __init__(self, step: Callable[..., Any]) -> None:
        self.step = step
        self.traces: dict[Any, Trace] = {}
        #: Why the step runs eagerly for good (None while it can be compiled).
        self.eager_reason: str | None = None
        self.invalidations = 0
        self.__wrapped__ = step
        self.__doc__ = getattr(step, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if (self.eager_reason is not None or _tensor_module._recorder is not None
                or anomaly_enabled.get()):
            return self.step(*args, **kwargs)
        arrays, key = self._guard_key(args, kwargs)
        if key is None:
            return self.step(*args, **kwargs)
        trace = self.traces.get(key)
        if trace is not None:
            changed = trace.still_valid()
            if changed is None and autograd._observer is not None and _observers_listening():
                changed = "a plugin now observes every backward"
            if changed is None:
                result = trace.replay(arrays)
                if result is BUSY:  # called inside its own replay, or by another thread
                    return self.step(*args, **kwargs)
                return result
            del self.traces[key]
            self.invalidations += 1
            if self.invalidations > _MAX_INVALIDATIONS:
                self._go_eager(f"what it uses keeps changing ({changed})")
                return self.step(*args, **kwargs)
            _debug(f"re-tracing {self._name}: {changed}")
        elif self.traces:
            _debug(f"re-tracing {self._name}: new argument shapes, dtypes, values, strategy "
                   "or grad mode")
        tensors = [value for value in (*args, *kwargs.values()) if isinstance(value, Tensor)]
        return self._trace(key, tensors, args, kwargs)

    @property
    def _name(self) -> str:
        return getattr(self.step, "__qualname__", repr(self.step))

    def _guard_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[list[np.ndarray], Any]:
        """The tensor arguments' arrays, and the key their trace is kept under (None: the
        step cannot be compiled, ``eager_reason`` says why)."""
        arrays: list[np.ndarray] = []
        parts: list[Any] = []
        for value in (*args, *kwargs.values()) if kwargs else args:
            if type(value) is Tensor or isinstance(value, Tensor):
                if value.requires_grad:
                    self._go_eager("a tensor argument requires grad")
                    return arrays, None
                data = value._data
                alias = len(arrays)  # aliasing: the first argument holding the same array
                for index, seen in enumerate(arrays):
                    if seen is data:
                        alias = index
                        break
                parts.append((data.shape, data.dtype, alias))
                arrays.append(data)
            elif value is None or isinstance(value, (bool, int, float, str)):
                parts.append((type(value), value))
            else:
                self._go_eager(f"an argument of type {type(value).__name__} (pass tensors, "
                               "or Python numbers and strings, which are guarded by value)")
                return arrays, None
        strategy = _active_strategy()  # its identity changes with the plugin set
        return arrays, (tuple(parts), tuple(kwargs), strategy.key, id(strategy),
                        grad_enabled.get())

    def _go_eager(self, reason: str) -> None:
        self.eager_reason = reason
        self.traces.clear()
        _debug(f"{self._name} runs eagerly from now on: {reason}")

    def _trace(self, key: Any, tensors: list[Tensor], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
        recorder = Recorder(tensors)
        _tensor_module._recorder = recorder
        try:
            result = self.step(*args, **kwargs)
        finally:
            _tensor_module._recorder = None
        trace = None
        if recorder.reason is None:
            try:
                trace = Trace(recorder, result)
            except Refused as refused:
                recorder.reason = str(refused)
        if trace is None:
            self._go_eager(str(recorder.reason))
            return result
        if len(self.traces) >= _MAX_TRACES:
            del self.traces[next(iter(self.traces))]
        self.traces[key] = trace
        return result


def compile(step: Callable[..., Any]) -> CompiledStep:  # noqa: A001 (as torch.compile)
    """Compile a training step: traced on its first call, replayed on later ones.

    The step runs forward, backward and the optimizer step on tensors it takes as
    arguments; replays give bit-identical results to running it eagerly. See the
    module documentation of ``minidl.capture`` for the guards and what falls back.

    >>> import minidl as mdl
    >>> net = mdl.nn.Linear(2, 1, generator=0)
    >>> opt = mdl.optim.SGD(net.parameters(), lr=0.1)
    >>> @mdl.compile
    ... def step(x, y):
    ...     opt.zero_grad()
    ...     loss = mdl.nn.functional.mse_loss(net(x), y)
    ...     loss.backward()
    ...     opt.step()
    ...     return loss
    >>> x, y = mdl.tensor([[1.0, 2.0]]), mdl.tensor([[1.0]])
    >>> first, second = step(x, y), step(x, y)  # traced, then replayed
    >>> bool(second.item() < first.item()), step.eager_reason is None
    (True, True)
    """
    return CompiledStep(step)


def not_replayable(reason: str) -> None:
    """Inside a step ``compile`` is tracing: keep that step eager from now on, for
    ``reason`` (it lands in ``step.eager_reason``). Anywhere else: nothing.

    For a step whose Python reads values on some paths only (as ``torch._dynamo``'s
    graph break): call it on those paths, and the step never replays a trace that
    skipped them.

    >>> import minidl as mdl
    >>> from minidl.capture import not_replayable
    >>> @mdl.compile
    ... def step(x):
    ...     not_replayable("reads the loss")
    ...     return x * 2
    >>> _ = step(mdl.tensor([1.0])); step.eager_reason
    'reads the loss'
    """
    recorder = _tensor_module._recorder
    if recorder is not None:
        recorder.unsupported(reason)
