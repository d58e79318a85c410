"""Reading ``.npz`` archives that may be damaged or hostile, one member at a time.

``np.load`` trusts the file: a zip bomb decompresses until memory runs out, a ``.npy``
header that lies about its shape allocates whatever it claims, and each kind of damage
raises a different exception (``BadZipFile``, ``zlib.error``, ``EOFError``, ...). Here
every member's declared size is checked against a cap *before* anything is read, every
header against its member's real size, and every problem is one ``ArchiveError`` naming
the file and the member.
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from minidl.errors import ArchiveError

#: dtype kinds an archive may hold: bool, integers, floats, complex, text (metadata).
ALLOWED_KINDS = "biufcU"
_HEADER_LIMIT = 10_000  # bytes of a .npy header; numpy's own default
# How each layer (zip directory, deflate, the .npy header) fails on damaged bytes: the
# zip module alone raises all of these for one flipped bit in the right place.
_ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError,
               UnicodeError, OverflowError, struct.error, KeyError, IndexError)


def read_npz(path: str | Path, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array in the archive at ``path`` by name, validated before it is allocated.

    ``max_bytes`` caps the total uncompressed size (default: half the memory available).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez(path, x=np.arange(3))
    >>> read_npz(path)["x"].tolist()
    [0, 1, 2]
    """
    from minidl.resources import available_memory  # here: resources imports minidl.data

    path = Path(path)
    limit = available_memory() // 2 if max_bytes is None else max_bytes
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ArchiveError(f"{path}: cannot read it ({err.strerror or err})") from None
    if size == 0:
        raise ArchiveError(f"{path}: the file is empty")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(info.file_size for info in members)
            if total > limit:
                raise ArchiveError(f"{path}: the archive would unpack to {total:,} bytes, over "
                                   f"the limit of {limit:,} (a zip bomb, or too big to load)")
            arrays = {}
            for info in members:
                if not info.filename.endswith(".npy"):
                    raise ArchiveError(f"{path}: member {info.filename!r} is not a .npy array; "
                                       "write the file with numpy.savez")
                key = info.filename[:-4]
                arrays[key] = _read_member(path, archive, info, key)
    except ArchiveError:
        raise
    except _ZIP_DAMAGE as err:
        if _starts_with(path, b"\x93NUMPY"):
            raise ArchiveError(f"{path}: expected a .npz archive (np.savez), found a single "
                               "array (np.save)") from None
        raise ArchiveError(f"{path}: not a readable .npz file: truncated or corrupt "
                           f"({type(err).__name__}: {err})") from None
    except OSError as err:
        raise ArchiveError(f"{path}: cannot read it ({err.strerror or err})") from None
    if not arrays:
        raise ArchiveError(f"{path}: the archive holds no arrays")
    return arrays


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                 key: str) -> np.ndarray:
    try:
        with archive.open(info) as member:
            return _read_npy(path, member, info.file_size, key)
    except ArchiveError:
        raise
    except zipfile.BadZipFile as err:
        reason = "bad zip CRC" if "CRC" in str(err) else f"bad zip entry: {err}"
        raise ArchiveError(f"{path} is truncated or corrupt ({reason} in {key!r})") from None
    except (OSError, *_ZIP_DAMAGE) as err:
        # Each layer (zip, deflate, the .npy header) fails its own way on damaged bytes.
        raise ArchiveError(f"{path} is truncated or corrupt ({type(err).__name__} in {key!r}: "
                           f"{err})") from None


def _read_npy(path: Path, member: IO[bytes], size: int, key: str) -> np.ndarray:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(
            member, max_header_size=_HEADER_LIMIT)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(
            member, max_header_size=_HEADER_LIMIT)
    else:
        raise ArchiveError(f"{path}: array {key!r} uses .npy format {version}, which minidl "
                           "does not read")
    if dtype.hasobject:
        raise ArchiveError(f"{path}: array {key!r} is not numeric (object dtype: it would "
                           "need pickle, which minidl never loads)")
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
        raise ArchiveError(f"{path}: array {key!r} is not numeric (dtype {dtype})")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    present = size - member.tell()
    if expected != present:
        raise ArchiveError(f"{path}: array {key!r} claims shape {shape} of {dtype} "
                           f"({expected:,} bytes) but holds {present:,} bytes")
    data = bytearray(member.read(expected))  # bytearray: the array is writable
    if len(data) != expected or member.read(1):  # reading to the end checks the CRC
        raise ArchiveError(f"{path} is truncated or corrupt (short data in {key!r})")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:
        return False
