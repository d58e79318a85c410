"""The Trainer compiles its micro-batches by default (``compile=True``, ``train.compile``):
the run is bit-identical to an eager one under every strategy, with accumulation, dropout,
float16/32/64, validation and metrics; what it cannot replay falls back to eager, and says
why."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.errors import InvalidTypeError, InvalidValueError, TrainingDiverged
from minidl.trainer import Trainer as ConfigTrainer
from minidl.training.step import WEIGHTED


def _net(dtype: str, dropout: float, seed: int = 0) -> mdl.nn.Module:
    rng = np.random.default_rng(seed)
    return mdl.nn.Sequential(mdl.nn.Linear(2, 8, generator=rng, dtype=dtype), mdl.nn.Tanh(),
                             mdl.nn.Dropout(dropout, generator=rng),
                             mdl.nn.Linear(8, 3, generator=rng, dtype=dtype))


def _fit(compile: bool, *, dtype: str = "float32", dropout: float = 0.0,
         strategy: str | None = None, accumulate: int = 1, loss=None, epochs: int = 4,
         batch_size: int = 16, optimizer=mdl.optim.Adam, lr: float = 0.01):
    """A run on spirals (90 examples: batches of 16 leave a short one) from fixed seeds."""
    model = _net(dtype, dropout)
    features, labels = mdl.data.spirals(n=90)
    trainer = mdl.Trainer(model, loss or mdl.nn.CrossEntropyLoss(),
                          optimizer(model.parameters(), lr=lr),
                          mdl.data.Dataset(features, labels),
                          val_data=mdl.data.Dataset(*mdl.data.spirals(n=30)),
                          metrics=[mdl.metrics.accuracy], epochs=epochs,
                          batch_size=batch_size, seed=5, accumulate=accumulate,
                          strategy=strategy, quiet=True, compile=compile)
    final = trainer.fit()
    return trainer, final, model.state_dict()


def _assert_same_run(eager, compiled) -> None:
    (e_trainer, e_final, e_weights), (c_trainer, c_final, c_weights) = eager, compiled
    assert c_final == e_final and c_trainer.history == e_trainer.history
    for name, array in e_weights.items():
        np.testing.assert_array_equal(c_weights[name], array, err_msg=name)


@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_compiled_run_is_the_eager_run_bit_for_bit(strategy, dtype):
    lr = 1e-3 if strategy == "sum" else 0.01  # sum's gradients are m times larger
    eager = _fit(False, dtype=dtype, strategy=strategy, lr=lr, optimizer=mdl.optim.SGD)
    compiled = _fit(True, dtype=dtype, strategy=strategy, lr=lr, optimizer=mdl.optim.SGD)
    _assert_same_run(eager, compiled)
    assert compiled[0].train_step.eager_reason is None
    assert eager[0].train_step.eager_reason == "compile is off"
    # Six batches of 16 (one of 10): two shapes, two traces, every later call replayed.
    assert len(compiled[0].train_step.compiled.traces) == 2


def test_accumulation_and_dropout_replay_bit_for_bit():
    eager = _fit(False, dropout=0.3, accumulate=3)
    compiled = _fit(True, dropout=0.3, accumulate=3)
    _assert_same_run(eager, compiled)
    assert compiled[0].train_step.eager_reason is None


def test_a_plugin_strategy_replays_bit_for_bit(rms_plugin):
    eager = _fit(False, strategy="rms")
    compiled = _fit(True, strategy="rms")
    _assert_same_run(eager, compiled)
    assert compiled[0].train_step.eager_reason is None


def test_a_weighted_loss_runs_eagerly_and_says_why():
    def weighted(outputs, targets):  # classes 1 and 2 count, by their label
        losses = mdl.nn.functional.cross_entropy(outputs, targets, reduction="none")
        return mdl.batch_reduce(losses, sample_weight=targets)

    eager, compiled = _fit(False, loss=weighted), _fit(True, loss=weighted)
    _assert_same_run(eager, compiled)
    assert compiled[0].train_step.eager_reason == WEIGHTED


def test_a_loss_that_reads_values_falls_back_to_eager_with_the_reason():
    seen = []

    def logging_loss(outputs, targets):
        losses = mdl.nn.functional.cross_entropy(outputs, targets, reduction="none")
        seen.append(float(losses.data.max()))  # Python reading a value mid-step
        return losses

    eager = _fit(False, loss=logging_loss)
    calls = len(seen)
    compiled = _fit(True, loss=logging_loss)
    _assert_same_run(eager, compiled)
    assert len(seen) == 2 * calls  # it ran every time: nothing was replayed
    assert ".data" in compiled[0].train_step.eager_reason


def test_a_loader_of_numpy_targets_falls_back_to_eager():
    features, labels = mdl.data.spirals(n=90)
    batches = [(mdl.tensor(features[i:i + 30].astype(np.float32)), labels[i:i + 30])
               for i in range(0, 90, 30)]
    results = []
    for compile in (False, True):
        model = _net("float32", 0.0)
        trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                              mdl.optim.SGD(model.parameters(), lr=0.1), batches, epochs=3,
                              quiet=True, compile=compile)
        results.append((trainer, trainer.fit(), model.state_dict()))
    _assert_same_run(*results)
    assert "ndarray" in results[1][0].train_step.eager_reason


def test_a_diverging_compiled_run_is_stopped_at_the_same_step():
    messages = []
    for compile in (False, True):
        with pytest.raises(TrainingDiverged, match=r"at epoch \d+, step \d+") as caught, \
                np.errstate(all="ignore"):  # the overflow is the point
            _fit(compile, optimizer=mdl.optim.SGD, lr=1e6, dtype="float16", epochs=50)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_compile_must_be_a_bool():
    model = _net("float32", 0.0)
    with pytest.raises(InvalidTypeError, match="compile must be True or False"):
        mdl.Trainer(model, mdl.nn.CrossEntropyLoss(), mdl.optim.SGD(model.parameters(), lr=0.1),
                    [], compile="yes")


def test_the_config_switch_reaches_the_trainer_and_both_give_the_same_run():
    runs = []
    for value in ("true", "false"):
        trainer = ConfigTrainer(load_config(overrides=["train.epochs=40", "output.dir=",
                                                       f"train.compile={value}"]))
        final = trainer.fit()
        runs.append((trainer, final, trainer.model.state_dict()))
    assert runs[0][0].compile is True and runs[1][0].compile is False
    assert runs[0][0].train_step.eager_reason is None
    _assert_same_run(runs[1], runs[0])
    assert load_config().train.compile is True  # on by default


@pytest.mark.parametrize("bad_label", [-1, 3])
def test_a_bad_label_in_a_replayed_batch_is_refused_as_in_eager(bad_label):
    """Negative labels would index from the end: the range check lives in the op, so
    replays run it too."""
    features, labels = mdl.data.spirals(n=90)
    labels = labels.copy()
    labels[75] = bad_label  # the third batch: the first two were traced and replayed
    batches = [(mdl.tensor(features[i:i + 30].astype(np.float32)), mdl.tensor(labels[i:i + 30]))
               for i in range(0, 90, 30)]
    model = _net("float32", 0.0)
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.SGD(model.parameters(), lr=0.1), batches, quiet=True)
    with pytest.raises(InvalidValueError, match=f"label {bad_label} is out of range for 3"):
        trainer.fit()


def test_a_run_resumes_with_compile_switched(tmp_path):
    """train.compile changes no number, so a config given to --resume may differ there."""
    settings = ["train.epochs=20", f"output.dir={tmp_path}", "output.checkpoint_every=10"]
    ConfigTrainer(load_config(overrides=settings)).fit()
    other = load_config(overrides=[*settings, "train.compile=false"])
    resumed = ConfigTrainer.from_checkpoint(tmp_path / "checkpoint.npz", config=other)
    assert resumed.compile is False and resumed.epoch == 20
