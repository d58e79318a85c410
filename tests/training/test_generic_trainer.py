"""mdl.Trainer on your own Module: the same numbers as the loop by hand, accumulation,
resume, every form of loss, NaN detection, hooks and plugins, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.errors import CheckpointError, InvalidTypeError, InvalidValueError, TrainingDiverged
from minidl.trainer import Trainer as ConfigTrainer


class TwoLayer(mdl.nn.Module):
    """A user-defined module: Linear, tanh, dropout, Linear."""

    def __init__(self, dropout: float = 0.0, dtype: str = "float32", seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.first = mdl.nn.Linear(2, 8, generator=rng, dtype=dtype)
        self.drop = mdl.nn.Dropout(dropout, generator=rng)
        self.second = mdl.nn.Linear(8, 3, generator=rng, dtype=dtype)

    def forward(self, x):
        return self.second(self.drop(self.first(x).tanh()))


def _data(n: int = 90) -> mdl.data.Dataset:
    features, labels = mdl.data.spirals(n=n)
    return mdl.data.Dataset(features, labels)


def _weights(model) -> dict[str, np.ndarray]:
    return model.state_dict()


def test_the_trainer_is_the_loop_by_hand_bit_for_bit():
    by_hand, trained = TwoLayer(dropout=0.2), TwoLayer(dropout=0.2)
    optimizer = mdl.optim.Adam(by_hand.parameters(), lr=0.01)
    loader = mdl.data.DataLoader(_data(), batch_size=16, shuffle=True, seed=5)
    loss_fn = mdl.nn.CrossEntropyLoss()
    for _ in range(4):
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(by_hand(x), y).backward()
            optimizer.step()
    trainer = mdl.Trainer(trained, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.Adam(trained.parameters(), lr=0.01), _data(),
                          batch_size=16, seed=5, epochs=4, quiet=True)
    final = trainer.fit()
    for name, array in _weights(by_hand).items():
        np.testing.assert_array_equal(_weights(trained)[name], array)
    assert final["epochs"] == 4 and final["steps"] == 4 * 6 and trainer.step == 24
    assert final["strategy"] == "deferred"


def test_metrics_are_reported_for_train_and_validation_and_match_numpy():
    model = TwoLayer(dtype="float64")
    data, val = _data(), _data(60)
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.SGD(model.parameters(), lr=0.5), data, val_data=val,
                          metrics={"acc": mdl.metrics.accuracy,
                                   "top2": lambda out, y: mdl.metrics.top_k_accuracy(out, y, 2)},
                          epochs=3, quiet=True)
    final = trainer.fit()
    assert set(trainer.history[0]) == {"train_loss", "train_acc", "train_top2", "val_loss",
                                       "val_acc", "val_top2", "epoch"}
    with mdl.no_grad():
        logits = model.eval()(mdl.tensor(val.features)).data
    shifted = logits - logits.max(axis=1, keepdims=True)  # cross-entropy by hand
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_probs[np.arange(len(val)), val.targets].mean()
    assert final["val_loss"] == pytest.approx(expected, rel=1e-12)
    assert final["val_acc"] == np.mean(logits.argmax(axis=1) == val.targets)


def test_accumulated_deferred_steps_equal_full_batch_steps():
    """Micro-batches 32 + 32 + 26 accumulated under deferred = one batch of 90, in float64."""
    runs = []
    for batch_size, accumulate in ((32, 3), (None, 1)):
        model = TwoLayer(dtype="float64")
        trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                              mdl.optim.SGD(model.parameters(), lr=0.3), _data(),
                              batch_size=batch_size, accumulate=accumulate, shuffle=False,
                              epochs=3, quiet=True)
        trainer.fit()
        assert trainer.step == 3
        runs.append(_weights(model))
    for name, array in runs[1].items():
        np.testing.assert_allclose(runs[0][name], array, rtol=1e-12, atol=1e-15)


class _Interrupt:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    @mdl.hookimpl
    def minidl_epoch_end(self, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _resumable(output_dir) -> mdl.Trainer:
    model = TwoLayer(dropout=0.3)
    optimizer = mdl.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5)
    schedule = mdl.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    return mdl.Trainer(model, mdl.nn.CrossEntropyLoss(), optimizer, _data(), val_data=_data(30),
                       metrics=[mdl.metrics.accuracy], batch_size=20, accumulate=2, epochs=9,
                       scheduler=schedule, output_dir=output_dir, checkpoint_every=3,
                       seed=1, quiet=True)


def test_fit_resume_reaches_the_same_final_weights(tmp_path):
    straight = _resumable(tmp_path / "a")
    straight.fit()
    interrupted = _resumable(tmp_path / "b")
    stopper = _Interrupt(epoch=8)
    mdl.get_plugin_manager().register(stopper)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit()
    finally:
        mdl.get_plugin_manager().unregister(stopper)
    resumed = _resumable(tmp_path / "b")  # a new process would rebuild it the same way
    resumed.fit(resume=tmp_path / "b" / "checkpoint.npz")
    assert resumed.epoch == 9 and len(resumed.history) == 9
    for name, array in _weights(straight.model).items():
        np.testing.assert_array_equal(_weights(resumed.model)[name], array)
    assert resumed.history == straight.history
    assert (tmp_path / "a" / "metrics.json").is_file()


def test_a_python_checkpoint_is_refused_by_the_config_trainer_and_a_mismatched_one(tmp_path):
    trainer = _resumable(tmp_path)
    trainer.fit()
    with pytest.raises(CheckpointError, match="trainer.fit\\(resume=path\\)"):
        ConfigTrainer.from_checkpoint(tmp_path / "checkpoint.npz")
    other = mdl.nn.Linear(2, 3, generator=0)
    mismatched = mdl.Trainer(other, mdl.nn.CrossEntropyLoss(),
                             mdl.optim.SGD(other.parameters(), lr=0.1), _data(), quiet=True)
    with pytest.raises(CheckpointError, match="checkpoint from a different model: it holds "
                                              "model arrays .*'first.bias'.* this trainer's "
                                              "model has \\['bias', 'weight'\\]"):
        mismatched.fit(resume=tmp_path / "checkpoint.npz")


def _fit_with(loss, dtype="float64", epochs=2) -> tuple[dict, dict]:
    model = TwoLayer(dtype=dtype)
    trainer = mdl.Trainer(model, loss, mdl.optim.SGD(model.parameters(), lr=0.2), _data(),
                          batch_size=30, shuffle=False, epochs=epochs, quiet=True)
    return trainer.fit(), _weights(model)


def test_every_form_of_loss_trains_the_same():
    F = mdl.nn.functional
    forms = {
        "module": mdl.nn.CrossEntropyLoss(),
        "per-example": lambda out, y: F.cross_entropy(out, y, reduction="none"),
        "batch_reduce": lambda out, y: mdl.batch_reduce(F.cross_entropy(out, y,
                                                                        reduction="none")),
    }
    results = {name: _fit_with(loss) for name, loss in forms.items()}
    final, weights = results["module"]
    for name, (other_final, other_weights) in results.items():
        assert other_final["train_loss"] == pytest.approx(final["train_loss"], rel=1e-12), name
        for key, array in weights.items():
            np.testing.assert_allclose(other_weights[key], array, rtol=1e-12, err_msg=name)


def test_a_penalty_added_to_the_cost_reaches_the_weights_but_not_the_reported_loss():
    """Full batch, one step: the penalty 0.5 ||W||^2 adds exactly W to dW (the cost's
    calculus, under deferred too); the reported loss is the data term's."""
    F = mdl.nn.functional
    model = TwoLayer(dtype="float64")
    initial = model.second.weight.data.copy()

    def penalized(out, y):
        return F.cross_entropy(out, y) + 0.5 * (model.second.weight ** 2).sum()

    trainer = mdl.Trainer(model, penalized, mdl.optim.SGD(model.parameters(), lr=0.2),
                          _data(), shuffle=False, epochs=1, quiet=True)
    trainer.fit()
    plain = TwoLayer(dtype="float64")
    plain_trainer = mdl.Trainer(plain, mdl.nn.CrossEntropyLoss(),
                                mdl.optim.SGD(plain.parameters(), lr=0.2), _data(),
                                shuffle=False, epochs=1, quiet=True)
    plain_trainer.fit()
    assert trainer.history[0]["train_loss"] == plain_trainer.history[0]["train_loss"]
    np.testing.assert_allclose(model.second.weight.data,
                               plain.second.weight.data - 0.2 * initial, rtol=1e-12)
    np.testing.assert_array_equal(model.first.weight.data, plain.first.weight.data)


def test_a_plain_calculus_mean_is_refused_with_the_reason():
    def pytorch_habit(out, y):
        one_hot = np.eye(3)[y.data]
        return ((out - one_hot) ** 2).mean()

    with pytest.raises(InvalidValueError, match="no batch reduction made.*optimizer would "
                                                "refuse to step.*reduction=\"none\""):
        _fit_with(pytorch_habit)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_diverging_run_names_epoch_and_step():
    model = TwoLayer()
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.SGD(model.parameters(), lr=1e38), _data(), batch_size=30,
                          epochs=5, quiet=True)
    with pytest.raises(TrainingDiverged, match=r"at epoch \d+, step \d+: .*lower optimizer.lr"):
        trainer.fit()


def test_the_strategy_is_the_active_one_or_the_one_given():
    with mdl.normalization("sum"):
        final, _ = _fit_with(mdl.nn.CrossEntropyLoss(), epochs=1)
    assert final["strategy"] == "sum"
    model = TwoLayer()
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.SGD(model.parameters(), lr=0.1), _data(),
                          strategy="absorbed-1/m", quiet=True)
    assert trainer.fit()["strategy"] == "absorbed"


def test_hooks_fire_and_plugins_live_only_as_long_as_fit(tmp_path):
    calls = []

    class Observer:
        @mdl.hookimpl
        def minidl_step_end(self, trainer, step, loss):
            calls.append((trainer, step, loss))

    observer = Observer()
    model = TwoLayer()
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                          mdl.optim.SGD(model.parameters(), lr=0.1), _data(), batch_size=45,
                          epochs=2, plugins=[observer], quiet=True)
    assert not mdl.get_plugin_manager().is_registered(observer)
    trainer.fit()
    assert [c[1] for c in calls] == [1, 2, 3, 4] and all(c[0] is trainer for c in calls)
    assert not mdl.get_plugin_manager().is_registered(observer)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"model": "net"}, InvalidTypeError, "model must be a minidl nn.Module"),
    ({"loss": 3}, InvalidTypeError, "loss must be a loss module or a function"),
    ({"optimizer": None}, InvalidTypeError, "optimizer must be a minidl optimizer"),
    ({"train_data": 5}, InvalidTypeError, "train_data must be a Dataset or a DataLoader"),
    ({"epochs": 0}, InvalidValueError, "epochs must be a positive integer"),
    ({"accumulate": 1.5}, InvalidValueError, "accumulate must be a positive integer"),
    ({"metrics": "accuracy"}, InvalidTypeError, "metrics must be a list of functions"),
    ({"val_data": [1, 2]}, InvalidTypeError, "val_data must be a Dataset"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    model = TwoLayer()
    arguments = {"model": model, "loss": mdl.nn.CrossEntropyLoss(),
                 "optimizer": mdl.optim.SGD(model.parameters(), lr=0.1),
                 "train_data": _data(), **kwargs}
    with pytest.raises(error, match=message):
        mdl.Trainer(**arguments)
