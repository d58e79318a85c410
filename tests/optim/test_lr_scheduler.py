"""Learning-rate schedules against their closed forms, state round trips, errors, and the
``[scheduler]`` config section in the trainer (including bit-exact resume)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import minidl as mdl
from minidl.config import ConfigError, load_config
from minidl.optim import SGD, HyperparameterError
from minidl.optim import lr_scheduler as S
from minidl.trainer import Trainer

EPOCHS = 30


def two_groups(lr=0.5, lr2=0.02):
    a, b = mdl.nn.Parameter([1.0]), mdl.nn.Parameter([2.0])
    return SGD([{"params": [a]}, {"params": [b], "lr": lr2}], lr=lr)


def lrs_over_epochs(make, epochs=EPOCHS):
    """Each group's lr during epochs 0..epochs-1, stepping once per epoch as a user does."""
    optimizer = two_groups()
    scheduler = make(optimizer)
    seen = []
    for _ in range(epochs):
        seen.append([g["lr"] for g in optimizer.param_groups])
        assert scheduler.get_last_lr() == seen[-1]
        scheduler.step()
    return np.array(seen)


CLOSED_FORMS = {
    "step": (lambda o: S.StepLR(o, step_size=7, gamma=0.3),
             lambda lr0, e: lr0 * 0.3 ** math.floor(e / 7)),
    "exponential": (lambda o: S.ExponentialLR(o, gamma=0.95), lambda lr0, e: lr0 * 0.95 ** e),
    "inverse_time": (lambda o: S.InverseTimeLR(o, decay_rate=0.5),
                     lambda lr0, e: lr0 / (1 + 0.5 * e)),
    "cosine": (lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
               lambda lr0, e: 0.001 + (lr0 - 0.001) * (1 + np.cos(np.pi * e / 20)) / 2),
    "warmup": (lambda o: S.LinearWarmup(o, warmup_epochs=5, start_factor=0.2),
               lambda lr0, e: lr0 * (0.2 + 0.8 * min(e, 5) / 5)),
    "lambda": (lambda o: S.LambdaLR(o, lambda e: 1 / (e + 1)), lambda lr0, e: lr0 / (e + 1)),
    "warmup+cosine": (
        lambda o: S.SequentialLR(o, [S.LinearWarmup(o, 4, start_factor=0.25),
                                     S.CosineAnnealingLR(o, T_max=10)], milestones=[4]),
        lambda lr0, e: lr0 * (0.25 + 0.75 * e / 4) if e < 4
        else lr0 * (1 + np.cos(np.pi * (e - 4) / 10)) / 2),
}


@pytest.mark.parametrize("case", CLOSED_FORMS.values(), ids=CLOSED_FORMS.keys())
def test_schedule_follows_its_closed_form_in_every_group(case):
    make, closed_form = case
    seen = lrs_over_epochs(make)
    for group, lr0 in enumerate([0.5, 0.02]):
        expected = [closed_form(lr0, e) for e in range(EPOCHS)]
        np.testing.assert_allclose(seen[:, group], expected, rtol=1e-12, atol=1e-15)


def test_course_inverse_time_numbers():
    # The course's example: lr0 = 0.2, decay_rate = 1: 0.2, 0.1, 0.0667, 0.05.
    optimizer = SGD([mdl.nn.Parameter([1.0])], lr=0.2)
    schedule = S.InverseTimeLR(optimizer, decay_rate=1.0)
    seen = []
    for _ in range(4):
        seen.append(optimizer.lr)
        schedule.step()
    np.testing.assert_allclose(seen, [0.2, 0.1, 0.2 / 3, 0.05], rtol=1e-15)


@pytest.mark.parametrize("name", [n for n in CLOSED_FORMS if n != "lambda"])
def test_state_dict_through_json_continues_exactly(name):
    make, _ = CLOSED_FORMS[name]
    straight = lrs_over_epochs(make, 12)

    optimizer = two_groups()
    scheduler = make(optimizer)
    for _ in range(5):
        scheduler.step()
    saved_opt = optimizer.state_dict()
    saved = json.loads(json.dumps(scheduler.state_dict()))
    fresh_opt = two_groups(lr=9.0, lr2=9.0)  # rebuilt from config, then restored
    fresh = make(fresh_opt)
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved)
    seen = []
    for _ in range(5, 12):
        seen.append([g["lr"] for g in fresh_opt.param_groups])
        fresh.step()
    np.testing.assert_array_equal(np.array(seen), straight[5:])


@pytest.mark.parametrize("make, match", [
    (lambda o: S.StepLR(o, step_size=0), "step_size"),
    (lambda o: S.StepLR(o, step_size=2.5), "step_size"),
    (lambda o: S.ExponentialLR(o, gamma=-0.5), "gamma"),
    (lambda o: S.InverseTimeLR(o, decay_rate=float("nan")), "decay_rate"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: S.LinearWarmup(o, warmup_epochs=3, start_factor=1.5), "start_factor"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]), "milestone"),
])
def test_bad_schedule_settings_are_clear_errors(make, match):
    with pytest.raises(HyperparameterError, match=match):
        make(two_groups())


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="optimizer"):
        S.StepLR("sgd", step_size=2)


# ---- config --------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, match", [
    (["scheduler.name=step"], "needs step_size"),
    (["scheduler.name=exponential"], "needs gamma"),
    (["scheduler.name=step", "scheduler.step_size=3", "scheduler.decay_rate=0.1"],
     "decay_rate does not apply"),
    (["scheduler.name=warm"], "scheduler.name"),
    (["scheduler.gamma=0"], "gamma"),
    (["scheduler.name=cosine", "scheduler.speed=2"], "unknown key"),
])
def test_bad_scheduler_config_is_one_clear_error(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=overrides)


BASE = ["train.epochs=12", "train.batch_size=50", "data.val_fraction=0.25",
        "optimizer.name=adam", "optimizer.lr=0.02", "output.checkpoint_every=4"]


def test_trainer_steps_the_schedule_once_per_epoch():
    trainer = Trainer(load_config(overrides=[*BASE, "output.dir=", "scheduler.name=inverse_time",
                                             "scheduler.decay_rate=0.5"]))
    trainer.fit()
    lrs = [row["lr"] for row in trainer.history]
    np.testing.assert_allclose(lrs, [0.02 / (1 + 0.5 * e) for e in range(12)], rtol=1e-12)
    assert trainer.optimizer.lr == pytest.approx(0.02 / (1 + 0.5 * 12), rel=1e-12)


def test_no_schedule_leaves_lr_and_metrics_unchanged():
    trainer = Trainer(load_config(overrides=[*BASE[:1], "output.dir="]))
    assert trainer.scheduler is None


class _StopAfter:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    @mdl.hookimpl
    def minidl_epoch_end(self, epoch):
        return epoch == self.epoch


@pytest.mark.parametrize("extra", [
    ["scheduler.name=cosine", "scheduler.warmup_epochs=3"],
    ["scheduler.name=step", "scheduler.step_size=3", "train.dtype=float16"],
])
def test_resume_with_a_schedule_is_bit_exact(tmp_path, extra):
    straight = Trainer(load_config(overrides=[*BASE, *extra, f"output.dir={tmp_path / 'a'}"]))
    straight.fit()
    stopped = Trainer(load_config(overrides=[*BASE, *extra, f"output.dir={tmp_path / 'b'}"]))
    stopper = _StopAfter(8)
    mdl.get_plugin_manager().register(stopper)
    try:
        stopped.fit()
    finally:
        mdl.get_plugin_manager().unregister(stopper)
    resumed = Trainer.from_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert resumed.epoch == 8
    resumed.fit()
    for (name, want), got in zip(straight.model.state_dict().items(),
                                 resumed.model.state_dict().values()):
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert resumed.history == straight.history
