"""The guards a replay function checks itself (``minidl.replay_guard``): a call like the
last one replays without the full guard path, and any change of what the trace assumed
makes the replay step aside, so the call re-traces or runs eagerly. Each test compares
against the same step run eagerly on an identical model, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.capture import CompiledStep
from minidl.errors import GraphError
from minidl.nn import functional as F
from tests.helpers.compiled import assert_same, batches, make_net, plain_step


def scaled_step(net, opt):
    def step(x, y, scale):  # a Python number: guarded by type and value
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x), y) * scale
        loss.backward()
        opt.step()
        return loss
    return step


def both(make_step=plain_step):
    eager, compiled = make_net("float64"), make_net("float64")
    return eager, compiled, make_step(*eager), mdl.compile(make_step(*compiled))


def test_a_repeated_call_replays_without_the_full_guard_path(monkeypatch):
    eager, compiled, step_e, step_c = both()
    data = batches("float64", count=5)
    for args, _ in data[:2]:  # traced, then the first replay (which notes its checks)
        step_e(**args), step_c(**args)

    def full_path(self, args, kwargs):
        raise AssertionError("a call like the last took the full guard path")

    monkeypatch.setattr(CompiledStep, "_call", full_path)
    for args, _ in data[2:]:
        assert np.array_equal(step_e(**args).data, step_c(**args).data)
    assert_same(eager, compiled)


@pytest.mark.parametrize("change", ["keyword order", "positional", "number value",
                                    "number type", "dtype"])
def test_a_changed_call_signature_retraces(change):
    eager, compiled, step_e, step_c = both(scaled_step)
    data = batches("float64", count=4)
    calls = []
    for index, (args, _) in enumerate(data):
        x, y = args["x"], args["y"]
        call = ((), {"x": x, "y": y, "scale": 2.0})
        if index >= 2:
            call = {"keyword order": ((), {"scale": 2.0, "y": y, "x": x}),
                    "positional": ((x, y, 2.0), {}),
                    "number value": ((), {"x": x, "y": y, "scale": 3.0}),
                    "number type": ((), {"x": x, "y": y, "scale": 2}),
                    "dtype": ((), {"x": mdl.tensor(x.data, dtype="float32"), "y": y,
                                   "scale": 2.0})}[change]
        calls.append(call)
    for positional, keywords in calls:
        out_e, out_c = step_e(*positional, **keywords), step_c(*positional, **keywords)
        assert out_e.dtype == out_c.dtype and np.array_equal(out_e.data, out_c.data)
        assert_same(eager, compiled)
    assert step_c.eager_reason is None and len(step_c.traces) == 2


def test_one_array_passed_twice_retraces_a_trace_of_two():
    def step_of(net, opt):
        def step(x, target, other):
            opt.zero_grad()
            hidden = net(x)
            (F.mse_loss(hidden, target) + F.mse_loss(hidden, other)).backward()
            opt.step()
        return step

    eager, compiled = make_net("float64"), make_net("float64")
    step_e, step_c = step_of(*eager), mdl.compile(step_of(*compiled))
    for index, (args, _) in enumerate(batches("float64", count=4)):
        x, y = args["x"], args["y"]
        other = mdl.tensor(y.data + 1.0) if index < 2 else y  # two arrays, then one
        step_e(x, y, other), step_c(x, y, other)
        assert_same(eager, compiled)
    assert len(step_c.traces) == 2


def test_a_frozen_parameter_is_not_replayed_into():
    eager, compiled, step_e, step_c = both()
    data = batches("float64", count=5)
    for index, (args, _) in enumerate(data):
        if index == 3:
            for net, _ in (eager, compiled):
                net[0].weight.requires_grad = False
                net[0].weight.grad = None
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)  # the frozen weight kept its values in both
    # The traced step read the weight as a parameter; now it is a constant it closes over.
    assert "neither an argument of the step" in step_c.eager_reason


def test_no_grad_mode_is_not_replayed():
    _, _, step_e, step_c = both()
    data = batches("float64", count=3)
    for args, _ in data[:2]:
        step_e(**args), step_c(**args)
    with mdl.no_grad():  # eager's backward refuses: so must the compiled step
        with pytest.raises(GraphError) as eager_error:
            step_e(**data[2][0])
        with pytest.raises(GraphError) as compiled_error:
            step_c(**data[2][0])
    assert str(compiled_error.value) == str(eager_error.value)


def test_an_observer_registered_after_the_trace_is_called(plugin_manager):
    """The strategy object stays the same inside ``normalization``, so only the observer
    check notices the new plugin."""
    seen = []

    class Observer:
        @mdl.hookimpl
        def minidl_after_backward(self, root, leaves, grads, strategy):
            seen.append(strategy)

    eager, compiled, step_e, step_c = both()
    data = batches("float64", count=4)
    with mdl.normalization("sum"):
        for index, (args, _) in enumerate(data):
            if index == 2:
                plugin_manager.register(Observer(), name="observer")
            step_e(**args), step_c(**args)
            assert_same(eager, compiled)
    assert seen == ["sum"] * 4  # eager's two passes and the compiled step's two


def test_a_quiet_observer_is_checked_again_when_plugins_change(plugin_manager):
    """A new plugin that observes nothing costs one call on the full path, which finds the
    observer still quiet; then the replay goes on (no re-trace, no eager fallback)."""
    eager, compiled, step_e, step_c = both()
    data = batches("float64", count=5)
    with mdl.normalization("sum"):  # the same strategy object throughout
        for index, (args, _) in enumerate(data):
            if index == 2:
                plugin_manager.register(object(), name="nothing")  # the plugin set changed
            step_e(**args), step_c(**args)
            assert_same(eager, compiled)
    (trace,) = step_c.traces.values()
    assert trace.quiet_generation == plugin_manager.generation
    assert step_c.eager_reason is None
