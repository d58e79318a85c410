"""Trainer: config plugins live as long as the run, float16 loss sums, outputs checked early."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.data import DataError
from minidl.trainer import OutputDirError, Trainer


def _counter(tmp_path):
    """A .py observer that logs each training start to a file; returns (plugin, log)."""
    log = tmp_path / "starts.log"
    path = tmp_path / "counter.py"
    path.write_text(textwrap.dedent(f'''
        import minidl as mdl

        @mdl.hookimpl
        def minidl_train_start(trainer):
            with open({str(log)!r}, "a") as out:
                out.write("start\\n")
    '''))
    return path, log


def _starts(log) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_config_plugins_do_not_fire_for_a_later_trainer(tmp_path):
    path, log = _counter(tmp_path)
    pm = mdl.get_plugin_manager()
    with_plugin = Trainer(load_config(overrides=["train.epochs=1", "output.dir=",
                                                 f'plugins=["{path}"]']))
    assert pm.get_plugin(str(path.resolve())) is None  # registered only while fit() runs
    with_plugin.fit()
    assert _starts(log) == 1
    assert pm.get_plugin(str(path.resolve())) is None
    Trainer(load_config(overrides=["train.epochs=1", "output.dir="])).fit()
    assert _starts(log) == 1  # the second trainer did not load it, so it did not fire
    with_plugin.fit()  # a trainer's own plugins are back for each of its fits
    assert _starts(log) == 2 and pm.get_plugin(str(path.resolve())) is None


def test_a_trainer_that_fails_to_build_unregisters_its_plugins(tmp_path):
    path, _ = _counter(tmp_path)
    with pytest.raises(DataError, match="model.outputs = 5"):
        Trainer(load_config(overrides=["data.dataset=digits", "model.outputs=5",
                                       "output.dir=", f'plugins=["{path}"]']))
    assert mdl.get_plugin_manager().get_plugin(str(path.resolve())) is None


def test_plugins_registered_before_the_trainer_stay_registered(tmp_path):
    path, log = _counter(tmp_path)
    pm = mdl.get_plugin_manager()
    plugin = pm.import_plugin(str(path))
    try:
        Trainer(load_config(overrides=["train.epochs=1", "output.dir=",
                                       f'plugins=["{path}"]'])).fit()
        assert pm.is_registered(plugin) and _starts(log) == 1
    finally:
        pm.unregister(plugin)


def test_float16_train_loss_is_summed_without_overflow():
    # 100,000 losses of about 0.7 sum to about 70,000: more than float16's 65,504.
    trainer = Trainer(load_config(overrides=[
        "train.dtype=float16", "data.options={n: 100000}", "train.epochs=1", "output.dir=",
        "optimizer.lr=0.1"]))
    trainer.fit()
    loss = trainer.history[0]["train_loss"]
    assert math.isfinite(loss) and 0.5 < loss < 1.0


def test_metrics_json_is_strict_json_with_null_for_nan(tmp_path):
    trainer = Trainer(load_config(overrides=["train.epochs=2", f"output.dir={tmp_path}"]))
    final = trainer.fit()
    trainer.history[0]["train_loss"] = float("nan")
    trainer.write_outputs({**final, "val_loss": float("inf")})

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["final"]["val_loss"] is None
    assert metrics["history"]["train_loss"][0] is None
    assert metrics["history"]["train_loss"][1] == pytest.approx(trainer.history[1]["train_loss"])


def test_an_unusable_output_dir_fails_when_the_trainer_is_built(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OutputDirError, match="is not a writable directory"):
        Trainer(load_config(overrides=[f"output.dir={tmp_path / 'a_file' / 'run'}"]))
    with pytest.raises(OutputDirError, match="a_file"):
        Trainer(load_config(overrides=[f"output.dir={tmp_path / 'a_file'}"]))
    Trainer(load_config(overrides=[f"output.dir={tmp_path / 'new' / 'run'}"]))
    assert (tmp_path / "new" / "run").is_dir() and list((tmp_path / "new" / "run").iterdir()) == []
