"""``minidl train --nproc N``: start the same command under the installed wheel's ``mpiexec``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from minidl.distributed.comm import INSTALL_HINT
from minidl.errors import MissingExtraError

#: One BLAS thread per process unless the user says otherwise: R processes with
#: several BLAS threads each would fight over the cores.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def find_mpiexec() -> str:
    """The ``mpiexec`` of the mpich wheel beside this Python, else on PATH.

    Raises ``MissingExtraError`` (exit 2, naming the install command) when mpi4py or
    ``mpiexec`` is missing.
    """
    if importlib.util.find_spec("mpi4py") is None:
        raise MissingExtraError(f"--nproc needs mpi4py, which is not installed: {INSTALL_HINT}")
    candidates = [Path(sys.executable).parent / "mpiexec"]
    try:
        for file in importlib.metadata.distribution("mpich").files or ():
            if file.name == "mpiexec" and file.parent.name == "bin":
                candidates.append(Path(str(file.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    on_path = shutil.which("mpiexec")
    if on_path:
        return on_path
    raise MissingExtraError(f"--nproc needs mpiexec, which was not found beside {sys.executable} "
                            f"nor on PATH: {INSTALL_HINT}")


def mpiexec_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """``mpiexec -n NPROC python -m minidl ARGV``."""
    return [find_mpiexec(), "-n", str(nproc), sys.executable, "-m", "minidl", *argv]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``minidl ARGV`` on ``nproc`` ranks; returns mpiexec's exit code."""
    command = mpiexec_command(nproc, argv)
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    if nproc > (os.cpu_count() or 1):  # more ranks than cores: MPICH waiting should yield the
        env.setdefault("MPIR_CVAR_ENABLE_HEAVY_YIELD", "1")  # core, not spin (1.5x at 3 on 2)
    return subprocess.call(command, env=env)
