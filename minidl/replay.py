"""The replay half of ``mdl.compile``: a recorded step run again on plain arrays.

``minidl.capture`` records one eager call of a step; ``Trace`` keeps that record and
replays it through one generated function (``minidl.replay_source``): one ``Function``
instance per op, reused, runs ``forward`` and ``backward`` on arrays in the recorded
order, the backward pass repeats ``autograd.run_backward``'s numpy calls
(seed, sums over broadcast axes, casts, leaf writes through the same pass plan), and
the optimizer's own methods run where the step called them. No Tensor is built (but
for what the step returns), no graph is walked, no in-place check runs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from minidl.errors import MinidlError
from minidl.replay_source import write_replay
from minidl.tensor import Tensor

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)

# Where a value comes from: the table (the step's tensor arguments, then op outputs), a
# parameter read when used, a constant, or an array an option recipe recomputes.
TABLE, PARAM, CONST, RECIPE = 0, 1, 2, 3


BUSY = object()  # what ``Trace.replay`` returns when it cannot run now


class Refused(MinidlError):
    """Internal, never escapes: the recorder cannot record this (the message says what)."""


class Trace:
    """One recorded step and the guards under which its replay is valid.

    ``recorder`` is a ``minidl.recording.Recorder`` that watched the call which returned
    ``result``. The replay itself is one generated function (``minidl.replay_source``;
    ``source`` shows it).
    """

    def __init__(self, recorder: Any, result: Any) -> None:
        self.n_args, self.n_ops = recorder.n_args, recorder.n_ops
        self.events = recorder.events
        self.op_classes = [event[1] for event in self.events if event[0] == "op"]
        self.op_needs = [event[4] for event in self.events if event[0] == "op"]
        self.params = [(p, p._data.shape, p._data.dtype) for p in recorder.params.values()]
        #: Arguments, op outputs or parameters in float16 (whose gradients' dtype may
        #: vary with the pass's count, see ``minidl.strategy.plan.BatchPlan.carry_dtype``).
        self.float16 = any(getattr(kept, "dtype", None) == np.float16 for kept in
                           recorder.keep) or any(dtype == np.float16 for *_, dtype in self.params)
        modules = list(recorder.modules.values())
        self.modules = [(m.__dict__, module_state(m), type(m).__name__) for m in modules]
        # Compared only after some module changed (``nn.Module`` counts changes).
        self._module_changes = _tensor_module._module_changes
        self.result = self._structure(result, recorder)
        self.kept = sorted(set(_slots_in_result(self.result)))
        self._plan_freeing()
        self.source, self._run, self._fns, self._noting = write_replay(self)
        # Held while a replay runs: the ``Function``s it reuses are in use.
        self._running = threading.Lock()

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
        kept = set(self.kept)
        by_event: dict[int, set[int]] = {}
        for slot, number in last.items():
            if slot not in kept:
                by_event.setdefault(number, set()).add(slot)
        self.frees: list[tuple[int, ...]] = []
        for number, event in enumerate(self.events):
            done = by_event.get(number, set())
            if event[0] == "backward":
                # A node's output is dropped once the node is processed (its consumers,
                # which read its shape, come before it), as the engine does.
                nodes = [(op, leaf, parents, op is not None and self.n_args + op in done)
                         for op, leaf, parents, *_ in event[3]]
                event[3][:] = nodes
                done = done - {self.n_args + op for op, _, _, drop in nodes if drop}
            self.frees.append(tuple(sorted(done)))

    def still_valid(self) -> str | None:
        """None, or what changed since the trace."""
        for param, shape, dtype in self.params:
            data = param._data
            if (data.shape != shape or (data.dtype is not dtype and data.dtype != dtype)
                    or not param.requires_grad):
                return f"a parameter changed (now {data.shape}, {data.dtype})"
        changes = _tensor_module._module_changes
        if changes == self._module_changes:
            return None
        for attributes, state, name in self.modules:
            if tuple(map(id, attributes.values())) != state:
                return (f"{name} changed (train/eval mode, a parameter, a buffer or "
                        "another attribute)")
        self._module_changes = changes  # other modules changed, or back as they were
        return None

    def replay(self, arg_arrays: list[np.ndarray]) -> Any:
        """Run the recorded step on these argument arrays; ``BUSY`` (without running) while
        another replay of this trace runs (the step called inside it, or another thread)."""
        if not self._running.acquire(blocking=False):
            return BUSY
        try:
            kept = self._run(*arg_arrays)
            if self._noting is not None:  # its shape checks have run: write them out
                self.source, self._run, self._fns, self._noting = write_replay(
                    self, self._noting)
        except BaseException:
            for fn in self._fns:  # drop whatever the failed replay saved on them
                fn.release()
            raise
        finally:
            self._running.release()
        return self._build(self.result, dict(zip(self.kept, kept)))

    def _build(self, structure: Any, table: dict[int, Any]) -> Any:
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
