"""A real ``kill -9`` of ``minidl train`` at spread-out moments (issue 9's "Done when").

Each trial starts ``python -m minidl train`` with a checkpoint every epoch, SIGKILLs it at
a fixed delay (the first during start-up, the others after the run claimed its
directory, so they land at several points of the checkpoint cycle), then checks the
directory: the manifest names files that exist, with their SHA-256; the checkpoint it
names loads; and the next run there (``--resume``, or a new run when no checkpoint was
committed yet) finishes and leaves no temp file.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import cli  # noqa: F401 (a fixture)

from minidl import storage
from minidl.manifest import LINK_TEMP_NAME
from minidl.trainer import Trainer

EPOCHS = 20
ARGS = ["train", "--quiet", "--set", f"train.epochs={EPOCHS}", "--set",
        "output.checkpoint_every=1", "--set", "model.hidden=[64, 64]", "--set",
        "optimizer.name=adam", "--set", "optimizer.lr=0.01"]
#: Seconds after the run claimed its directory (None: after start, during imports).
DELAYS = [None, 0.0, 0.03, 0.08, 0.17, 0.33]


def _start(directory: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "minidl", *ARGS, "--set",
                             f"output.dir={directory}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ,
                                                            "MINIDL_DISABLE_PLUGIN_AUTOLOAD": "1"})


def _kill_at(process: subprocess.Popen, directory: Path, delay: float | None) -> None:
    if delay is None:
        time.sleep(0.2)
    else:
        deadline = time.monotonic() + 20
        while not (directory / "manifest.json").exists() and process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _temp_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if storage.TEMP_NAME.fullmatch(p.name) or LINK_TEMP_NAME.fullmatch(p.name))


def _check_consistent(directory: Path) -> dict | None:
    """The manifest (if any) names files that exist with their SHA-256, and its checkpoint
    loads; returns the manifest."""
    path = directory / "manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    for name, entry in manifest["files"].items():
        digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name
    if manifest["files"]:
        trainer = Trainer.from_checkpoint(directory)
        assert (trainer.epoch, trainer.step) == (manifest["epoch"], manifest["step"])
        assert trainer.run_id == manifest["run_id"]
    return manifest


@pytest.mark.parametrize("trial", range(len(DELAYS)))
def test_a_kill_at_any_moment_leaves_a_consistent_directory(cli, tmp_path, trial):
    directory = tmp_path / "run"
    _kill_at(_start(directory), directory, DELAYS[trial])
    manifest = _check_consistent(directory)
    resumable = bool(manifest and manifest["files"])
    if resumable:
        code, _, err = cli("train", "--quiet", "--resume", directory)
    else:  # killed before its first checkpoint: a new run there is not refused
        code, _, err = cli(*ARGS, "--set", f"output.dir={directory}")
    assert code == 0, err
    assert _temp_files(directory) == []
    final = _check_consistent(directory)
    assert final is not None and final["epoch"] == EPOCHS
    assert sorted(final["files"]) == [f"checkpoints/epoch-{EPOCHS:07d}-step-{EPOCHS:010d}.npz",
                                      "config.toml", "metrics.json", "model.npz"]
    if resumable:
        assert final["run_id"] == manifest["run_id"]  # the same run, continued
    assert [p.name for p in (directory / "checkpoints").iterdir()] == [
        f"epoch-{EPOCHS:07d}-step-{EPOCHS:010d}.npz"]
