"""``mpiexec -n R minidl train`` and ``minidl train --nproc R``: one model over R processes."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from helpers.mpi import PROGRAMS, minidl_command, run_mpi
from minidl.cli import main
from minidl.storage import load_arrays

PLUGIN = str(PROGRAMS / "stop_or_fail.py")
SETTINGS = ["train.epochs=6", "train.batch_size=64", "train.accumulate=2", "train.dtype=float64",
            "optimizer.name=adam", "optimizer.lr=0.02", "output.checkpoint_every=2",
            "data.val_fraction=0.2", f'plugins=["{PLUGIN}"]']


def _args(directory, *extra: str) -> list[str]:
    sets = [arg for setting in [*SETTINGS, f"output.dir={directory}"] for arg in ("--set", setting)]
    return ["train", *sets, "--json", *extra]


def _weights(directory) -> dict[str, np.ndarray]:
    arrays, _ = load_arrays(directory / "model.npz")
    return dict(arrays)


def _history(directory) -> dict:
    return json.loads((directory / "metrics.json").read_text())["history"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs several tests compare, each launched once."""
    root = tmp_path_factory.mktemp("runs")
    launched = {}
    for name, ranks, extra in (("two", 2, ()), ("three", 3, ())):
        launched[name] = run_mpi(ranks, minidl_command(*_args(root / name, *extra)), cwd=root)
    # --nproc starts mpiexec itself (from this process: no mpiexec around it)
    import subprocess
    import sys

    from helpers.mpi import mpi_env

    launched["nproc"] = subprocess.run(
        [sys.executable, "-m", "minidl", *_args(root / "nproc"), "--nproc", "2"],
        capture_output=True, text=True, timeout=60, env=mpi_env(), cwd=root)
    for name, done in launched.items():
        assert done.returncode == 0, (name, done.stderr)
    return root, launched


def test_only_rank_0_prints_and_writes(runs):
    root, launched = runs
    lines = launched["three"].stdout.strip().splitlines()
    assert len(lines) == 1, lines  # one JSON summary, not three
    final = json.loads(lines[0])
    assert final["epochs"] == 6 and final["output"] == str(root / "three")
    assert sorted(p.name for p in (root / "three").iterdir()) == [
        "checkpoint.npz", "checkpoints", "config.toml", "manifest.json", "metrics.json",
        "model.npz"]


def test_reruns_are_bit_identical_and_nproc_is_mpiexec(runs):
    root, _ = runs
    two, nproc = _weights(root / "two"), _weights(root / "nproc")
    assert two.keys() == nproc.keys()
    for name in two:
        np.testing.assert_array_equal(two[name], nproc[name])
    assert _history(root / "two") == _history(root / "nproc")


def test_1_2_and_3_ranks_train_the_same_model_on_the_same_global_batches(runs, tmp_path,
                                                                        capsys):
    """deferred over near-even shards of the same global batches: one process's weights."""
    root, _ = runs
    assert main(_args(tmp_path / "one")) == 0
    capsys.readouterr()
    one = _weights(tmp_path / "one")
    for name in ("two", "three"):
        for key, value in _weights(root / name).items():
            np.testing.assert_allclose(value, one[key], rtol=1e-9, atol=1e-12)
        # metrics are reduced over ranks: they describe the global batch
        history, reference = _history(root / name), _history(tmp_path / "one")
        np.testing.assert_allclose(history["train_loss"], reference["train_loss"], rtol=1e-9)
        assert history["train_accuracy"] == reference["train_accuracy"]


def test_resume_reaches_the_same_final_weights_as_an_uninterrupted_run(runs, tmp_path):
    root, _ = runs
    stopped = run_mpi(2, minidl_command(*_args(tmp_path / "r")), cwd=tmp_path,
                      MINIDL_TEST_STOP_AT="3")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["epochs"] == 3
    # The run names a plugin (the stopper); resuming imports it only when trusted.
    resumed = run_mpi(2, minidl_command("train", "--resume", str(tmp_path / "r"), "--json",
                                        "--trust-checkpoint-plugins"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epochs"] == 6
    straight, again = _weights(root / "two"), _weights(tmp_path / "r")
    for name in straight:
        np.testing.assert_array_equal(again[name], straight[name])
    assert _history(tmp_path / "r") == _history(root / "two")


def test_an_exception_on_one_rank_ends_every_rank_with_one_message(tmp_path):
    started = time.monotonic()
    done = run_mpi(3, minidl_command(*_args(tmp_path / "f")), cwd=tmp_path, timeout=30,
                   MINIDL_TEST_FAIL_RANK="1")
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert elapsed < 20  # ended by MPI_Abort, not by the timeout: no rank hung
    mentions = [line for line in done.stderr.splitlines() if "shard 1 is broken" in line]
    assert len(mentions) == 1, done.stderr
    assert mentions[0].startswith("failed: rank 1 of 3: plugin")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "f" / "model.npz").exists()


def test_bad_input_is_one_message_and_exit_2_printed_once(tmp_path):
    done = run_mpi(3, minidl_command("train", "--set", "train.epochs=0"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("train.epochs") == 1, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
