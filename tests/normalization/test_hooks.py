"""One test per hook, named ``test_hook_<hookname>`` (tests/test_hookspecs_meta.py asks for them).

Each test installs a plugin on the test's own plugin manager (tests/conftest.py) and
checks what the hook received and what minidl did with its answer against values
computed here by hand with numpy. ``minidl_after_backward`` is tested in
test_plugin_machinery.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

import minidl as mdl
from minidl.cli.plugins import describe_plugins
from minidl.config import load_config
from minidl.strategy import resolve_strategy, strategy_index
from minidl.trainer import Trainer

# ---- strategy hooks ----------------------------------------------------------------------


def test_hook_minidl_strategy_info(plugin_manager):
    """The info names the strategy and its aliases, and its options model is validated."""
    class Options(BaseModel):
        k: float = 2.0

    asked = []

    class Scaled:
        """k / N times the sum."""

        @mdl.hookimpl
        def minidl_strategy_info(self):
            asked.append(1)
            return mdl.StrategyInfo(name="scaled", aliases=("scaled-k",),
                                    description="k / N times the sum", options=Options)

        @mdl.hookimpl
        def minidl_cost_scale(self, count, options):
            return options.k / count

    plugin = Scaled()
    plugin_manager.register(plugin, name="scaled-plugin")
    index = strategy_index(plugin_manager)
    assert index["scaled"][0] is plugin and index["scaled-k"][0] is plugin
    assert index["scaled-k"][1].name == "scaled"
    assert resolve_strategy("scaled-k").name == "scaled"
    losses = np.array([1.0, 2.0, 6.0])
    assert mdl.batch_reduce(losses, strategy="scaled").item() == pytest.approx(2.0 * 9 / 3)
    three = resolve_strategy("scaled-k", {"k": 3.0})
    assert mdl.batch_reduce(losses, strategy=three).item() == pytest.approx(3.0 * 9 / 3)
    with pytest.raises(mdl.ConfigError, match="no option 'power'"):
        resolve_strategy("scaled", {"power": 1})
    row = next(r for r in describe_plugins(plugin_manager) if r["name"] == "scaled")
    assert row["kind"] == "strategy" and row["aliases"] == ["scaled-k"]
    assert row["description"] == "k / N times the sum"
    # Asked once per change of the plugin set, not once per lookup.
    calls = len(asked)
    strategy_index(plugin_manager)
    assert len(asked) == calls

    class Observer:
        @mdl.hookimpl
        def minidl_train_start(self, trainer):
            pass

    plugin_manager.register(Observer(), name="observer")
    strategy_index(plugin_manager)
    assert len(asked) == calls + 1


def test_hook_minidl_cost_scale(plugin_manager):
    """J = c * sum_i w_i l_i with the plugin's c, for the count N = sum of the weights."""
    counts = []

    class Quarter:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="quarter")

        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            counts.append(count)
            return 1.0 / (4.0 * count)

    plugin_manager.register(Quarter(), name="quarter-plugin")
    values = np.array([1.0, -2.0, 3.0, 0.5])
    weights = np.array([1.0, 2.0, 0.5, 0.0])
    losses = mdl.tensor(values, requires_grad=True, dtype="float64")
    with mdl.normalization("quarter"):
        cost = mdl.batch_reduce(losses, sample_weight=weights)
    c = 1.0 / (4.0 * weights.sum())
    assert counts and set(counts) == {3.5}  # also asked for s, which defaults to c
    assert cost.item() == pytest.approx(c * (values * weights).sum(), rel=1e-15)
    cost.backward()  # no minidl_loss_grad_scale: dJ/dl_i = c * w_i, plain calculus of J
    np.testing.assert_allclose(losses.grad, c * weights, rtol=1e-15)
    masked = mdl.batch_reduce(values, mask=np.array([True, False, True, True]),
                              strategy="quarter")
    assert counts[-1] == 3.0  # a mask counts the examples it keeps
    assert masked.item() == pytest.approx((1.0 + 3.0 + 0.5) / 12.0)


def test_hook_minidl_loss_grad_scale(plugin_manager):
    """s = 1 with c = 1/N seeds the whole pass with N: a penalty branch is scaled too."""
    seen = []

    class SeedN:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="seed-n")

        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            return 1.0 / count

        @mdl.hookimpl
        def minidl_loss_grad_scale(self, count):
            seen.append(count)
            return 1.0

    plugin_manager.register(SeedN(), name="seed-n-plugin")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3))
    w0 = rng.standard_normal(3)
    w = mdl.tensor(w0, requires_grad=True, dtype="float64")
    with mdl.normalization("seed-n"):
        data_term = mdl.batch_reduce(mdl.tensor(x) @ w)  # l_i = x_i . w
    cost = data_term + (w * w).sum() * 0.5  # an L2 penalty that skips the reduction
    assert seen == [5.0]
    assert cost.item() == pytest.approx((x @ w0).mean() + 0.5 * w0 @ w0)
    cost.backward()
    # dJ/dl_i = s = 1, so the data term gives sum_i x_i; the seed N scales the penalty's w.
    np.testing.assert_allclose(w.grad, x.sum(axis=0) + 5.0 * w0, rtol=1e-12)


def test_hook_minidl_leaf_grad(plugin_manager):
    """The hook gets only the normalized part and its count; plain terms are kept apart."""
    calls: list[dict[str, Any]] = []

    class RunningMean:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="running-mean")

        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            return 1.0 / count

        @mdl.hookimpl
        def minidl_loss_grad_scale(self, count):
            return 1.0

        @mdl.hookimpl
        def minidl_leaf_grad(self, grad, count, new_grad, new_count):
            calls.append({"grad": None if grad is None else grad.copy(), "count": count,
                          "new_grad": new_grad.copy(), "new_count": new_count})
            if grad is None:
                return new_grad / new_count
            return (grad * count + new_grad) / (count + new_count)

    plugin_manager.register(RunningMean(), name="running-mean-plugin")
    rng = np.random.default_rng(5)
    first, second = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    w0 = rng.standard_normal(3)
    w = mdl.tensor(w0, requires_grad=True, dtype="float64")
    with mdl.normalization("running-mean"):
        mdl.batch_reduce(mdl.tensor(first) @ w).backward()
        (w * w).sum().backward()  # plain calculus: 2 w, outside the running mean
        mdl.batch_reduce(mdl.tensor(second) @ w).backward()
    assert [(c["count"], c["new_count"]) for c in calls] == [(0.0, 2.0), (2.0, 4.0)]
    assert calls[0]["grad"] is None
    np.testing.assert_allclose(calls[0]["new_grad"], first.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(calls[1]["grad"], first.mean(axis=0), rtol=1e-12)  # no 2 w
    np.testing.assert_allclose(calls[1]["new_grad"], second.sum(axis=0), rtol=1e-12)
    every_example = np.concatenate([first, second]).mean(axis=0)
    np.testing.assert_allclose(w.grad, every_example + 2 * w0, rtol=1e-12)
    assert w.grad_count == 6


# ---- training hooks ----------------------------------------------------------------------
# Full batch, float64, no shuffling: one optimizer step per epoch, and the loss of step k
# is the mean BCE of the weights after step k - 1, computed here with numpy.

FULL_BATCH = ["output.dir=", "train.dtype=float64", "train.shuffle=false",
              "train.batch_size=1000", "data.options={n: 40}"]


def _numpy_cost_and_accuracy(trainer: Trainer, weights: dict[str, np.ndarray]
                             ) -> tuple[float, float]:
    """Mean binary cross-entropy (from logits) and accuracy of the 2-4-1 tanh net."""
    x = trainer.data.train.features.astype(np.float64)
    y = trainer.data.train.targets.astype(np.float64).reshape(-1)
    hidden = np.tanh(x @ weights["0.weight"].T + weights["0.bias"])
    z = (hidden @ weights["2.weight"].T + weights["2.bias"]).reshape(-1)
    losses = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(losses.mean()), float(((z > 0) == (y > 0.5)).mean())


class _Recorder:
    """Records every training hook call, with the weights at that moment."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    @mdl.hookimpl
    def minidl_train_start(self, trainer):
        self.calls.append(("start", trainer, trainer.epoch, trainer.step,
                           trainer.model.state_dict()))

    @mdl.hookimpl
    def minidl_step_end(self, trainer, step, loss):
        self.calls.append(("step", step, loss, trainer.model.state_dict()))

    @mdl.hookimpl
    def minidl_epoch_end(self, trainer, epoch, metrics):
        self.calls.append(("epoch", epoch, dict(metrics), metrics is trainer.history[-1]))
        return epoch == self.stop_at

    @mdl.hookimpl
    def minidl_train_end(self, trainer, history):
        self.calls.append(("end", history, trainer.epoch, trainer.step))

    def of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


def _fit(plugin_manager, *plugins, epochs: int = 3) -> tuple[Trainer, dict[str, np.ndarray]]:
    for plugin in plugins:
        plugin_manager.register(plugin)
    trainer = Trainer(load_config(overrides=[*FULL_BATCH, f"train.epochs={epochs}"]))
    initial = trainer.model.state_dict()
    trainer.fit()
    return trainer, initial


def test_hook_minidl_train_start(plugin_manager):
    recorder = _Recorder()
    trainer, initial = _fit(plugin_manager, recorder)
    starts = recorder.of("start")
    assert len(starts) == 1 and recorder.calls[0] is starts[0]  # once, before anything else
    _, seen_trainer, epoch, step, weights = starts[0]
    assert seen_trainer is trainer and (epoch, step) == (0, 0)
    for name, array in initial.items():
        np.testing.assert_array_equal(weights[name], array)  # no step taken yet
        assert not np.array_equal(trainer.model.state_dict()[name], array)


def test_hook_minidl_step_end(plugin_manager):
    recorder = _Recorder()
    trainer, initial = _fit(plugin_manager, recorder)
    steps = recorder.of("step")
    assert [s[1] for s in steps] == [1, 2, 3] and trainer.step == 3
    before = [initial] + [s[3] for s in steps[:-1]]  # the weights each step's batch saw
    for (_, _, loss, after), weights in zip(steps, before):
        assert loss == pytest.approx(_numpy_cost_and_accuracy(trainer, weights)[0], rel=1e-12)
        assert any(not np.array_equal(after[k], weights[k]) for k in weights)  # it stepped
    for name, array in steps[-1][3].items():
        np.testing.assert_array_equal(trainer.model.state_dict()[name], array)


def test_hook_minidl_epoch_end(plugin_manager):
    """Metrics are the epoch's numbers; any plugin answering True stops training."""
    recorder, never = _Recorder(stop_at=2), _Recorder(stop_at=None)
    trainer, initial = _fit(plugin_manager, recorder, never, epochs=5)
    epochs = recorder.of("epoch")
    assert [e[1] for e in epochs] == [1, 2] and [e[1] for e in never.of("epoch")] == [1, 2]
    assert trainer.epoch == 2 and len(trainer.history) == 2 and trainer.step == 2
    before = [initial, recorder.of("step")[0][3]]
    for (_, epoch, metrics, is_history_row), weights in zip(epochs, before):
        loss, accuracy = _numpy_cost_and_accuracy(trainer, weights)
        assert is_history_row and metrics["epoch"] == epoch
        assert metrics["train_loss"] == pytest.approx(loss, rel=1e-12)
        assert metrics["train_accuracy"] == pytest.approx(accuracy)


def test_hook_minidl_train_end(plugin_manager):
    recorder = _Recorder(stop_at=2)
    trainer, _ = _fit(plugin_manager, recorder, epochs=4)
    ends = recorder.of("end")
    assert len(ends) == 1 and recorder.calls[-1] is ends[0]  # once, after everything else
    _, history, epoch, step = ends[0]
    assert history is trainer.history and (epoch, step) == (2, 2)  # stopped early, still called
    assert [row["train_loss"] for row in history] == [e[2]["train_loss"]
                                                      for e in recorder.of("epoch")]
    assert [s[2] for s in recorder.of("step")] == pytest.approx(
        [row["train_loss"] for row in history], rel=1e-12)  # full batch: step loss = epoch's
