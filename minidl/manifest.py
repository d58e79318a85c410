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
"""

from __future__ import annotations

import hashlib
import json
import os
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


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    epoch: int = Field(ge=0)
    step: int = Field(ge=0)
    sha256: str


class Manifest(BaseModel):
    """The set of files that belong together, at one epoch and step."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: int = 1
    epoch: int = Field(ge=0)
    step: int = Field(ge=0)
    files: dict[str, FileEntry]


def write_manifest(directory: Path, names: list[str], epoch: int, step: int) -> None:
    """Name ``names`` (already written, all at ``epoch``/``step``) as the directory's set."""
    files = {name: FileEntry(epoch=epoch, step=step, sha256=file_sha256(directory / name))
             for name in names}
    manifest = Manifest(epoch=epoch, step=step, files=files)
    storage.atomic_write_json(directory / MANIFEST_NAME, manifest.model_dump())


def commit_checkpoint(directory: Path, write: Callable[[Path], None], epoch: int,
                      step: int) -> Path:
    """Write a checkpoint generation with ``write(path)`` and make the manifest name it
    (steps 1-4 of the module doc); returns the generation's path."""
    generation = directory / CHECKPOINTS_DIR / f"epoch-{epoch:07d}-step-{step:010d}.npz"
    write(generation)
    write_manifest(directory, [generation.relative_to(directory).as_posix()], epoch, step)
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


def file_epoch(path: Path) -> int | None:
    """The epoch a run output says it describes, or None if it says nothing readable."""
    try:
        if path.suffix == ".npz":
            meta = storage.load_arrays(path)[1]
        elif path.stat().st_size <= 64 << 20:
            meta = json.loads(path.read_text(encoding="utf-8"))
        else:
            return None
        epoch = meta.get("epoch") if isinstance(meta, dict) else None
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    except (OSError, ValueError, RecursionError):
        return None


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
        directory, checkpoint = path.parent, path
    if not checkpoint.is_file():
        return checkpoint, notes
    named = manifest_checkpoint(directory)
    own = file_epoch(checkpoint)
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
