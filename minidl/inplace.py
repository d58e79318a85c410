"""In-place safety: an array an op saved for backward must not change before backward.

torch bumps a version counter in every in-place op and checks it when backward
unpacks a saved tensor. minidl cannot: its arrays are numpy arrays, and a user
writes to them directly (``w.data[0] = 1``, ``x.data *= 2``, or the array behind
``mdl.from_numpy``), which no counter sees. A checksum of every saved array at
forward and again at backward would see it, but costs a pass over the data twice
a step. So minidl checksums only what someone else could have written:

* **guards at save time.** Before an op runs, each input array it will save
  (``Function.saved_inputs``) is checked with ``sys.getrefcount``: an array
  referenced only by its tensor (and by the op that produced it) cannot be
  written by anyone else, so it needs nothing. An array someone else holds (a
  user's variable, a view of it, the array behind ``from_numpy``, another op of a
  live graph) gets a CRC-32 now, kept on the op, compared at backward.
* **snapshots at hand-out time.** ``Tensor.data`` (and ``.numpy()``,
  ``__array__``) hand the array to user code. If a live graph holds that array
  (its reference count says someone besides the tensor does), the tensor takes a
  CRC-32 before handing it out; backward compares it. So writing through a handle
  taken *after* the forward pass is caught too.

Backward raises ``GraphError`` naming the op and the tensor when a CRC differs.
minidl's own writers (the optimizers, ``nn.init``, ``load_state_dict``) go
through ``Tensor.data`` like a user, so an optimizer step between forward and
backward is caught, and one after backward (graph freed) is legal.

Not covered (documented in ``Tensor.data``): an edit through a view of the memory
that minidl made itself (e.g. of ``w.T``) and then dropped, and an edit of an
array given as an op *option* (an index array) rather than a tensor.
"""

from __future__ import annotations

import sys
import zlib
from typing import TYPE_CHECKING

import numpy as np

from minidl.errors import GraphError

if TYPE_CHECKING:
    from minidl.tensor import Function, Tensor

refcount = sys.getrefcount


class _Counter:
    """How many snapshots were ever taken: an op built after the last one has none to check."""

    __slots__ = ("snapshots",)

    def __init__(self) -> None:
        self.snapshots = 0


state = _Counter()


def fingerprint(array: np.ndarray) -> int:
    """CRC-32 of the array's bytes: any change to any element changes it (a permutation too).

    >>> import numpy as np
    >>> a = np.arange(4.0); before = fingerprint(a); a[2] = 7.0
    >>> fingerprint(a) == before
    False
    """
    try:
        return zlib.crc32(array)  # C-contiguous arrays: read in place, no copy
    except (BufferError, ValueError, TypeError):
        return zlib.crc32(np.ascontiguousarray(array))


def take_snapshot(tensor: Tensor, array: np.ndarray) -> None:
    """Remember ``array``'s CRC on ``tensor`` before user code gets a handle to it."""
    tensor._snapshot = (array, fingerprint(array))
    state.snapshots += 1


def describe(tensor: Tensor) -> str:
    """The tensor as an error message can name it."""
    data = tensor._data
    if tensor._ctx is not None:
        kind = f"the output of {type(tensor._ctx).__name__}"
    elif tensor.requires_grad:
        kind = "a leaf tensor that requires grad (a parameter?)"
    else:
        kind = "a constant input tensor"
    return f"{kind}, shape {data.shape}, {data.dtype}"


def modified_error(fn: Function, what: str) -> GraphError:
    return GraphError(
        f"{type(fn).__name__}: {what} was modified in place after the forward pass saved it "
        "for backward, so the gradient would be wrong. Change .data (or the numpy array "
        "behind mdl.from_numpy) only after backward(), e.g. update parameters after the "
        "backward pass, or run the forward pass again."
    )


def check_function(fn: Function, node: Tensor) -> None:
    """Raise ``GraphError`` if an array ``fn`` saved changed since forward (see module doc).

    ``node`` is fn's output tensor. Called by the engine just before ``fn.backward``.
    """
    guards = fn._guards
    parents = fn.parents
    if guards is not None:
        for index, array, crc in guards:
            if fingerprint(array) != crc:
                raise modified_error(fn, f"input {index} ({describe(parents[index])})")
    if fn._snapshot_mark == state.snapshots:
        return  # no snapshot was taken since this op ran
    indices = range(len(parents)) if fn.saved_inputs is None else fn.saved_inputs
    for index in indices:
        _check_snapshot(fn, parents[index], f"input {index}")
    if fn.saves_output is not False:
        _check_snapshot(fn, node, "its output")


def _check_snapshot(fn: Function, tensor: Tensor, role: str) -> None:
    snapshot = tensor._snapshot
    if snapshot is not None and fingerprint(snapshot[0]) != snapshot[1]:
        raise modified_error(fn, f"{role} ({describe(tensor)})")


def guard_input(fn: Function, index: int, tensor: Tensor, array: np.ndarray) -> None:
    """Before ``fn`` runs: checksum its input ``index``, which someone else may hold.

    ``Function.apply`` calls this when the array has more references than its tensor,
    apply's list and the call; the op that produced it keeping it too is fine.
    """
    if not tensor._external and refcount(array) <= 5:  # the 3, this frame and the caller's
        producer = tensor._ctx
        if producer is not None and producer.saves_output is True and producer.parents:
            return
    guards = fn._guards
    if guards is None:
        guards = fn._guards = []
    guards.append((index, array, fingerprint(array)))
