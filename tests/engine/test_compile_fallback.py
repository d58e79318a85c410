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
