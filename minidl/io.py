"""Files that matter are written atomically: a temp file beside the target, then rename.

A crash or Ctrl-C mid-write leaves the previous file whole, never half a file.
Checkpoints are ``.npz`` archives of arrays plus one JSON entry of metadata (no pickle).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_META_KEY = "__meta__"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray],
                meta: dict[str, Any] | None = None) -> None:
    """Save named arrays (and JSON-able metadata) as one ``.npz``, atomically."""
    buffer = io.BytesIO()
    entries = dict(arrays)
    if meta is not None:
        entries[_META_KEY] = np.array(json.dumps(meta))
    np.savez(buffer, **entries)
    atomic_write_bytes(path, buffer.getvalue())


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata written by ``save_arrays``; ``ValueError`` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (current directory: {Path.cwd()})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key != _META_KEY}
            meta = json.loads(str(archive[_META_KEY])) if _META_KEY in archive.files else {}
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not a minidl checkpoint: {err}") from None
    return arrays, meta
