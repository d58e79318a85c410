"""What the benchmark ran on: platform, CPUs, numpy and its BLAS (as built, as loaded, and a
speed probe), load averages, the BLAS environment variables, and how busy other processes
kept the CPUs while a block ran (all best effort; Linux gives the most).

Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

import minidl as mdl

BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                 "OPENBLAS_VERBOSE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "GOTO_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES")


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used so far (Linux /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own() -> float:
    t = os.times()
    return t.user + t.system


class OtherLoad:
    """How much of the machine other processes used while a block ran (0 = none, 1 = all
    CPUs): what this process used is subtracted from what all of them used."""

    fraction: float | None

    def __enter__(self) -> OtherLoad:
        self.wall, self.busy, self.own = time.perf_counter(), _machine_busy_seconds(), _own()
        return self

    def __exit__(self, *exc: object) -> None:
        busy = _machine_busy_seconds()
        wall = time.perf_counter() - self.wall
        if busy is None or self.busy is None or wall <= 0:
            self.fraction = None
            return
        others = (busy - self.busy) - (_own() - self.own)
        self.fraction = max(0.0, others / (wall * (os.cpu_count() or 1)))


def _openblas_runtime() -> dict[str, Any]:
    """The kernel and thread count the loaded OpenBLAS actually uses (Linux, best effort)."""
    try:
        paths = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                 if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:
        return {}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", "_64", ""):
                try:
                    corename = getattr(lib, f"{prefix}get_corename{suffix}")
                    threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                except AttributeError:
                    continue
                corename.restype, threads.restype = ctypes.c_char_p, ctypes.c_int
                return {"library": path, "corename": corename().decode(),
                        "num_threads": threads()}
    return {}


def loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine skews the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def blas_probe_gflops() -> float:
    """GFLOP/s of the float32 (128, 784) @ (784, 256) product that dominates mlp-b128,
    the median of 30 calls after 10 warm-up calls.

    On a small VM, multi-threaded OpenBLAS can be bimodal from one process to the next
    (here: the numpy mlp-b128 step takes either ~1.0 ms or ~1.6-2.0 ms); the slow mode
    inflates numpy and minidl alike and so shrinks the mlp ratios. Compare this probe
    between runs before comparing their mlp ratios.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 784)).astype(np.float32)
    b = rng.standard_normal((256, 784)).astype(np.float32)
    times = []
    for i in range(40):
        start = time.perf_counter()
        a @ b.T
        if i >= 10:
            times.append(time.perf_counter() - start)
    return round(2 * 128 * 784 * 256 / statistics.median(times) / 1e9, 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state() -> str | None:
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "minidl",
                                "plugins"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' + uncommitted changes in minidl/ or plugins/' if dirty.strip() else ''}" \
        if head else None


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "minidl": mdl.__version__,
        "minidl_git": _git_state(),
        "blas_env": {k: os.environ[k] for k in BLAS_ENV_VARS if k in os.environ},
        "loadavg_at_start": loadavg(),
        "blas_probe_gflops_at_start": blas_probe_gflops(),
    }
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["blas_build"] = {k: blas.get(k) for k in ("name", "version",
                                                       "openblas configuration")}
        simd = config.get("SIMD Extensions", {})
        info["numpy_simd_found"] = simd.get("found")
    except Exception as err:  # older numpy: no mode="dicts"
        info["blas_build"] = f"unavailable ({type(err).__name__})"
    info["blas_runtime"] = _openblas_runtime()
    try:
        from threadpoolctl import threadpool_info  # optional
        info["threadpoolctl"] = threadpool_info()
    except ImportError:
        pass
    return info
