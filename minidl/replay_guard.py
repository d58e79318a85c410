"""The guards of a replay, written as the first lines of its generated function.

A compiled step replays a trace only while what the trace assumed still holds (the list
is in ``minidl.capture``'s module doc). ``CompiledStep`` checks it in full when a call
differs from the last one (``_guard_key``, ``Trace.still_valid``); this module writes the
same checks at the top of the trace's replay function (``minidl.replay_source``), so a
call like the last runs one Python function: checks, then the replay. Any check that
fails returns ``MISS`` before anything runs, and the call takes the full path, which
replays, re-traces or goes eager, and says why under ``MINIDL_DEBUG``.

Why written out: between two BLAS kernels little of Python's working set stays in cache,
and the full path touched a dozen objects in ten functions. On the 784-256-128-10 MLP at
b = 128 it cost 1.6% of a step (paired rounds, one BLAS thread), where the guards below
cost what a few attribute reads do.

The written checks are never looser than the full ones. Two are stricter, and the full
path makes them hold again before it replays: the count of module changes
(``Trace.still_valid`` catches up with it once it has compared the modules) and the
backward observer (``Trace.note_quiet_observer``, after ``observers_listening``).
"""

from __future__ import annotations

import sys
from typing import Any

from minidl import autograd
from minidl.gradmode import anomaly_enabled, grad_enabled
from minidl.tensor import Tensor

MISS = object()  # what a replay function returns when it did not run


def write_guards(writer: Any, trace: Any) -> None:
    """Write the checks of ``trace.signature`` and ``trace.params``, unpacking the step's
    arguments into the table's first slots, then take the trace's lock (or miss: busy)."""
    from minidl.strategy import registry  # not at import: ``import minidl`` loads no plugins

    writer.names.update(MISS=MISS, TENSOR=Tensor, TM=sys.modules["minidl.tensor"], AG=autograd,
                        ANOMALY=anomaly_enabled, GRAD=grad_enabled, ACTIVE=registry._active,
                        DEFAULT=registry._default_strategy, TRACE=trace,
                        LOCK=trace._running.acquire)
    parts, kwarg_names, strategy, grad_mode = trace.signature
    emit = writer.emit
    n_args = len(parts) - len(kwarg_names)
    # Traced or anomaly-checked calls run eagerly; the counts of arguments must match.
    emit(1, f"if (TM._recorder is not None or ANOMALY.get() or len(args) != {n_args}"
            f" or len(kwargs) != {len(kwarg_names)}):")
    emit(2, "return MISS")
    names = [f"a{i}" for i in range(len(parts))]
    if n_args:
        emit(1, f"{', '.join(names[:n_args])}, = args")
    if kwarg_names:
        emit(1, f"if tuple(kwargs) != {writer.name(kwarg_names, 'K')}:")
        emit(2, "return MISS")
        for name, keyword in zip(names[n_args:], kwarg_names):
            emit(1, f"{name} = kwargs[{keyword!r}]")
    slots: list[str] = []  # the table slot of each tensor argument, in order
    first_holders: list[str] = []  # those whose array no earlier argument holds
    for name, part in zip(names, parts):
        if part[0] == "tensor":
            _, shape, dtype, alias = part
            slot = f"s{len(slots)}"
            _emit_any(writer, [f"not isinstance({name}, TENSOR)", f"{name}.requires_grad"])
            emit(1, f"{slot} = {name}._data")
            tests = [f"{slot}.shape != {writer.name(shape, 'K')}",
                     _dtype_differs(writer, f"{slot}.dtype", dtype)]
            # The arguments share arrays as at the trace (``alias``: the first holder).
            if alias == len(slots):
                tests += [f"{slot} is {other}" for other in first_holders]
                first_holders.append(slot)
            else:
                tests.append(f"{slot} is not s{alias}")
            _emit_any(writer, tests)
            slots.append(slot)
        elif part[2] is None:
            _emit_any(writer, [f"{name} is not None"])
        else:
            _, kind, value = part
            _emit_any(writer, [f"type({name}) is not {writer.name(kind, 'K')}",
                               f"{name} != {writer.name(value, 'K')}"])
    emit(1, "strategy = ACTIVE.get()")
    _emit_any(writer, [f"(strategy if strategy is not None else DEFAULT()) is not "
                       f"{writer.name(strategy, 'K')}", f"GRAD.get() != {grad_mode!r}"])
    for param, shape, dtype in trace.params:
        param_name = writer.name(param, "P")
        emit(1, f"data = {param_name}._data")
        _emit_any(writer, [f"data.shape != {writer.name(shape, 'K')}",
                           _dtype_differs(writer, "data.dtype", dtype),
                           f"not {param_name}.requires_grad"])
    emit(1, "data = None")
    # The observer the full path found quiet, while its manager's plugins stay the same.
    emit(1, "observer = AG._observer")
    _emit_any(writer, ["TM._module_changes != TRACE.module_changes",
                       "observer is not None and (observer is not TRACE.quiet_observer"
                       " or observer.__self__.generation != TRACE.quiet_generation)"])
    _emit_any(writer, ["not LOCK(False)"])  # last: the replay that follows releases it


def _dtype_differs(writer: Any, expression: str, dtype: Any) -> str:
    name = writer.name(dtype, "K")
    return f"({expression} is not {name} and {expression} != {name})"


def _emit_any(writer: Any, tests: list[str]) -> None:
    """``if a or b ...: return MISS``."""
    writer.emit(1, f"if {' or '.join(tests)}:")
    writer.emit(2, "return MISS")
