"""The replay half of ``mdl.compile``: a recorded step run again on plain arrays.

``minidl.capture`` records one eager call of a step; ``Trace`` keeps that record and
replays it through one generated function (``minidl.replay_source``), whose first lines
check the trace's guards (``minidl.replay_guard``): one ``Function``
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

from minidl import autograd
from minidl.errors import MinidlError
from minidl.replay_source import write_replay
from minidl.tensor import Tensor

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)

# Where a value comes from: the table (the step's tensor arguments, then op outputs), a
# parameter read when used, a constant, or an array an option recipe recomputes.
TABLE, PARAM, CONST, RECIPE = 0, 1, 2, 3


class Refused(MinidlError):
    """Internal, never escapes: the recorder cannot record this (the message says what)."""


class Trace:
    """One recorded step and the guards under which its replay is valid.

    ``recorder`` is a ``minidl.recording.Recorder`` that watched the call which returned
    ``result``; ``signature`` is the call's guard key (``CompiledStep._guard_key``: its
    arguments' parts, keyword names, strategy and grad mode). The replay, guards first,
    is one generated function, ``run(args, kwargs)`` (``minidl.replay_source``; ``source``
    shows it), which returns what the step returned, or ``MISS`` without running.
    """

    def __init__(self, recorder: Any, result: Any, signature: tuple[Any, ...]) -> None:
        self.signature = signature
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
        self.module_changes = _tensor_module._module_changes
        #: The backward observer last found not listening, and its plugin manager's
        #: generation then (see ``note_quiet_observer``).
        self.quiet_observer: Any = None
        self.quiet_generation: int | None = None
        if not observers_listening():
            self.note_quiet_observer()
        self.result = self._structure(result, recorder)
        self.kept = sorted(set(_slots_in_result(self.result)))
        self._plan_freeing()
        # Held while a replay runs: the ``Function``s it reuses are in use.
        self._running = threading.Lock()
        self.source, self.run, self._fns, self._noting = write_replay(self)

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
        if changes == self.module_changes:
            return None
        for attributes, state, name in self.modules:
            if tuple(map(id, attributes.values())) != state:
                return (f"{name} changed (train/eval mode, a parameter, a buffer or "
                        "another attribute)")
        self.module_changes = changes  # other modules changed, or back as they were
        return None

    def note_quiet_observer(self) -> None:
        """The backward observer does not listen (``observers_listening`` said so): the
        replay's guards accept it while its plugin manager's plugins stay the same."""
        observer = autograd._observer
        generation = getattr(getattr(observer, "__self__", None), "generation", None)
        if observer is None or generation is not None:
            self.quiet_observer, self.quiet_generation = observer, generation

    def rewrite(self) -> None:
        """Called by a replay whose shape checks have run: write the function without them."""
        self.source, self.run, self._fns, self._noting = write_replay(self, self._noting)

    def release_all(self) -> None:
        """Drop whatever a failed replay saved on the ``Function``s."""
        for fn in self._fns:
            fn.release()


def observers_listening() -> bool:
    """Whether a plugin implements ``minidl_after_backward`` (replay would skip it)."""
    observer = autograd._observer
    manager = getattr(observer, "__self__", None)
    if observer is None:
        return False
    if manager is None:
        return True  # someone else's observer: assume it listens
    return bool(manager.hook.minidl_after_backward.get_hookimpls())


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
