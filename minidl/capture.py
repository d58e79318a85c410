"""``compile``: trace a training step once, then replay it on plain numpy arrays.

This module guards and compiles; ``minidl.recording`` records, ``minidl.replay`` (with
``minidl.replay_source``) replays.

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
done in Python outside ops happen on the traced call only (minidl's own value checks,
label and index ranges, live in the ops' ``forward``). Random ops
must be ``Function``s that draw in ``forward`` (``nn.Dropout`` does), so a replay
draws fresh randomness from the same generator.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

from minidl import autograd
from minidl.gradmode import anomaly_enabled, grad_enabled
from minidl.recording import Recorder
from minidl.replay import Refused, Trace, observers_listening
from minidl.replay_guard import MISS
from minidl.tensor import Tensor

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
        self._recent: Trace | None = None  # the trace the last call replayed or made
        self.__wrapped__ = step
        self.__doc__ = getattr(step, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recent = self._recent
        if recent is not None:  # a call like the last: its replay checks its own guards
            result = recent.run(args, kwargs)
            if result is not MISS:
                return result
        return self._call(args, kwargs)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The full path: find the trace for these guards and replay it, or trace, or run
        eagerly (the guards are in the module doc; ``minidl.replay_guard`` writes them)."""
        self._recent = None
        if (self.eager_reason is not None or _tensor_module._recorder is not None
                or anomaly_enabled.get()):
            return self.step(*args, **kwargs)
        key = self._guard_key(args, kwargs)
        if key is None:
            return self.step(*args, **kwargs)
        trace = self.traces.get(key)
        if trace is not None:
            changed = trace.still_valid()
            if changed is None and autograd._observer is not None:
                if observers_listening():
                    changed = "a plugin now observes every backward"
                else:
                    trace.note_quiet_observer()
            if changed is None:
                result = trace.run(args, kwargs)
                if result is MISS:  # called inside its own replay, or by another thread
                    return self.step(*args, **kwargs)
                self._recent = trace
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

    def _guard_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The key a trace of this call is kept under (None: the step cannot be compiled,
        ``eager_reason`` says why): each argument's part (a tensor's shape, dtype and the
        first argument holding the same array; another value's type and value), the
        keyword names, the active strategy and grad mode."""
        arrays: list[np.ndarray] = []
        parts: list[Any] = []
        for value in (*args, *kwargs.values()) if kwargs else args:
            if type(value) is Tensor or isinstance(value, Tensor):
                if value.requires_grad:
                    self._go_eager("a tensor argument requires grad")
                    return None
                data = value._data
                alias = len(arrays)  # aliasing: the first argument holding the same array
                for index, seen in enumerate(arrays):
                    if seen is data:
                        alias = index
                        break
                parts.append(("tensor", data.shape, data.dtype, alias))
                arrays.append(data)
            elif value is None or isinstance(value, (bool, int, float, str)):
                parts.append(("value", type(value), value))
            else:
                self._go_eager(f"an argument of type {type(value).__name__} (pass tensors, "
                               "or Python numbers and strings, which are guarded by value)")
                return None
        # The strategy object itself (hashed by identity): a new one is made whenever its
        # options or the plugin set change.
        return (tuple(parts), tuple(kwargs), _active_strategy(), grad_enabled.get())

    def _go_eager(self, reason: str) -> None:
        self.eager_reason = reason
        self.traces.clear()
        self._recent = None
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
                trace = Trace(recorder, result, key)
            except Refused as refused:
                recorder.reason = str(refused)
        if trace is None:
            self._go_eager(str(recorder.reason))
            return result
        if len(self.traces) >= _MAX_TRACES:
            del self.traces[next(iter(self.traces))]
        self.traces[key] = trace
        self._recent = trace
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
