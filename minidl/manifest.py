"""``manifest.json``: which files in an output directory belong together.

Every file is written atomically, but a run killed between two writes could leave files
from different epochs side by side. So checkpoints are written as generations, and the
manifest, itself replaced atomically, only ever names files that exist:

1. the new checkpoint is written under ``checkpoints/`` with its epoch and step in its
   name (the previous generation is untouched);
2. the manifest is replaced to name it, with its SHA-256;
3. ``checkpoint.npz`` becomes the same file (a hard link, for ``--resume DIR/checkpoint.npz``);
4. older generations are deleted.

A kill at any moment leaves a manifest that names a whole, loadable checkpoint (the
old generation before step 2, the new one after). At the end of a run, the final
``model.npz``, ``config.toml`` and ``metrics.json`` (each stamped with its epoch and
step) are written, then the manifest names them with the checkpoint of the same epoch.
``--resume DIR`` resumes from the manifest's checkpoint and says so when the
directory holds anything else.

Each run has a random id, chosen when it starts and kept across resumes, written in the
manifest and in every checkpoint's metadata: a new run claims its directory by writing a
manifest with its id and no files (so a kill before its first checkpoint cannot leave
the previous run's checkpoint looking like this run's), and ``--resume`` says when a
checkpoint belongs to another run than its directory's manifest. Before a run writes
anything, ``clean_directory`` removes what a killed run left: temp files and
generations the manifest does not name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minidl import storage

MANIFEST_NAME = "manifest.json"
CHECKPOINT_NAME = "checkpoint.npz"
CHECKPOINTS_DIR = "checkpoints"
#: Outputs that carry an epoch: in their .npz metadata or as metrics.json's top-level key.
EPOCH_FILES = ("checkpoint.npz", "model.npz", "metrics.json")
_MAX_MANIFEST_BYTES = 1 << 20
#: A checkpoint generation's name, and the temp name ``_alias`` links through.
GENERATION_NAME = re.compile(r"epoch-\d{7,}-step-\d{10,}\.npz")
LINK_TEMP_NAME = re.compile(rf"\.{re.escape(CHECKPOINT_NAME)}\.\d+\.link")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    epoch: int = Field(ge=0)
    step: int = Field(ge=0)
    sha256: str


class Manifest(BaseModel):
    """The set of files that belong together, at one epoch and step."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: int = 1
    run_id: str | None = None  # None: written by a minidl before run ids
    epoch: int = Field(ge=0)
    step: int = Field(ge=0)
    files: dict[str, FileEntry]


def new_run_id() -> str:
    """A fresh random run id (16 hex digits)."""
    return secrets.token_hex(8)


def write_manifest(directory: Path, names: list[str], epoch: int, step: int,
                   run_id: str | None = None) -> None:
    """Name ``names`` (already written, all at ``epoch``/``step``) as the directory's set."""
    files = {name: FileEntry(epoch=epoch, step=step, sha256=file_sha256(directory / name))
             for name in names}
    manifest = Manifest(run_id=run_id, epoch=epoch, step=step, files=files)
    storage.atomic_write_json(directory / MANIFEST_NAME, manifest.model_dump())


def commit_checkpoint(directory: Path, write: Callable[[Path], None], epoch: int,
                      step: int, run_id: str | None = None) -> Path:
    """Write a checkpoint generation with ``write(path)`` and make the manifest name it
    (steps 1-4 of the module doc); returns the generation's path."""
    generation = directory / CHECKPOINTS_DIR / f"epoch-{epoch:07d}-step-{step:010d}.npz"
    write(generation)
    write_manifest(directory, [generation.relative_to(directory).as_posix()], epoch, step,
                   run_id)
    _alias(generation, directory / CHECKPOINT_NAME)
    for old in (directory / CHECKPOINTS_DIR).glob("epoch-*.npz"):
        if old.name != generation.name:
            old.unlink(missing_ok=True)
    return generation


def manifest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint the directory's manifest names, if it is there and whole."""
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    for name, entry in manifest.files.items():
        if name.startswith(f"{CHECKPOINTS_DIR}/") and _sha_or_none(directory / name) == (
                entry.sha256):
            return directory / name
    return None


class DirectoryRun:
    """What run, if any, an output directory holds (``directory_run``)."""

    def __init__(self, holds_checkpoint: bool, run_id: str | None, epoch: int | None) -> None:
        self.holds_checkpoint, self.run_id, self.epoch = holds_checkpoint, run_id, epoch


def directory_run(directory: Path) -> DirectoryRun:
    """Whether ``directory`` holds a run's checkpoint (a manifest naming files, or a
    ``checkpoint.npz``), and that run's id and epoch as its manifest (else its
    checkpoint.npz) says."""
    manifest = read_manifest(directory)
    checkpoint = directory / CHECKPOINT_NAME
    if manifest is not None and manifest.files:
        return DirectoryRun(True, manifest.run_id, manifest.epoch)
    if checkpoint.is_file():
        meta = file_meta(checkpoint) or {}
        run_id = meta.get("run_id") if isinstance(meta.get("run_id"), str) else None
        return DirectoryRun(True, run_id, _epoch_of(meta))
    return DirectoryRun(False, manifest.run_id if manifest else None, None)


def claim_directory(directory: Path, run_id: str, epoch: int, step: int) -> None:
    """Make the manifest say the directory is ``run_id``'s, naming no file yet."""
    write_manifest(directory, [], epoch, step, run_id)


def remove_run(directory: Path, run_id: str, epoch: int, step: int) -> list[str]:
    """Give the directory to ``run_id`` (``--overwrite``): claim the manifest first, then
    delete the other run's ``checkpoint.npz`` and the files its manifest named, so a kill
    midway never leaves a manifest naming a deleted file nor one that lets the old
    checkpoint pass for this run's. Its generations go with ``clean_directory``.
    Returns the names removed."""
    manifest = read_manifest(directory)
    claim_directory(directory, run_id, epoch, step)
    names = {CHECKPOINT_NAME, *(manifest.files if manifest else ())}
    removed = []
    own = {directory.resolve(), (directory / CHECKPOINTS_DIR).resolve()}
    for name in sorted(names):
        path = directory / name
        if path.parent.resolve() not in own:
            continue  # a manifest edited to name files elsewhere: not ours to delete
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(name)
    return removed


def clean_directory(directory: Path, keep: Path | None = None) -> list[str]:
    """Remove what a killed run left in ``directory``: temp files of atomic writes and
    of ``checkpoint.npz``'s link, and checkpoint generations the manifest does not name
    (except ``keep``, a checkpoint being resumed). Returns the names removed.

    Call it only when this process owns the directory: a run that is about to write.
    """
    removed = storage.remove_stale_temps(directory)
    for entry in _entries(directory):
        if LINK_TEMP_NAME.fullmatch(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    generations = directory / CHECKPOINTS_DIR
    removed += [f"{CHECKPOINTS_DIR}/{name}" for name in storage.remove_stale_temps(generations)]
    manifest = read_manifest(directory)
    named = set(manifest.files) if manifest else set()
    for entry in _entries(generations):
        name = f"{CHECKPOINTS_DIR}/{entry.name}"
        if (GENERATION_NAME.fullmatch(entry.name) and name not in named and entry.is_file()
                and not (keep is not None and same_path(entry, keep))):
            entry.unlink(missing_ok=True)
            removed.append(name)
    return removed


def run_directory(checkpoint: Path) -> Path:
    """The run directory that holds ``checkpoint``: its folder, or the folder above for a
    generation under ``checkpoints/``."""
    folder = checkpoint.parent
    if folder.name == CHECKPOINTS_DIR and GENERATION_NAME.fullmatch(checkpoint.name):
        return folder.parent
    return folder


def _entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError:
        return []


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same place (False if either cannot be resolved)."""
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _alias(target: Path, alias: Path) -> None:
    """Make ``alias`` the same file as ``target``, atomically (a hard link, else a copy)."""
    temp = alias.with_name(f".{alias.name}.{os.getpid()}.link")
    temp.unlink(missing_ok=True)
    try:
        os.link(target, temp)
    except OSError:  # no hard links here (some file systems): copy instead
        storage.atomic_write_bytes(alias, target.read_bytes())
        return
    os.replace(temp, alias)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path) -> Manifest | None:
    """The directory's manifest, or None when there is none (or it is unreadable)."""
    path = directory / MANIFEST_NAME
    try:
        if not path.is_file() or path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError, ValidationError):
        return None


def file_meta(path: Path) -> dict[str, Any] | None:
    """A run output's metadata (an .npz's, or a JSON file's top level), or None if unreadable."""
    try:
        if path.suffix == ".npz":
            meta = storage.load_arrays(path)[1]
        elif path.stat().st_size <= 64 << 20:
            meta = json.loads(path.read_text(encoding="utf-8"))
        else:
            return None
    except (OSError, ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def file_epoch(path: Path) -> int | None:
    """The epoch a run output says it describes, or None if it says nothing readable."""
    return _epoch_of(file_meta(path))


def _epoch_of(meta: dict[str, Any] | None) -> int | None:
    epoch = (meta or {}).get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def output_notes(directory: Path, name: str) -> list[str]:
    """What to tell a user reading ``name`` (``model.npz``) from a run directory when it is
    not the file the directory's manifest names (a run stopped before its final set)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return []
    entry = manifest.files.get(name)
    if entry is not None and entry.sha256 == _sha_or_none(directory / name):
        return []
    epoch = _show(file_epoch(directory / name))
    return [f"{directory / name} (epoch {epoch}) is not part of the set {MANIFEST_NAME} names "
            f"(epoch {manifest.epoch}): the run stopped before writing its final files; "
            f"using it as it is (resume the run to finish it: minidl train --resume "
            f"{directory})"]


def resolve_resume(path: str | Path) -> tuple[Path, list[str]]:
    """The checkpoint ``--resume PATH`` means (PATH: a run directory or a checkpoint), and
    notes for the user when the directory's files do not form one set.

    A run directory resumes from the checkpoint its manifest names (always whole, even
    after a kill); without a usable manifest, from its ``checkpoint.npz``.
    """
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        named = manifest_checkpoint(path)
        if named is not None:
            return named, notes
        directory, checkpoint = path, path / CHECKPOINT_NAME
    else:
        directory, checkpoint = run_directory(path), path
    if not checkpoint.is_file():
        return checkpoint, notes
    named = manifest_checkpoint(directory)
    own_meta = file_meta(checkpoint)
    own = _epoch_of(own_meta)
    manifest = read_manifest(directory)
    own_run = (own_meta or {}).get("run_id")
    if manifest is not None and manifest.run_id is not None and own_run != manifest.run_id:
        notes.append(f"{checkpoint.name} belongs to another run (run id {_show(own_run)}) "
                     f"than {directory / MANIFEST_NAME} (run {manifest.run_id}); resuming "
                     f"from {checkpoint.name} as asked")
    if named is not None and _sha_or_none(named) != _sha_or_none(checkpoint):
        notes.append(f"{directory / MANIFEST_NAME} names {named.relative_to(directory)} "
                     f"(epoch {_show(file_epoch(named))}), not {checkpoint.name} (epoch "
                     f"{_show(own)}); resuming from {checkpoint.name} as asked")
    epochs = {name: file_epoch(directory / name) for name in EPOCH_FILES
              if (directory / name).is_file() and directory / name != checkpoint}
    if own is not None and any(epoch != own for epoch in epochs.values()):
        listing = ", ".join(f"{name} epoch {_show(epoch)}" for name, epoch in epochs.items())
        notes.append(f"{directory} holds files from other epochs ({listing}); resuming from "
                     f"{checkpoint.name} at epoch {own}, the rest will be rewritten")
    return checkpoint, notes


def _sha_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def _show(epoch: Any) -> str:
    return "unknown" if epoch is None else str(epoch)
