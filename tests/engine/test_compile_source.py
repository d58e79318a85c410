"""The replay's generated source: after the first replay noted which way each check of
minidl's own ops goes (scalar outputs, tuple returns, unbroadcast), the trace writes
the function again without those checks, and stays bit-identical to eager; a user's
``Function`` keeps its checks."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_the_second_function_assigns_the_gradients_it_knows_are_set():
    step_c, _, _ = run_both(plain_step, "float64", batches("float64"))
    source = _trace(step_c).source
    backward = source[source.index("# backward"):]
    # Only the seed's own check stays; no gradient is tested for None, no leaf for aliasing.
    assert "is None" not in backward and "handed" not in backward, source
    assert "pg.dtype != d.dtype" not in backward and "pg = " not in backward, source


def test_float16_keeps_its_cast_checks():
    # The dtype a float16 gradient arrives in follows the pass's count (float32 carry
    # unless the seed scale is 1), so the check cannot be noted once for all batches.
    step_c, _, _ = run_both(plain_step, "float16", batches("float16"))
    assert "pg.dtype != d.dtype" in _trace(step_c).source


@pytest.mark.parametrize("strategy", ["deferred", "sum"])  # sum keeps the array it is given
def test_two_leaves_handed_one_array_get_an_array_each(strategy):
    def step_of(net, opt):
        a, b = (mdl.nn.Parameter(np.full((16, 1), v, dtype=net[0].weight.dtype))
                for v in (0.5, -0.5))
        opt.add_param_group({"params": [a, b]})
        return plain_step(net, opt, head=lambda logits: logits + (a + b))  # Add: (g, g)

    step_c, _, (_, opt_c) = run_both(step_of, "float64", batches("float64"), strategy)
    a, b = opt_c.param_groups[-1]["params"]
    assert not np.shares_memory(a.grad, b.grad)
    assert np.array_equal(a.grad, b.grad)  # the same values (Add), as eager gave
    (written,) = [line for line in _trace(step_c).source.splitlines() if "write_leaves((" in line]
    leaves, grads = written.split("), (")
    assert leaves.count("P") == 6  # 4 layer parameters, a, b: written out, no checks
    assert grads.count("array(g") == 1  # the second leaf handed the same array gets a copy


class Blocked(mdl.Function):
    saved_inputs, saves_output = (), False

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (None,)  # a zero gradient, as torch's None


class Twice(mdl.Function):
    saved_inputs, saves_output = (), False

    def forward(self, a):
        return a * 2.0

    def backward(self, grad):
        return (grad * 2.0,)


def test_a_users_op_that_returns_no_gradient_keeps_the_none_checks():
    step_c, _, (net_c, _) = run_both(step_through(Blocked.apply), "float64", batches("float64"))
    assert all(p.grad is None for p in net_c.parameters())
    backward = _trace(step_c).source.split("# backward")[1]
    assert "if pg is not None:" in backward and "is None:" in backward


def test_a_none_gradient_then_a_real_one_for_the_same_input():
    # The walk reaches Blocked before Twice: the logits' first contribution is None, so
    # the second must be assigned, not added to None.
    head = step_through(lambda logits: Blocked.apply(logits) + Twice.apply(logits))
    step_c, _, (net_c, _) = run_both(head, "float64", batches("float64"))
    assert all(p.grad is not None for p in net_c.parameters())


def test_gradient_states_follow_the_noted_none_returns():
    from minidl.replay_source import MAYBE, SET, UNSET, _gradient_states, _Writer

    class Ours:
        ours = True

    # op 0 (the root) feeds op 1, which feeds the leaf.
    nodes = [(0, None, ((1, None, True),), False), (1, None, ((2, None, False),), False),
             (None, object(), (), False)]
    fns = [Ours(), Ours()]
    noted = {"none 0.0": True, "none 1.0": True}
    assert _gradient_states(_Writer(noted, False), fns, nodes)[0] == [SET, SET, SET]
    assert _gradient_states(_Writer({"none 0.0": False}, False), fns, nodes)[0] == [
        SET, UNSET, UNSET]
    assert _gradient_states(_Writer(None, False), fns, nodes)[0] == [SET, MAYBE, MAYBE]
