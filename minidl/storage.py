"""Files that matter are written atomically: a temp file beside the target, then rename.

A crash or Ctrl-C mid-write leaves the previous file whole, never half a file.
Checkpoints are ``.npz`` archives of arrays plus one JSON entry of metadata (no pickle,
so reading one runs no code); the metadata carries a SHA-256 checksum of every array and
of itself, so a reader can tell a damaged file from a good one. Anyone can recompute
the checksum of an edited file: it proves integrity, not origin, which is why resuming
never imports the plugins a checkpoint's config names on its own (``minidl.resume``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from minidl.errors import CheckpointError
from minidl.npz import ArchiveError, read_npz

_META_KEY = "__meta__"
#: The name ``_create_temp`` gives a temp file beside ``NAME``: ``.NAME.<12 hex digits>.tmp``.
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
_CHECKSUM_KEY = "checksum"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = _create_temp(path)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:  # leave no temp file behind; a second failure must not hide the first
            Path(temp_name).unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _fsync_directory(path.parent)  # so the rename itself survives a power cut


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, empty temp file beside ``path``, opened for writing: (descriptor, name).

    Unlike ``tempfile.mkstemp`` (always 0600) it is created with mode 0666 and the
    kernel applies the umask (and any default ACL), so the renamed file gets the
    permissions any other file the user writes there would get.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def remove_stale_temps(directory: str | Path) -> list[str]:
    """Delete the temp files a killed writer left in ``directory``; returns their names.

    Only names ``_create_temp`` makes are touched. Call it only where no other process is
    writing (a run's own output directory).
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if TEMP_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
                removed.append(entry.name)
            except OSError:  # best effort: a leftover temp file is litter, not damage
                pass
    return removed


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk; best effort, where the OS supports it."""
    if not hasattr(os, "O_DIRECTORY"):  # e.g. Windows: directories cannot be opened
        return
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data file is synced
    finally:
        os.close(handle)


def ensure_writable_dir(path: str | Path) -> None:
    """Create ``path`` if needed and prove a file can be written in it; ``OSError`` if not."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    handle, name = _create_temp(path / "write-test")
    os.close(handle)
    os.unlink(name)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None``, so it is strict JSON (no ``NaN``).

    >>> json_safe({"loss": float("nan"), "history": [1.0, float("inf")]})
    {'loss': None, 'history': [1.0, None]}
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    """``value`` as strict JSON (NaN and infinities written as null), atomically."""
    atomic_write_text(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray],
                meta: dict[str, Any] | None = None) -> None:
    """Save named arrays (and JSON-able metadata) as one ``.npz``, atomically.

    The metadata gains a ``checksum`` of the arrays and itself, checked by ``load_arrays``.
    """
    buffer = io.BytesIO()
    entries = {key: np.asarray(value) for key, value in arrays.items()}
    meta = dict(meta or {})
    meta[_CHECKSUM_KEY] = checksum(entries, meta)
    entries[_META_KEY] = np.array(json.dumps(meta))
    np.savez(buffer, **entries)
    atomic_write_bytes(path, buffer.getvalue())


def checksum(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """SHA-256 of every array (name, dtype, shape, bytes) and of the metadata's JSON.

    >>> checksum({"w": np.zeros(2)}, {"epoch": 1})[:12]
    '6b9eee00dabe'
    """
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(json.dumps([key, array.dtype.str, list(array.shape)]).encode())
        digest.update(array.tobytes())
    body = {k: v for k, v in meta.items() if k != _CHECKSUM_KEY}
    digest.update(json.dumps(body, sort_keys=True).encode())
    return digest.hexdigest()


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata written by ``save_arrays``, checked against their checksum.

    ``CheckpointError`` (a ``ValueError``) names the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"no checkpoint at {path}: it {what} (current directory: "
                              f"{Path.cwd()})")
    try:
        arrays = read_npz(path)
    except ArchiveError as err:
        raise CheckpointError(str(err)) from None
    if _META_KEY not in arrays:
        raise CheckpointError(f"{path} has no minidl metadata (no architecture, no checksum): "
                              "a bare .npz of arrays; load its weights into a model you build "
                              "with model.load_state_dict(path)")
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    if meta.get(_CHECKSUM_KEY) != checksum(arrays, meta):
        problem = ("has no checksum (written by an older minidl?)"
                   if _CHECKSUM_KEY not in meta else "does not match its checksum")
        raise CheckpointError(f"{path} {problem}: the file is damaged or was edited; "
                              "use another checkpoint, or train again")
    return arrays, meta
