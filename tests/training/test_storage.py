"""Atomic writes: the usual file mode, the rename made durable, strict JSON."""

from __future__ import annotations

import json
import os
import stat

import pytest

from minidl import storage as io


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_get_the_usual_mode_for_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    io.atomic_write_text(tmp_path / "config.toml", "x = 1\n")
    io.save_arrays(tmp_path / "model.npz", {})
    for name in ("config.toml", "model.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="directories cannot be opened")
def test_the_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(handle: int) -> None:
        synced.append(("dir" if stat.S_ISDIR(os.fstat(handle).st_mode) else "file",
                       (tmp_path / "metrics.json").exists()))
        fsync(handle)

    def record_replace(source, target) -> None:
        synced.append(("rename", None))
        replace(source, target)

    monkeypatch.setattr(io.os, "fsync", record_fsync)
    monkeypatch.setattr(io.os, "replace", record_replace)
    io.atomic_write_json(tmp_path / "metrics.json", {"loss": 1.0})
    assert synced == [("file", False), ("rename", None), ("dir", True)]


def test_a_directory_that_refuses_fsync_is_not_an_error(tmp_path, monkeypatch):
    fsync = os.fsync

    def refuse_directories(handle: int) -> None:
        if stat.S_ISDIR(os.fstat(handle).st_mode):
            raise OSError(22, "Invalid argument")
        fsync(handle)

    monkeypatch.setattr(io.os, "fsync", refuse_directories)
    io.atomic_write_text(tmp_path / "a.txt", "kept")
    assert (tmp_path / "a.txt").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_json_is_written_strict_with_null_for_nan_and_infinities(tmp_path):
    io.atomic_write_json(tmp_path / "m.json", {"a": [1.5, float("nan")],
                                               "b": {"c": float("-inf")}, "d": "text"})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": [1.5, None], "b": {"c": None}, "d": "text"}


def test_ensure_writable_dir_creates_it_and_refuses_a_file(tmp_path):
    io.ensure_writable_dir(tmp_path / "x" / "y")
    assert (tmp_path / "x" / "y").is_dir() and list((tmp_path / "x" / "y").iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(OSError):
        io.ensure_writable_dir(tmp_path / "f")
