"""Outputs during and after a run: faults are one message, sets are named by a manifest.

Filesystem faults mid-run (read-only directory, directory replaced by a file, disk full)
exit 1 with one message, leave the previous checkpoint loadable and no temp files; each
output carries its epoch and step; manifest.json names the set that belongs together, and
``--resume`` says so when a directory mixes generations.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil

import pytest
from helpers.cli import assert_one_message, cli  # noqa: F401 (a fixture)

from minidl import storage as io
from minidl.trainer import Trainer

RUN = ["train", "--quiet", "--set", "train.epochs=4", "--set", "output.checkpoint_every=1"]


def _fail_from_epoch(monkeypatch, epoch: int, fault) -> None:
    """Run ``fault()`` once, just before epoch ``epoch`` (1-based) starts."""
    run_epoch = Trainer._run_epoch

    def wrapped(self):
        if self.epoch + 1 == epoch:
            fault()
        return run_epoch(self)

    monkeypatch.setattr(Trainer, "_run_epoch", wrapped)


def _disk_full(monkeypatch):
    """Every later write through ``io`` fails with ENOSPC after creating its temp file."""
    fdopen = os.fdopen

    class Full:
        def __init__(self, handle, mode):
            self.file = fdopen(handle, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return lambda: monkeypatch.setattr(io.os, "fdopen", Full)


def _read_only(monkeypatch):
    """Creating files fails with EROFS (a chmod would not stop root, so simulate it)."""
    real_open = os.open

    def refuse(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    return lambda: monkeypatch.setattr(io.os, "open", refuse)


@pytest.mark.parametrize("make_fault,reason", [(_disk_full, "No space left on device"),
                                               (_read_only, "Read-only file system")])
def test_a_write_failing_mid_run_is_one_message_and_keeps_the_checkpoint(
        cli, tmp_path, monkeypatch, make_fault, reason):
    _fail_from_epoch(monkeypatch, 3, make_fault(monkeypatch))
    code, _, err = cli(*RUN, "--set", f"output.dir={tmp_path}")
    assert_one_message(code, err, 1, "cannot write checkpoint.npz", reason,
                       "the checkpoint of epoch 2 is still loadable")
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "checkpoints",
                                                          "manifest.json"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        "epoch-0000002-step-0000000002.npz"]  # the failed generation left nothing behind
    monkeypatch.undo()
    assert Trainer.from_checkpoint(tmp_path / "checkpoint.npz").epoch == 2


def test_the_output_dir_replaced_by_a_file_is_one_message(cli, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def replace_with_file():
        shutil.rmtree(out)
        out.write_text("not a directory any more")

    _fail_from_epoch(monkeypatch, 3, replace_with_file)
    code, _, err = cli(*RUN, "--set", f"output.dir={out}")
    assert_one_message(code, err, 1, "cannot write checkpoint.npz", str(out))
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def _run(cli, directory, *extra):
    code, _, err = cli(*RUN, "--set", f"output.dir={directory}", *extra)
    assert code == 0, err


def test_every_output_carries_its_epoch_and_step_and_the_manifest_names_the_set(
        cli, tmp_path):
    _run(cli, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["epoch"], manifest["step"]) == (4, 4)
    generation = "checkpoints/epoch-0000004-step-0000000004.npz"
    assert sorted(manifest["files"]) == [generation, "config.toml", "metrics.json", "model.npz"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["epoch"], metrics["step"]) == (4, 4)
    # checkpoint.npz, for --resume DIR/checkpoint.npz, is the same file as the generation
    assert (tmp_path / "checkpoint.npz").read_bytes() == (tmp_path / generation).read_bytes()
    for name in ("model.npz", "checkpoint.npz"):
        meta = io.load_arrays(tmp_path / name)[1]
        assert (meta["epoch"], meta["step"]) == (4, 4)
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert (entry["epoch"], entry["step"]) == (4, 4)


STOP_AT_3 = """
import minidl as mdl

@mdl.hookimpl
def minidl_epoch_end(trainer, epoch, metrics):
    return epoch == 3
"""


def test_a_run_stopped_by_a_plugin_still_writes_a_matching_checkpoint(cli, tmp_path):
    plugin = tmp_path / "stop_at_3.py"
    plugin.write_text(STOP_AT_3)
    out = tmp_path / "run"
    _run(cli, out, "--set", "output.checkpoint_every=10", "--set", f'plugins=["{plugin}"]')
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["epoch"] == 3
    assert io.load_arrays(out / "checkpoint.npz")[1]["epoch"] == 3


def test_resume_says_when_the_file_given_is_not_the_set_the_manifest_names(cli, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    _run(cli, old)  # a finished 4-epoch run
    _run(cli, new, "--set", "train.epochs=2")
    # A checkpoint.npz from another run copied over this one's (by hand: a kill cannot do it).
    (old / "checkpoint.npz").unlink()
    shutil.copy(new / "checkpoint.npz", old / "checkpoint.npz")
    code, _, err = cli("train", "--quiet", "--resume", old / "checkpoint.npz")
    assert code == 0
    assert "note:" in err and "Traceback" not in err
    assert ("names checkpoints/epoch-0000004-step-0000000004.npz (epoch 4), not "
            "checkpoint.npz (epoch 2); resuming from checkpoint.npz as asked") in err
    assert "holds files from other epochs (model.npz epoch 4, metrics.json epoch 4)" in err
    # The directory itself resumes from the set its manifest names: nothing to say.
    code, _, err = cli("train", "--quiet", "--resume", old)
    assert code == 0 and err == ""


def test_resume_from_a_consistent_directory_is_silent(cli, tmp_path):
    _run(cli, tmp_path, "--set", "train.epochs=2")
    code, _, err = cli("train", "--quiet", "--resume", tmp_path)
    assert code == 0 and err == ""
