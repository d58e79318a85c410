"""``manifest.json``: which files in an output directory belong together.

Every file is written atomically, but a run killed between two writes leaves files from
different epochs side by side (``checkpoint.npz`` from epoch 300, ``model.npz`` from an
earlier run's epoch 1000). Each file carries its epoch and step; the manifest, written
last and atomically after each set, names the set with each file's SHA-256. ``--resume``
reads it and says so when the directory holds anything else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minidl import storage

MANIFEST_NAME = "manifest.json"
CHECKPOINT_NAME = "checkpoint.npz"
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
    """The checkpoint ``--resume PATH`` means (PATH: a run directory or its checkpoint),
    and notes for the user when the directory's files do not form one set."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    checkpoint = directory / CHECKPOINT_NAME if path.is_dir() else path
    notes: list[str] = []
    if not checkpoint.is_file():
        return checkpoint, notes
    manifest = read_manifest(directory)
    epochs = {name: file_epoch(directory / name) for name in EPOCH_FILES
              if (directory / name).is_file()}
    own = epochs.get(checkpoint.name) if checkpoint.parent == directory else None
    if manifest is not None and checkpoint.name in manifest.files:
        entry = manifest.files[checkpoint.name]
        if entry.sha256 != _sha_or_none(checkpoint):
            notes.append(f"{directory / MANIFEST_NAME} names {checkpoint.name} from epoch "
                         f"{entry.epoch}, but the file now holds epoch {_show(own)} (the run "
                         "stopped between writes); resuming from the file")
    others = {name: epoch for name, epoch in epochs.items() if name != checkpoint.name}
    if own is not None and any(epoch != own for epoch in others.values()):
        listing = ", ".join(f"{name} epoch {_show(epoch)}" for name, epoch in epochs.items())
        notes.append(f"{directory} holds files from different epochs ({listing}); resuming "
                     f"from {checkpoint.name} at epoch {own}, the rest will be rewritten")
    return checkpoint, notes


def _sha_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def _show(epoch: Any) -> str:
    return "unknown" if epoch is None else str(epoch)
