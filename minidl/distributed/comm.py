"""The process group: this process alone, or every rank of an ``mpiexec`` launch.

mpi4py is imported only when the process was started by an MPI launcher (its
environment says so), so ``import minidl`` and single-process training never need it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minidl.errors import MissingExtraError

#: Environment variables an MPI launcher sets in each process it starts (MPICH's
#: Hydra, Open MPI, PMIx-based launchers such as srun).
LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
INSTALL_HINT = "pip install 'minidl[mpi]' (mpi4py and the mpich wheel, which brings mpiexec)"


def launched_by_mpi() -> bool:
    """True when an MPI launcher (``mpiexec``) started this process."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


class LocalGroup:
    """One process: rank 0 of 1. Every collective returns its input.

    >>> group = LocalGroup()
    >>> group.rank, group.size, group.allreduce_sum(np.array([1.0, 2.0]))
    (0, 1, array([1., 2.]))
    """

    rank, size = 0, 1

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        return buffer

    def abort(self, exit_code: int) -> None:
        raise SystemExit(exit_code)


class MPIGroup:
    """Every rank of ``MPI.COMM_WORLD``, through mpi4py's buffer (uppercase) methods."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
        """The element-wise sum over ranks, in place; the same array (bits) on every rank."""
        from mpi4py import MPI

        buffer = np.ascontiguousarray(buffer)
        self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        buffer = np.ascontiguousarray(buffer)
        self.comm.Bcast(buffer, root=root)
        return buffer

    def abort(self, exit_code: int) -> None:
        """End every rank of the job now (no rank is left waiting in a collective)."""
        self.comm.Abort(exit_code)


_group: LocalGroup | MPIGroup | None = None


def world() -> LocalGroup | MPIGroup:
    """The process group of this run, made on first use.

    >>> world().size   # not started by mpiexec
    1
    """
    global _group
    if _group is None:
        _group = _mpi_world() if launched_by_mpi() else LocalGroup()
    return _group


def _mpi_world() -> MPIGroup:
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise MissingExtraError(f"this process was started by an MPI launcher, but mpi4py "
                                f"cannot be imported ({err}); {INSTALL_HINT}") from None
    return MPIGroup(MPI.COMM_WORLD)
