"""A run owns its output directory: it refuses another run's, clears a killed run's litter,
and ``--resume`` never takes another run's checkpoint without saying so."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers.cli import assert_one_message, cli  # noqa: F401 (a fixture)

import minidl as mdl
from minidl import storage
from minidl.errors import OutputDirError
from minidl.trainer import Trainer

RUN = ["train", "--quiet", "--set", "train.epochs=3", "--set", "output.checkpoint_every=1"]


def _run(cli, directory: Path, *extra: str) -> None:
    code, _, err = cli(*RUN, "--set", f"output.dir={directory}", *extra)
    assert code == 0, err


def _digests(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _run_id(directory: Path) -> str:
    return json.loads((directory / "manifest.json").read_text())["run_id"]


def test_a_new_run_in_another_runs_directory_refuses_naming_both_ways_out(cli, tmp_path):
    _run(cli, tmp_path)
    before = _digests(tmp_path)
    code, _, err = cli(*RUN, "--set", f"output.dir={tmp_path}")
    assert_one_message(code, err, 2, f"{tmp_path} holds another run's checkpoint",
                       f"run {_run_id(tmp_path)}, epoch 3", "--overwrite",
                       f"minidl train --resume {tmp_path}")
    assert err.count("\n") == 1
    assert _digests(tmp_path) == before  # nothing touched


@pytest.mark.parametrize("flag", [["--overwrite"], ["--set", "output.overwrite=true"]])
def test_overwrite_replaces_the_other_run(cli, tmp_path, flag):
    _run(cli, tmp_path, "--set", "train.epochs=4")
    old_id = _run_id(tmp_path)
    _run(cli, tmp_path, *flag)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["run_id"] != old_id and manifest["epoch"] == 3
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        "epoch-0000003-step-0000000003.npz"]
    assert storage.load_arrays(tmp_path / "checkpoint.npz")[1]["run_id"] == manifest["run_id"]


def test_the_default_runs_latest_moves_the_run_before_to_runs_previous(cli, tmp_path,
                                                                      monkeypatch):
    """Running the quick start twice works: runs/latest holds the newest run, the one
    before moves to runs/previous (replacing the run there), nothing else is lost."""
    monkeypatch.chdir(tmp_path)
    latest, previous = tmp_path / "runs" / "latest", tmp_path / "runs" / "previous"
    ids = []
    for _ in range(3):
        code, out, err = cli(*RUN)
        assert code == 0 and err == "", err
        ids.append(_run_id(latest))
    assert "(the run before is in runs/previous/)" in out
    assert _run_id(previous) == ids[1] and _run_id(latest) == ids[2]  # the first is gone
    assert Trainer.from_checkpoint(previous).epoch == 3


def test_the_run_id_is_in_manifest_and_checkpoint_and_kept_across_resumes(cli, tmp_path):
    _run(cli, tmp_path)
    run_id = _run_id(tmp_path)
    assert len(run_id) == 16 and int(run_id, 16) >= 0
    assert storage.load_arrays(tmp_path / "checkpoint.npz")[1]["run_id"] == run_id
    code, _, err = cli("train", "--quiet", "--resume", tmp_path, "--set", "train.epochs=3")
    assert code == 0 and err == ""
    assert _run_id(tmp_path) == run_id
    other = tmp_path / "other"
    _run(cli, other)
    assert _run_id(other) != run_id


def test_a_new_run_that_dies_before_its_first_checkpoint_leaves_no_old_checkpoint_to_resume(
        cli, tmp_path, monkeypatch):
    _run(cli, tmp_path)

    def die(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_run_epoch", die)
    code, _, _ = cli(*RUN, "--set", f"output.dir={tmp_path}", "--overwrite")
    assert code == 130
    monkeypatch.undo()
    for target in (tmp_path, tmp_path / "checkpoint.npz"):
        code, _, err = cli("train", "--quiet", "--resume", target)
        assert_one_message(code, err, 2, "no checkpoint at")
    # The dead run claimed the directory and wrote no checkpoint: a new run needs no flag.
    _run(cli, tmp_path)


def test_resuming_another_runs_checkpoint_says_so(cli, tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _run(cli, mine)
    _run(cli, theirs, "--set", "train.epochs=2")
    (mine / "checkpoint.npz").unlink()
    shutil.copy(theirs / "checkpoint.npz", mine / "checkpoint.npz")
    code, _, err = cli("train", "--quiet", "--resume", mine / "checkpoint.npz")
    assert code == 0
    assert (f"note: checkpoint.npz belongs to another run (run id {_run_id(theirs)}) than "
            f"{mine / 'manifest.json'} (run ") in err


def test_a_resume_into_a_config_dir_holding_another_run_refuses(cli, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _run(cli, first)
    _run(cli, second)
    code, _, err = cli("train", "--quiet", "--resume", first, "--set", "train.epochs=3",
                       "--set", f"output.dir={second}")
    assert_one_message(code, err, 2, f"{second} holds another run's checkpoint")


def test_a_resume_of_a_generation_writes_into_its_run_directory(cli, tmp_path):
    _run(cli, tmp_path, "--set", "train.epochs=4")
    generation = tmp_path / "checkpoints" / "epoch-0000004-step-0000000004.npz"
    trainer = Trainer.from_checkpoint(generation)
    assert trainer.output_dir == tmp_path and trainer.resume_notes == []


LEFTOVERS = [".checkpoint.npz.4242.link", ".manifest.json.0123456789ab.tmp",
             ".model.npz.abcdef012345.tmp", "checkpoints/.epoch-0000002-step-0000000002.npz."
             "00aa11bb22cc.tmp", "checkpoints/epoch-0000009-step-0000000009.npz"]
KEPT = ["notes.txt", ".hidden.tmp", ".model.npz.NOTHEX000000.tmp", "checkpoints/mine.npz"]


def _litter(directory: Path) -> None:
    for name in LEFTOVERS + KEPT:
        (directory / name).write_bytes(b"half a file")


def test_a_resume_removes_what_a_killed_run_left_and_nothing_else(cli, tmp_path):
    _run(cli, tmp_path)
    _litter(tmp_path)
    code, _, err = cli("train", "--quiet", "--resume", tmp_path, "--set", "train.epochs=3")
    assert code == 0, err
    for name in LEFTOVERS:
        assert not (tmp_path / name).exists(), name
    for name in KEPT:
        assert (tmp_path / name).read_bytes() == b"half a file", name


def test_a_new_run_removes_a_killed_runs_litter(cli, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    _litter(tmp_path)  # a run killed before its first manifest: no checkpoint to protect
    _run(cli, tmp_path)
    assert not any((tmp_path / name).exists() for name in LEFTOVERS)
    assert all((tmp_path / name).exists() for name in KEPT)


def _trainer(output_dir: Path, **options) -> mdl.Trainer:
    X, y = mdl.data.moons(n=40)
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 4, generator=0), mdl.nn.Tanh(),
                              mdl.nn.Linear(4, 2, generator=1))
    return mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
                       mdl.optim.SGD(model.parameters(), lr=0.1), mdl.data.Dataset(X, y),
                       epochs=2, quiet=True, output_dir=output_dir, **options)


def test_mdl_trainer_refuses_another_runs_directory_unless_overwrite(tmp_path):
    first = _trainer(tmp_path)
    first.fit()
    first.fit()  # the same run again: its own directory
    with pytest.raises(OutputDirError, match=r"pass overwrite=True; to continue it instead, "
                                             r"trainer.fit\(resume="):
        _trainer(tmp_path).fit()
    second = _trainer(tmp_path, overwrite=True)
    second.fit()
    assert second.run_id != first.run_id
    assert _run_id(tmp_path) == second.run_id == storage.load_arrays(
        tmp_path / "checkpoint.npz")[1]["run_id"]
    resumed = _trainer(tmp_path)
    resumed.fit(resume=tmp_path)
    assert resumed.run_id == second.run_id
