"""``mdl.compile`` runs a step eagerly for good when it cannot replay it, and says why."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.nn import functional as F
from tests.helpers.compiled import assert_same, batches, make_net, plain_step


def value_dependent(net, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        if loss.item() > 0.0:  # Python control flow on a value: cannot be replayed
            loss = loss * 2.0
        loss.backward()
        opt.step()
        return loss
    return step


def closure_constant(net, opt):
    offset = mdl.tensor(np.ones((16, 1)))

    def step(x, y):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x) + offset, y)
        loss.backward()
        opt.step()
        return loss
    return step


def comparison_mask(net, opt):
    def step(x, y):
        opt.zero_grad()
        out = net(x)
        loss = F.binary_cross_entropy_with_logits(out, y, mask=(out > 0).reshape(-1))
        loss.backward()
        opt.step()
        return loss
    return step


def grad_read(net, opt):
    def step(x, y):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(net(x), y).backward()
        for p in net.parameters():
            p.grad *= 0.5  # work outside ops: a replay would skip it
        opt.step()
    return step


@pytest.mark.parametrize("make_step,reason", [
    (value_dependent, ".item()"), (closure_constant, "neither an argument"),
    (comparison_mask, "comparison"), (grad_read, ".grad")])
def test_steps_the_recorder_cannot_replay_run_eagerly(make_step, reason, monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_DEBUG", "1")
    eager, compiled = make_net("float64"), make_net("float64")
    step_e, step_c = make_step(*eager), mdl.compile(make_step(*compiled))
    for args, _ in batches("float64"):
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)
    assert reason in step_c.eager_reason and not step_c.traces
    assert capsys.readouterr().err.count("runs eagerly from now on") == 1


def test_unsupported_arguments_and_a_scheduler_inside_run_eagerly():
    net, opt = make_net("float32")
    step = mdl.compile(lambda x, y: plain_step(net, opt)(mdl.tensor(x), mdl.tensor(y)))
    args = batches("float32")[0][0]
    step(args["x"].data.copy(), args["y"].data.copy())
    assert "ndarray" in step.eager_reason
    scheduler = mdl.optim.lr_scheduler.StepLR(opt, step_size=1)

    def with_schedule(x, y):
        plain_step(net, opt)(x, y)
        scheduler.step()

    step = mdl.compile(with_schedule)
    step(**args)
    assert "scheduler" in step.eager_reason


def data_read(net, opt):
    def step(x, y):
        opt.zero_grad()
        scale = float(x.data.std())  # a value read outside ops, then used as a constant
        F.binary_cross_entropy_with_logits(net(x * scale), y).backward()
        opt.step()
    return step


def test_a_data_read_runs_eagerly():
    eager, compiled = make_net("float32"), make_net("float32")
    step_e, step_c = data_read(*eager), mdl.compile(data_read(*compiled))
    for args, _ in batches("float32"):
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)
    assert ".data" in step_c.eager_reason


def test_a_module_changed_before_every_call_ends_up_eager():
    eager, compiled = make_net("float32"), make_net("float32")
    step_e, step_c = plain_step(*eager), mdl.compile(plain_step(*compiled))
    for args, _ in batches("float32", count=20):
        compiled[0][1].note = object()  # each call finds the module changed: re-trace
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)
    assert "keeps changing" in step_c.eager_reason


def test_a_replay_keeps_no_saved_arrays_between_steps():
    step = mdl.compile(plain_step(*make_net("float32")))
    for args, _ in batches("float32", count=3):
        step(**args)
    (trace,) = step.traces.values()
    assert "def replay(" in trace.source
    assert all(not vars(fn) for fn in trace._fns)  # each reused op was emptied by release


def test_a_failed_replay_empties_its_ops_and_the_next_one_runs():
    class FailOnce(mdl.Function):
        saved_inputs, saves_output = (0,), False
        fail = False

        def forward(self, a):
            self.a = a
            if FailOnce.fail:
                raise RuntimeError("boom")
            return a * 2

        def backward(self, grad):
            return grad * 2

    w = mdl.nn.Parameter(np.ones(3, dtype=np.float32))
    opt = mdl.optim.SGD([w], lr=0.1)

    @mdl.compile
    def step(x):
        opt.zero_grad()
        mdl.nn.functional.mse_loss(FailOnce.apply(w) * x, x).backward()
        opt.step()

    x = mdl.tensor(np.arange(3, dtype=np.float32))
    step(x), step(x)
    FailOnce.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        step(x)
    FailOnce.fail = False
    (trace,) = step.traces.values()
    assert all(not vars(fn) for fn in trace._fns)
    before = w.data.copy()
    step(x)
    assert not np.array_equal(before, w.data) and step.eager_reason is None


def test_a_step_called_inside_its_own_replay_runs_eagerly():
    calls = []

    class CallsTheStep(mdl.Function):  # a user's op that (oddly) calls the compiled step
        saved_inputs, saves_output = (), False

        def forward(self, a):
            if not calls:
                calls.append("inner")
                step(x)
            return a.copy()

        def backward(self, grad):
            return grad

    w = mdl.nn.Parameter(np.full(2, 3.0))

    @mdl.compile
    def step(x):
        mdl.nn.functional.mse_loss(CallsTheStep.apply(w) * x, x).backward()

    x = mdl.tensor(np.ones(2))
    step(x), step(x)  # traced (the inner call meets the recorder: eager), then replayed
    calls.clear()
    w.grad = None
    step(x)  # the inner call finds the trace busy and runs eagerly
    assert calls == ["inner"] and step.eager_reason is None
    # Both passes ran: each gives d mean((w x - x)^2) / dw = (w - 1) x^2 = 2, over 2 examples.
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])
    assert w.grad_count == 4
