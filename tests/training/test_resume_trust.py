"""``--resume`` imports nothing a checkpoint names, and never lets it choose where to write.

The checkpoints here are forged as a hostile file would be: a real run's checkpoint with
its embedded config edited (plugins, a strategy file, a model factory, an absolute
``output.dir``) and its checksum recomputed the way ``minidl.storage`` does. Each plugin
file writes a marker file when imported, so "imported nothing" is seen, not assumed.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import assert_one_message, cli  # noqa: F401 (a fixture)
from helpers.plugin_sources import strategy_source

from minidl import storage
from minidl.errors import CheckpointError
from minidl.npz import read_npz
from minidl.trainer import Trainer

RUN = ["train", "--quiet", "--set", "train.epochs=3", "--set", "output.checkpoint_every=1"]


def _marker_plugin(path: Path, marker: Path, body: str = "") -> Path:
    """A plugin file that writes ``marker`` when it is imported."""
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
                    f"{body}")
    return path


OBSERVER = textwrap.dedent('''
    import minidl as mdl

    @mdl.hookimpl
    def minidl_train_start(trainer):
        pass
''')


def forge(source: Path, target: Path, **config_changes: dict) -> Path:
    """``source``'s checkpoint at ``target`` with its config's sections updated, its
    checksum recomputed as minidl.storage computes it (SHA-256 of the arrays and the
    metadata's JSON), written with numpy directly."""
    arrays = read_npz(source)
    meta = json.loads(str(arrays.pop("__meta__")))
    for section, value in config_changes.items():
        if isinstance(value, dict):
            meta["config"][section] = {**meta["config"][section], **value}
        else:
            meta["config"][section] = value
    meta["checksum"] = storage.checksum(arrays, meta)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        np.savez(handle, **arrays, __meta__=np.array(json.dumps(meta)))
    storage.load_arrays(target)  # the forgery passes the checksum
    return target


@pytest.fixture
def run(cli, tmp_path):
    """A finished 3-epoch run of the planar job in tmp_path/run (no plugins)."""
    directory = tmp_path / "run"
    code, _, err = cli(*RUN, "--set", f"output.dir={directory}")
    assert code == 0, err
    return directory


def test_a_checkpoint_naming_an_observer_plugin_imports_nothing_and_exits_2(cli, run,
                                                                            tmp_path):
    marker = tmp_path / "marker.txt"
    plugin = _marker_plugin(tmp_path / "evil.py", marker, OBSERVER)
    ck = forge(run / "checkpoint.npz", tmp_path / "download" / "ck.npz",
               plugins=[str(plugin)], train={"epochs": 4})
    code, _, err = cli("train", "--quiet", "--resume", ck)
    assert_one_message(code, err, 2, str(ck), f"plugins: {plugin}", "--trust-checkpoint-plugins",
                       "minidl train CONFIG --resume PATH")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="trust_plugins=True"):
        Trainer.from_checkpoint(ck)
    assert not marker.exists()
    assert sorted(p.name for p in ck.parent.iterdir()) == ["ck.npz"]  # nothing written


@pytest.mark.parametrize("strategy", ["evil_strategy.py", "evil_strategy"])
def test_a_checkpoint_naming_a_strategy_file_or_module_imports_nothing(
        cli, run, tmp_path, monkeypatch, strategy):
    monkeypatch.chdir(tmp_path)  # a module name is imported from the current directory
    marker = tmp_path / "marker.txt"
    _marker_plugin(tmp_path / "evil_strategy.py", marker, strategy_source("evil", "1.0 / count"))
    ck = forge(run / "checkpoint.npz", tmp_path / "ck.npz", normalization={"strategy": strategy})
    code, _, err = cli("train", "--quiet", "--resume", ck)
    assert_one_message(code, err, 2, f"normalization.strategy: {strategy}")
    assert not marker.exists()


def test_a_checkpoint_naming_a_model_factory_imports_nothing(cli, run, tmp_path):
    marker = tmp_path / "marker.txt"
    factory = _marker_plugin(tmp_path / "net.py", marker, "def build(): pass\n")
    ck = forge(run / "checkpoint.npz", tmp_path / "ck.npz",
               model={"factory": f"{factory}:build", "hidden": [4]})
    code, _, err = cli("train", "--quiet", "--resume", ck)
    assert_one_message(code, err, 2, f"model.factory: {factory}:build")
    assert not marker.exists()


def test_trusting_the_checkpoint_imports_its_plugins_and_resumes(cli, run, tmp_path):
    marker = tmp_path / "marker.txt"
    plugin = _marker_plugin(tmp_path / "observer.py", marker, OBSERVER)
    ck = forge(run / "checkpoint.npz", tmp_path / "download" / "ck.npz",
               plugins=[str(plugin)], train={"epochs": 5})
    code, out, err = cli("train", "--quiet", "--json", "--resume", ck,
                         "--trust-checkpoint-plugins")
    assert code == 0, err
    assert marker.exists()
    final = json.loads(out)
    assert (final["epochs"], final["steps"]) == (5, 5)
    assert final["output"] == str(ck.parent)  # the checkpoint's own folder


def _config_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_same_config_resumes_with_its_plugins_and_its_output_dir(cli, tmp_path):
    marker = tmp_path / "marker.txt"
    plugin = _marker_plugin(tmp_path / "observer.py", marker, OBSERVER)
    first = _config_file(tmp_path, "run.toml", f"""
        plugins = ["{plugin}"]
        [train]
        epochs = 4
        [output]
        dir = "{tmp_path / 'first'}"
        checkpoint_every = 1
    """)
    code, _, err = cli("train", "--quiet", first)
    assert code == 0, err
    marker.unlink()
    ck = forge(tmp_path / "first" / "checkpoints" / "epoch-0000004-step-0000000004.npz",
               tmp_path / "mid" / "ck.npz")  # unchanged: a copy taken elsewhere
    # The same config but for output.*, as a file and as --set: outputs go where it says.
    code, out, err = cli("train", "--quiet", "--json", first, "--resume", ck,
                         "--set", f"output.dir={tmp_path / 'second'}")
    assert code == 0, err
    assert marker.exists()
    assert json.loads(out)["output"] == str(tmp_path / "second")
    assert (tmp_path / "second" / "model.npz").is_file()
    assert sorted(p.name for p in (tmp_path / "mid").iterdir()) == ["ck.npz"]


@pytest.mark.parametrize("change,field", [
    (["--set", "train.epochs=9"], "train.epochs is 3 in the checkpoint, 9 in the config"),
    (["--set", "optimizer.lr=0.5"], "optimizer.lr is 1.2 in the checkpoint, 0.5 in the config"),
    (["--strategy", "sum"], "normalization.strategy is 'deferred' in the checkpoint, 'sum'"),
])
def test_a_config_that_differs_from_the_checkpoint_is_one_message_naming_the_field(
        cli, run, change, field):
    code, _, err = cli("train", "--quiet", "--resume", run, *change)
    assert_one_message(code, err, 2, "does not match the run in", field, "only output.*")
    assert err.count("\n") == 1


def test_the_config_is_compared_before_anything_is_imported(cli, run, tmp_path):
    """A config naming the checkpoint's plugin but differing elsewhere imports neither."""
    marker = tmp_path / "marker.txt"
    plugin = _marker_plugin(tmp_path / "evil.py", marker, OBSERVER)
    ck = forge(run / "checkpoint.npz", tmp_path / "ck.npz", plugins=[str(plugin)])
    code, _, err = cli("train", "--quiet", "--resume", ck, "--set", f'plugins=["{plugin}"]',
                       "--set", "train.seed=4")
    assert_one_message(code, err, 2, "train.epochs is 3 in the checkpoint, 10000 in the config; "
                       "train.seed is 3 in the checkpoint, 4 in the config.")
    assert not marker.exists()


def test_an_absolute_output_dir_inside_a_checkpoint_is_never_written(cli, run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    ck = forge(run / "checkpoint.npz", tmp_path / "download" / "ck.npz",
               output={"dir": str(elsewhere)}, train={"epochs": 4})
    code, out, err = cli("train", "--quiet", "--json", "--resume", ck)
    assert code == 0, err
    assert not elsewhere.exists()
    assert json.loads(out)["output"] == str(ck.parent)
    written = sorted(p.name for p in ck.parent.iterdir())
    assert written == ["checkpoint.npz", "checkpoints", "ck.npz", "config.toml",
                       "manifest.json", "metrics.json", "model.npz"]
    assert storage.load_arrays(ck.parent / "checkpoint.npz")[1]["epoch"] == 4
    # From Python as well: the trainer writes to the checkpoint's folder.
    assert Trainer.from_checkpoint(ck).output_dir == ck.parent


def test_resuming_a_run_directory_writes_back_into_it(cli, run, tmp_path):
    forged = forge(run / "checkpoint.npz", tmp_path / "tmp.npz",
                   output={"dir": str(tmp_path / "elsewhere")}, train={"epochs": 5})
    (run / "checkpoint.npz").unlink()
    forged.rename(run / "checkpoint.npz")
    code, _, err = cli("train", "--quiet", "--resume", run / "checkpoint.npz")
    assert code == 0, err
    assert not (tmp_path / "elsewhere").exists()
    assert json.loads((run / "manifest.json").read_text())["epoch"] == 5


def test_trust_without_resume_is_a_usage_error(cli):
    code, _, err = cli("train", "--quiet", "--trust-checkpoint-plugins")
    assert_one_message(code, err, 2, "--trust-checkpoint-plugins goes with --resume")
