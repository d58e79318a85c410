"""The replay's generated source: after the first replay noted which way each check of
minidl's own ops goes (scalar outputs, tuple returns, unbroadcast), the trace writes
the function again without those checks, and stays bit-identical to eager; a user's
``Function`` keeps its checks."""

from __future__ import annotations

import numpy as np

import minidl as mdl
from tests.helpers.compiled import batches, make_net, plain_step, run_both, step_through

CHECKS = ("SHAPES[", "type(r) is not tuple", "if type(s", "pg.shape != d.shape")


def _trace(step):
    (trace,) = step.traces.values()
    return trace


def test_the_first_replay_notes_the_checks_and_the_second_function_has_none():
    step = mdl.compile(plain_step(*make_net("float32")))
    data = batches("float32", count=3)
    step(**data[0][0])  # traced
    assert _trace(step)._noting is not None and "SHAPES[" in _trace(step).source
    step(**data[1][0])  # the first replay runs the noting function, then it is rewritten
    trace = _trace(step)
    assert trace._noting is None
    assert not any(check in trace.source for check in CHECKS), trace.source


def test_a_broadcast_gradient_keeps_its_unbroadcast_without_the_check():
    def step_of(net, opt):
        shift = mdl.nn.Parameter(np.zeros((1,), dtype=net[0].weight.dtype))
        opt.add_param_group({"params": [shift]})
        return plain_step(net, opt, head=lambda logits: logits + shift)  # (m, 1) + (1,)

    step_c, eager, compiled = run_both(step_of, "float64", batches("float64"))
    source = _trace(step_c).source
    assert "pg = unbroadcast(pg, d.shape, 'Add')" in source
    assert "pg.shape != d.shape" not in source
    # the shift is the last parameter group: it learned, identically on both sides
    shift_e, shift_c = eager[1].param_groups[-1]["params"][0], compiled[1].param_groups[-1][
        "params"][0]
    assert np.array_equal(shift_e.data, shift_c.data) and shift_c.data[0] != 0.0


def test_a_users_function_keeps_its_checks():
    class Twice(mdl.Function):
        saved_inputs, saves_output = (), False

        def forward(self, a):
            return a * 2.0

        def backward(self, grad):
            return grad * 2.0  # not a tuple: the replay must keep checking

    step_c, _, _ = run_both(step_through(Twice.apply), "float64", batches("float64"))
    source = _trace(step_c).source
    twice = source[source.index("    # Twice\n", source.index("# backward")):]
    assert "if type(r) is not tuple:" in twice and "if pg.shape != d.shape:" in twice
