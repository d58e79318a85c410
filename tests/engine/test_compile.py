"""``mdl.compile``: a replayed step gives bit-identical results to the same step run eagerly.

Each test builds two identical models (same seeds), runs one step function eagerly on
one and compiled on the other over several batches, and compares every parameter, the
optimizer state and the returned losses bit for bit (``np.array_equal`` on the same
dtype; eager is the independent reference: it builds the graph, walks it, dispatches).
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl import autograd
from minidl.nn import functional as F
from minidl.nn.layers import DropoutMask
from tests.helpers.compiled import (accumulating_step, assert_same, batches, make_net,
                                    plain_step, run_both, step_through,
                                    weighted_step)
from tests.helpers.opcheck import check_op


@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_replay_is_bit_identical_to_eager(strategy, dtype):
    run_both(plain_step, dtype, batches(dtype), strategy)


@pytest.mark.parametrize("make_step", [accumulating_step, weighted_step])
@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
def test_accumulation_masks_and_weights(make_step, strategy):
    for dtype in ("float16", "float32", "float64"):
        data = batches(dtype, masks=make_step is weighted_step)
        run_both(make_step, dtype, data, strategy, adam=dtype == "float64")


def test_a_plugin_strategy_replays_through_its_hooks(plugin_manager):
    calls = []

    class RunningMean:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="running-mean", description="deferred, by a plugin")

        @mdl.hookimpl
        def minidl_cost_scale(self, count, options):
            return 1.0 / count

        @mdl.hookimpl
        def minidl_loss_grad_scale(self, count, options):
            return 1.0

        @mdl.hookimpl
        def minidl_leaf_grad(self, grad, count, new_grad, new_count, options):
            calls.append(new_count)
            if grad is None:
                return new_grad / new_count
            return (grad * count + new_grad) / (count + new_count)

    plugin_manager.register(RunningMean(), name="running-mean-plugin")
    for make_step in (plain_step, accumulating_step):
        calls.clear()
        run_both(make_step, "float32", batches("float32"), "running-mean")
        assert len(calls) == 2 * 4 * 4 * (2 if make_step is accumulating_step else 1)


def test_replay_skips_the_graph(monkeypatch):
    net, opt = make_net("float32")
    step = mdl.compile(plain_step(net, opt))
    data = batches("float32")
    step(**data[0][0])

    def no_walk(root):
        raise AssertionError("a replay walked the graph")

    built = []
    from_op = mdl.Tensor._from_op.__func__

    def counting_from_op(cls, data, ctx):
        built.append(ctx)
        return from_op(cls, data, ctx)

    monkeypatch.setattr(autograd, "_walk", no_walk)
    monkeypatch.setattr(mdl.Tensor, "_from_op", classmethod(counting_from_op))
    for args, _ in data[1:]:
        step(**args)
    assert len(step.traces) == 1
    assert built == [None] * len(data[1:])  # only the returned loss, as a constant


def test_a_new_batch_shape_retraces(monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_DEBUG", "1")
    data = batches("float32", count=2, m=16) + batches("float32", count=2, m=10, seed=1)
    data.append(batches("float32", count=1, m=16, seed=2)[0])
    eager, compiled = make_net("float32"), make_net("float32")
    step_e, step_c = plain_step(*eager), mdl.compile(plain_step(*compiled))
    for args, _ in data:
        assert np.array_equal(step_e(**args).data, step_c(**args).data)
        assert_same(eager, compiled)
    assert len(step_c.traces) == 2
    assert capsys.readouterr().err.count("re-tracing") == 1  # the shape change, said once


def test_a_strategy_change_or_eval_mode_retraces():
    eager, compiled = make_net("float32", dropout=0.5), make_net("float32", dropout=0.5)
    step_e, step_c = plain_step(*eager), mdl.compile(plain_step(*compiled))
    data = batches("float32", count=6)
    for index, (args, _) in enumerate(data):
        if index == 2:
            eager[0].eval(), compiled[0].eval()  # dropout off: a replay must not draw
        with mdl.normalization("sum" if index >= 4 else "deferred"):
            assert np.array_equal(step_e(**args).data, step_c(**args).data)
        assert_same(eager, compiled)
    assert step_c.eager_reason is None and len(step_c.traces) == 2


def test_dropout_draws_afresh_on_each_replay_as_eager_does():
    step_c, eager, compiled = run_both(plain_step, "float32", batches("float32", count=5),
                                       dropout=0.5)
    generator = compiled[0][2].generator
    before = generator.bit_generator.state["state"]["state"]
    step_c(**batches("float32", count=1, seed=3)[0][0])
    assert generator.bit_generator.state["state"]["state"] != before
    assert eager[0][2].generator.bit_generator.state != generator.bit_generator.state


def test_dropout_mask_op_gradient():
    class Fixed:  # the same draw every time, so finite differences see one function
        def __init__(self):
            self.values = np.random.default_rng(0).random((3, 4))

        def random(self, shape):
            return self.values

    fixed = Fixed()
    keep = fixed.values >= 0.4
    check_op(lambda x: DropoutMask.apply(x, p=0.4, generator=fixed),
             lambda x: x * (keep / 0.6), [np.random.default_rng(1).normal(size=(3, 4))])


def mixed_dtypes(net, opt):
    def step(x, y):  # a float64 constant promotes the float32 graph: backward casts back
        opt.zero_grad()
        out = net(x) * mdl.tensor(0.5, dtype="float64")
        loss = F.binary_cross_entropy_with_logits(out, y.astype("float64"))
        loss.backward()
        opt.step()
        return loss
    return step


@pytest.mark.parametrize("strategy", ["deferred", "absorbed"])
def test_mixed_dtypes_replay_the_engine_casts(strategy):
    run_both(mixed_dtypes, "float32", batches("float32"), strategy)


def test_dropout_draws_as_before():
    """The op draws exactly what ``x * mask`` drew: the same generator call, the same mask."""
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    out = mdl.nn.Dropout(0.3, generator=4)(mdl.tensor(x))
    keep = np.random.default_rng(4).random((5, 3)) >= 0.3
    assert np.array_equal(out.data, x * (keep / 0.7).astype(np.float32))


def test_a_replay_holds_no_more_memory_than_eager():
    import tracemalloc

    rng = np.random.default_rng(0)
    x = mdl.tensor(rng.normal(size=(2048, 64)).astype(np.float32))
    y = mdl.tensor(rng.integers(0, 10, size=2048))
    peaks = []
    for compiled in (False, True):
        net = mdl.nn.Sequential(mdl.nn.Linear(64, 128, generator=0), mdl.nn.ReLU(),
                                mdl.nn.Linear(128, 10, generator=1))
        opt = mdl.optim.SGD(net.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        run = mdl.compile(step) if compiled else step
        run(x, y), run(x, y)
        tracemalloc.start()
        run(x, y)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] <= 1.01 * peaks[0]  # 1.02 if a replay kept each output to the end


def batch_norm_step(net, opt):
    norm = mdl.nn.BatchNorm1d(4)  # its running statistics are updated inside the op

    def step(x, y):
        opt.zero_grad()
        hidden = norm(net[0](x))
        loss = F.binary_cross_entropy_with_logits(net[-1](net[1](hidden)), y)
        loss.backward()
        opt.step()
        return loss
    step.norm = norm
    return step


def test_batch_norm_running_statistics_replay():
    eager, compiled = make_net("float64"), make_net("float64")
    step_e, inner = batch_norm_step(*eager), batch_norm_step(*compiled)
    step_c = mdl.compile(inner)
    for args, _ in batches("float64"):
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)
        assert np.array_equal(step_e.norm.running_var, inner.norm.running_var)
    assert step_c.eager_reason is None and len(step_c.traces) == 1


def test_aliased_arguments_and_a_replaced_parameter_retrace():
    def step_of(net, opt):
        def step(x, target, other):
            opt.zero_grad()
            hidden = net(x) * 0.5
            (F.mse_loss(hidden, target) + F.mse_loss(hidden, other)).backward()
            opt.step()
        return step

    eager, compiled = make_net("float64"), make_net("float64")
    step_e, step_c = step_of(*eager), mdl.compile(step_of(*compiled))
    data = [args for args, _ in batches("float64", count=6)]
    for index, args in enumerate(data):
        x, y = args["x"], args["y"]
        other = y if index < 2 else mdl.tensor(y.data[::-1].copy())  # aliased, then not
        if index == 4:  # a new parameter object: the traced one must not be updated
            for net, _ in (eager, compiled):
                net[0].bias = mdl.nn.Parameter(np.ones(4), dtype="float64")
                _.param_groups[0]["params"][1] = net[0].bias
        step_e(x, y, other), step_c(x, y, other)
        assert_same(eager, compiled)
    assert step_c.eager_reason is None and len(step_c.traces) == 2


def test_a_new_dropout_generator_or_rate_retraces():
    eager, compiled = make_net("float32", dropout=0.5), make_net("float32", dropout=0.5)
    step_e, step_c = plain_step(*eager), mdl.compile(plain_step(*compiled))
    for index, (args, _) in enumerate(batches("float32", count=6)):
        for net, _ in (eager, compiled):
            if index == 2:
                net[2].generator = np.random.default_rng(99)
            if index == 4:
                net[2].p = 0.25
        step_e(**args), step_c(**args)
        assert_same(eager, compiled)
    assert step_c.eager_reason is None and step_c.invalidations == 2


def test_an_op_with_its_own_init_is_made_afresh_each_replay():
    class Scaled(mdl.Function):  # forward reads state its __init__ sets
        saved_inputs, saves_output = (), False
        made = 0

        def __init__(self):
            Scaled.made += 1
            self.factor = 3.0

        def forward(self, a):
            return a * self.factor

        def backward(self, grad):
            return grad * self.factor

    step_c, _, _ = run_both(step_through(Scaled.apply), "float64", batches("float64"))
    (trace,) = step_c.traces.values()
    assert len(trace._fns) == trace.n_ops - 1  # every op but Scaled is made once, reused
    before = Scaled.made
    step_c(**batches("float64", count=1, seed=5)[0][0])
    assert Scaled.made == before + 1
