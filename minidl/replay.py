"""The replay half of ``mdl.compile``: a recorded step run again on plain arrays.

``minidl.capture`` records one eager call of a step; ``Trace`` keeps that record and
replays it: fresh ``Function`` instances run ``forward`` and ``backward`` on arrays in
the recorded order, the backward pass repeats ``autograd.run_backward``'s numpy calls
(seed, sums over broadcast axes, casts, leaf writes through the same pass plan), and
the optimizer's own methods run where the step called them. No Tensor is built (but
for what the step returns), no graph is walked, no in-place check runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.autograd import PLAIN_CALCULUS, unbroadcast
from minidl.errors import MinidlError
from minidl.tensor import Tensor

# Where a value comes from: the table (the step's tensor arguments, then op outputs), a
# parameter read when used, a constant, or an array an option recipe recomputes.
TABLE, PARAM, CONST, RECIPE = 0, 1, 2, 3


class Refused(MinidlError):
    """Internal, never escapes: the recorder cannot record this (the message says what)."""


class Trace:
    """One recorded step and the guards under which its replay is valid.

    ``recorder`` is a ``minidl.capture.Recorder`` that watched the call which returned
    ``result``.
    """

    def __init__(self, recorder: Any, result: Any) -> None:
        self.n_args, self.n_ops = recorder.n_args, recorder.n_ops
        self.events = recorder.events
        self.params = [(p, p._data.shape, p._data.dtype) for p in recorder.params.values()]
        self.modules = [(m, module_state(m)) for m in recorder.modules.values()]
        self.result = self._structure(result, recorder)
        self._plan_freeing()
        self.program = [_compile_event(event) for event in self.events]

    def _structure(self, value: Any, recorder: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return (CONST, value)
        if isinstance(value, Tensor):
            return ("tensor", recorder._ref(value))
        if isinstance(value, (tuple, list)):
            return (type(value), [self._structure(v, recorder) for v in value])
        if isinstance(value, dict):
            return (dict, {k: self._structure(v, recorder) for k, v in value.items()})
        raise Refused(f"the step returns a {type(value).__name__}")

    def _plan_freeing(self) -> None:
        """Which table slots each event uses last, so a replay drops arrays as eager does."""
        last: dict[int, int] = {}
        for number, event in enumerate(self.events):
            for slot in _slots_used(event):
                last[slot] = number
        kept = set(_slots_in_result(self.result))
        self.frees: list[tuple[int, ...]] = [() for _ in self.events]
        by_event: dict[int, list[int]] = {}
        for slot, number in last.items():
            if slot not in kept:
                by_event.setdefault(number, []).append(slot)
        for number, slots in by_event.items():
            self.frees[number] = tuple(slots)
        # Inside a backward event, a node's output is dropped once the node is processed
        # (its consumers, which read its shape, come before it), as the engine does.
        for number, event in enumerate(self.events):
            if event[0] == "backward":
                done = set(self.frees[number])
                event[3][:] = [(op, leaf, parents, op is not None and self.n_args + op in done)
                               for op, leaf, parents, *_ in event[3]]

    def still_valid(self) -> str | None:
        """None, or what changed since the trace."""
        for param, shape, dtype in self.params:
            data = param._data
            if data.shape != shape or data.dtype != dtype or not param.requires_grad:
                return f"a parameter changed (now {data.shape}, {data.dtype})"
        for module, state in self.modules:
            if module_state(module) != state:
                return (f"{type(module).__name__} changed (train/eval mode, a parameter, a "
                        "buffer or another attribute)")
        return None

    def replay(self, arg_arrays: list[np.ndarray]) -> Any:
        n_args = self.n_args
        table: list[Any] = arg_arrays + [None] * self.n_ops
        fns: list[Any] = [None] * self.n_ops
        position = n_args
        frees = self.frees
        for number, event in enumerate(self.program):
            kind = event[0]
            if kind == "op":
                _, cls, refs, opts, fixed_opts, needs = event
                arrays = [table[ref[1]] if ref[0] == TABLE else resolve(ref, table)
                          for ref in refs]
                fn = cls()
                fn.needs_input_grad = needs
                if opts:
                    fixed_opts = {**fixed_opts, **{name: resolve(ref, table) for name, ref in opts}}
                out = fn.forward(*arrays, **fixed_opts)
                if type(out) is not np.ndarray:
                    out = np.asarray(out)
                table[position] = out
                fns[position - n_args] = fn
                position += 1
            elif kind == "backward":
                replay_backward(event, table, fns, n_args)
            else:
                event[1]()
            for slot in frees[number]:
                table[slot] = None
        return self._build(self.result, table)

    def _build(self, structure: Any, table: list[Any]) -> Any:
        kind, body = structure
        if kind == CONST:
            return body
        if kind == "tensor":
            if body[0] == PARAM:
                return body[1]
            return Tensor._from_op(resolve(body, table), None)
        if kind is dict:
            return {k: self._build(v, table) for k, v in body.items()}
        return kind(self._build(v, table) for v in body)


def _compile_event(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """An op event with its constant options merged once (the rest as recorded)."""
    if event[0] != "op":
        return event
    _, cls, refs, opts, needs = event
    fixed = {name: value for name, (kind, value) in opts if kind == CONST}
    varying = [(name, ref) for name, ref in opts if ref[0] != CONST]
    return ("op", cls, refs, varying, fixed, needs)


def module_state(module: Any) -> tuple[Any, ...]:
    """What a replay assumes of a module the step called: every attribute, by identity
    (its mode, parameters, buffers, and options such as a dropout's ``p`` and generator)."""
    return tuple(map(id, module.__dict__.values()))


def _table_slots(ref: tuple[int, Any]) -> list[int]:
    kind, value = ref
    if kind == TABLE:
        return [value]
    if kind == RECIPE:
        return [slot for r in value[1] for slot in _table_slots(r)]
    return []


def _slots_used(event: tuple[Any, ...]) -> list[int]:
    if event[0] == "op":
        return ([s for ref in event[2] for s in _table_slots(ref)]
                + [s for _, ref in event[3] for s in _table_slots(ref)])
    if event[0] == "backward":
        _, _, grad_ref, nodes, _, _, root_slot = event
        used = [root_slot] + ([] if grad_ref is None else _table_slots(grad_ref))
        for _, _, parents, *_ in nodes:
            used += [s for parent in parents if parent is not None
                     for s in _table_slots(parent[1])]
        return used
    return []


def _slots_in_result(structure: Any) -> list[int]:
    kind, body = structure
    if kind == CONST:
        return []
    if kind == "tensor":
        return _table_slots(body)
    values = body.values() if kind is dict else body
    return [slot for v in values for slot in _slots_in_result(v)]


def resolve(ref: tuple[int, Any], table: list[Any]) -> Any:
    """The array (or option) ``ref`` names in this replay."""
    kind, value = ref
    if kind == TABLE:
        return table[value]
    if kind == PARAM:
        return value._data  # read when used: the optimizer updates it in place
    if kind == CONST:
        return value
    recipe, refs = value
    return recipe(*[resolve(r, table) for r in refs])


def replay_backward(event: tuple[Any, ...], table: list[Any], fns: list[Any],
                    n_args: int) -> None:
    """``autograd.run_backward``'s numpy calls, in its order, on the replay's arrays."""
    _, root_op, grad_ref, nodes, planner_ops, leaves, root_slot = event
    plan = (fns[planner_ops[0]].plan_pass([fns[i] for i in planner_ops], leaves)
            if planner_ops else PLAIN_CALCULUS)
    root = table[root_slot]
    scale = plan.seed_scale
    if grad_ref is None:
        seed = np.empty(root.shape, dtype=np.float64)
        seed.fill(scale)
    else:
        seed = np.array(resolve(grad_ref, table), dtype=np.float64)
        if scale != 1.0:
            seed = seed * scale
    if root.ndim > 0:
        seed = seed.astype(plan.carry_dtype(root.dtype))
    root = None
    grads: dict[int, np.ndarray] = {0: seed}
    handed_to_leaves: set[int] = set()
    for k, (op, leaf, parents, drop_output) in enumerate(nodes):
        g = grads.pop(k, None)
        if op is None:
            if g is None:
                continue
            if id(g) in handed_to_leaves or g.base is not None or type(g) is not np.ndarray:
                g = np.array(g)  # each .grad is an array that owns its memory
            handed_to_leaves.add(id(g))
            plan.write_leaf(leaf, g)
            continue
        fn = fns[op]
        if drop_output:
            table[n_args + op] = None
        if g is None:  # every consumer returned None for it (a zero gradient)
            fn.release()
            continue
        input_grads = fn.backward(g)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        for parent, pg in zip(parents, input_grads):
            if pg is None or parent is None:
                continue
            key, (kind, value), is_op_output = parent
            data = table[value] if kind == TABLE else value._data  # an op output or a leaf
            if pg.shape != data.shape:
                pg = unbroadcast(pg, data.shape, type(fn).__name__)
            if pg.dtype != data.dtype and pg.ndim > 0 and is_op_output:
                target = plan.carry_dtype(data.dtype)
                if pg.dtype != target:
                    pg = pg.astype(target)
            # Out of place: a backward may hand the same array to two inputs.
            if key in grads:
                grads[key] = grads[key] + pg
            else:
                grads[key] = pg
        fn.release()
        fns[op] = None
