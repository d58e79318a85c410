"""A failure on any rank ends the whole job, with one message naming the rank.

Two phases, two rules:

* While reading input (config, data, checkpoint), every rank reaches the same point
  whether it failed or not, so the ranks *agree*: one small all-reduce of who failed.
  The lowest failing rank raises its error (printed once, exit 2 for bad input); the
  others stop silently with the same exit code.
* While training, a failing rank cannot count on the others reaching any agreed
  point (they may be waiting in the step's all-reduce), so it prints its one message
  and calls ``MPI_Abort``, which ends every rank of the job at once.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from minidl.distributed.comm import LocalGroup, MPIGroup
from minidl.errors import MinidlError, ReportedByAnotherRank


#: Seconds a failing rank waits, after printing its message, before MPI_Abort.
ABORT_GRACE_SECONDS = 0.3

def _exit_code(error: BaseException) -> int:
    return error.exit_code if isinstance(error, MinidlError) else 1


@contextmanager
def agreed(group: LocalGroup | MPIGroup) -> Iterator[None]:
    """Run the block on every rank, then agree: if any rank failed, every rank stops.

    >>> with agreed(LocalGroup()):    # one process: nothing to agree on
    ...     pass
    """
    if group.size == 1:
        yield
        return
    error: BaseException | None = None
    try:
        yield
    except Exception as err:  # noqa: BLE001 - reported below, by one rank
        error = err
    codes = np.zeros(group.size)
    if error is not None:
        codes[group.rank] = _exit_code(error)
    codes = group.allreduce_sum(codes)
    failed = np.flatnonzero(codes)
    if not len(failed):
        return
    first = int(failed[0])
    if group.rank != first or error is None:
        raise ReportedByAnotherRank(int(codes[first]))
    if first != 0 and isinstance(error, MinidlError):
        error.args = (f"rank {first} of {group.size}: {error}",)
    raise error


@contextmanager
def abort_on_failure(group: LocalGroup | MPIGroup, debug: bool = False) -> Iterator[None]:
    """Run the block; over several ranks, any exception in it ends the whole job at once."""
    if group.size == 1:
        yield
        return
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - no rank may be left in a collective
        if isinstance(error, SystemExit) and not error.code:
            raise
        code = _exit_code(error) if not isinstance(error, KeyboardInterrupt) else 130
        if debug or os.environ.get("MINIDL_DEBUG"):
            traceback.print_exc()
        where = f"rank {group.rank} of {group.size}"
        if isinstance(error, MinidlError):
            kind = "error" if code == 2 else "failed"
            message = f"{kind}: {where}: {error}"
        elif isinstance(error, KeyboardInterrupt):
            message = f"interrupted: {where}"
        else:
            message = (f"internal error (a bug in minidl; please report it) on {where}: "
                       f"{type(error).__name__}: {error}. Rerun with --debug or "
                       "MINIDL_DEBUG=1 for the traceback.")
        print(f"{message}; stopping every rank", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # MPI_Abort tears the job down at once; the launcher's proxy may not yet have
        # forwarded this rank's last line (seen: 1 run in 8 lost the message). A moment's
        # grace lets it through; the other ranks wait in a collective meanwhile.
        time.sleep(ABORT_GRACE_SECONDS)
        group.abort(code)
        os._exit(code)  # MPI_Abort may return before the launcher ends this process
