"""The recording half of ``mdl.compile``: ``Recorder`` watches one eager call of a step.

While a step is traced, ``minidl.tensor._recorder`` is a ``Recorder``: ``Function.apply``,
``Tensor.backward``, ``Module.__call__`` and the optimizers report to it, and it records
each op (its class, where each input comes from, its options), each backward pass (the
engine's walk, the ops that plan it, the leaves) and each optimizer call. What it cannot
record it notes as its ``reason``, and the call finishes eagerly. ``minidl.capture``
guards and compiles; ``minidl.replay`` turns a record into a replay.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from minidl import autograd
from minidl.replay import CONST, PARAM, RECIPE, TABLE, Refused, observers_listening
from minidl.tensor import Function, Tensor

_FUNCTION_APPLY = Function.apply.__func__


def _holds_array(value: Any) -> bool:
    if isinstance(value, (np.ndarray, Tensor)):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(_holds_array(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    return False


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
        if observers_listening():
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
