"""Launch ``mpiexec -n R`` from a test: the wheel's mpiexec, a timeout, one BLAS thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from minidl.distributed.launch import find_mpiexec

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "tests" / "distributed" / "programs"
#: Ranks outnumber the 2 cores here: MPICH then yields the core while it waits
#: instead of spinning (3 ranks train about 1.5x faster).
MPI_ENV = {"MPIR_CVAR_ENABLE_HEAVY_YIELD": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MINIDL_DISABLE_PLUGIN_AUTOLOAD": "1"}


def mpi_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **MPI_ENV, **extra}


def run_mpi(ranks: int, argv: Sequence[str], timeout: float = 30, cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """``mpiexec -n RANKS ARGV`` (``python`` in ARGV is this interpreter)."""
    argv = [sys.executable if arg == "python" else str(arg) for arg in argv]
    return subprocess.run([find_mpiexec(), "-n", str(ranks), *argv], capture_output=True,
                          text=True, timeout=timeout, env=mpi_env(**env), cwd=cwd)


def minidl_command(*argv: str) -> list[str]:
    return ["python", "-m", "minidl", *argv]
