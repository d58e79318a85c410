"""Training end to end: the numbers the issue asks for, determinism, resume, hooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.storage import load_arrays
from minidl.trainer import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _weights(trainer: Trainer) -> dict[str, np.ndarray]:
    return trainer.model.state_dict()


def test_the_default_job_reaches_the_course_accuracy(tmp_path):
    trainer = Trainer(load_config(overrides=[f"output.dir={tmp_path}"]))
    final = trainer.fit()
    assert final["train_accuracy"] >= 0.88
    assert final["epochs"] == 10_000 and final["steps"] == 10_000
    assert trainer.model[0].weight.shape == (4, 2) and trainer.model[2].weight.shape == (1, 4)


def test_float64_deferred_and_absorbed_end_at_the_same_weights_and_sum_matches_with_lr_over_m():
    runs = {}
    for strategy, lr in [("deferred", 1.2), ("absorbed", 1.2), ("sum", 1.2 / 400)]:
        trainer = Trainer(load_config(overrides=[
            "train.dtype=float64", f"normalization.strategy={strategy}", f"optimizer.lr={lr}",
            "output.dir=", "train.epochs=3000"]))
        runs[strategy] = (trainer.fit(), _weights(trainer))
    for name, array in runs["deferred"][1].items():
        np.testing.assert_allclose(runs["absorbed"][1][name], array, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(runs["sum"][1][name], array, rtol=1e-6, atol=1e-9)
    accuracies = {s: run[0]["train_accuracy"] for s, run in runs.items()}
    assert accuracies["deferred"] == accuracies["absorbed"] == accuracies["sum"] >= 0.88


def test_digits_mlp_beats_95_percent_on_held_out_digits():
    config = load_config(EXAMPLES / "digits.toml", ["output.dir="])
    final = Trainer(config).fit()
    assert final["val_accuracy"] >= 0.95
    trainer_model = Trainer(config).model
    assert [layer.weight.shape for layer in (trainer_model[0], trainer_model[2])] == [
        (64, 64), (10, 64)]


def test_same_config_and_seed_give_bit_identical_weights():
    overrides = ["output.dir=", "train.epochs=5", "train.batch_size=16", "model.dropout=0.2",
                 "optimizer.name=adam", "optimizer.lr=0.01"]
    first, second = Trainer(load_config(overrides=overrides)), Trainer(load_config(
        overrides=overrides))
    first.fit(), second.fit()
    for name, array in _weights(first).items():
        np.testing.assert_array_equal(_weights(second)[name], array)
    third = Trainer(load_config(overrides=[*overrides, "train.seed=4"]))
    third.fit()
    assert not np.array_equal(_weights(third)["0.weight"], _weights(first)["0.weight"])


class _StopAt:
    """A plugin that interrupts training (like Ctrl-C) after a given epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    @mdl.hookimpl
    def minidl_epoch_end(self, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_reaches_the_same_final_weights_as_an_uninterrupted_run(tmp_path):
    overrides = ["train.epochs=12", "train.batch_size=50", "train.accumulate=2",
                 "model.dropout=0.1", "optimizer.name=adam", "optimizer.lr=0.02",
                 "output.checkpoint_every=4", "data.val_fraction=0.25"]
    straight = Trainer(load_config(overrides=[*overrides, f"output.dir={tmp_path / 'a'}"]))
    straight.fit()

    interrupted = Trainer(load_config(overrides=[*overrides, f"output.dir={tmp_path / 'b'}"]))
    stopper = _StopAt(epoch=10)
    pm = mdl.get_plugin_manager()
    pm.register(stopper)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit()
    finally:
        pm.unregister(stopper)
    checkpoint = tmp_path / "b" / "checkpoint.npz"
    _, meta = load_arrays(checkpoint)
    assert meta["epoch"] == 8  # the last checkpoint before the interruption is whole

    resumed = Trainer.from_checkpoint(checkpoint)
    assert resumed.epoch == 8 and len(resumed.history) == 8
    resumed.fit()
    for name, array in _weights(straight).items():
        np.testing.assert_array_equal(_weights(resumed)[name], array)
    assert resumed.history == straight.history


def test_outputs_hold_the_model_the_resolved_config_and_metrics(tmp_path):
    import json
    from minidl.config import tomllib

    config = load_config(overrides=["train.epochs=20", f"output.dir={tmp_path}",
                                    "data.val_fraction=0.2"])
    trainer = Trainer(config)
    final = trainer.fit()
    arrays, meta = load_arrays(tmp_path / "model.npz")
    for name, array in _weights(trainer).items():
        np.testing.assert_array_equal(arrays[name], array)
    assert meta["task"] == "binary"
    reread = load_config(tmp_path / "config.toml")
    assert reread == config
    assert tomllib.loads((tmp_path / "config.toml").read_text())["train"]["epochs"] == 20
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["final"] == pytest.approx(final)
    assert len(metrics["history"]["train_loss"]) == 20
    assert set(metrics["history"]) >= {"epoch", "val_loss", "val_accuracy", "train_accuracy"}


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    trainer = Trainer(load_config(overrides=["train.epochs=3", f"output.dir={tmp_path}"]))
    trainer.fit()
    before = (tmp_path / "checkpoint.npz").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C between writing the temp file and renaming it

    monkeypatch.setattr("minidl.storage.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(tmp_path / "checkpoint.npz")
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert Trainer.from_checkpoint(tmp_path / "checkpoint.npz").epoch == 3


def test_accumulation_steps_once_per_group_with_a_short_last_group():
    trainer = Trainer(load_config(overrides=["train.epochs=2", "output.dir=",
                                             "train.batch_size=32", "train.accumulate=3"]))
    trainer.fit()
    assert trainer.step == 2 * 5  # 13 micro-batches per epoch: groups of 3, 3, 3, 3, 1


def test_accumulated_deferred_step_equals_the_full_batch_step():
    """One optimizer step over micro-batches 32+32+7 = one full-batch step, under deferred."""
    common = ["train.epochs=1", "output.dir=", "train.dtype=float64", "train.shuffle=false",
              "data.options={n: 142}"]  # planar keeps n // 2 per class: 71 + 71 examples
    accumulated = Trainer(load_config(overrides=[*common, "train.batch_size=32",
                                                 "train.accumulate=5"]))
    full = Trainer(load_config(overrides=common))
    accumulated.fit(), full.fit()
    assert accumulated.step == full.step == 1
    for name, array in _weights(full).items():
        np.testing.assert_allclose(_weights(accumulated)[name], array, rtol=1e-12, atol=1e-15)
