"""Instructions per minidl training step, counted by valgrind's callgrind: a repeatable
measure of eager overhead on a noisy, shared machine (wall-clock times there vary by 2x).

Runs the benchmark's network for N and for M steps under ``valgrind --tool=callgrind``
and reports (I(M) - I(N)) / (M - N): the instructions of one step, with start-up,
imports and warm-up cancelled out. Deterministic to a few hundred instructions.

    python examples/benchmark_callgrind.py                 # tiny net, 20 vs 220 steps
    python examples/benchmark_callgrind.py --net mlp-b128 --steps 5 25
    python examples/benchmark_callgrind.py --impl numpy --impl eager --impl compiled

With several ``--impl``, each is counted and given as a ratio to the first.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


IMPLS = ("numpy", "eager", "functional", "compiled")


def run_steps(impl: str, net_name: str, steps: int) -> None:
    """The measured program: build the net, warm up, then run ``steps`` steps."""
    sys.path.insert(0, str(HERE))
    from benchmark_nets import CompiledNet, FunctionalNet, MinidlNet, NumpyNet, make_specs

    spec = next(s for s in make_specs(0) if s.name == net_name)
    net: Any = {"eager": MinidlNet, "functional": FunctionalNet,
                "compiled": CompiledNet}.get(impl, MinidlNet)(spec, 0)
    if impl == "numpy":
        net = NumpyNet(spec, net.weights())
    net.run(3)  # first calls build caches (strategy binding, plugin manager, the trace)
    net.run(steps)


def instructions(impl: str, net_name: str, steps: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--child", impl, net_name, str(steps)]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        text = out.read_text()
    match = re.search(r"^summary:\s*(\d+)", text, re.M) or re.search(r"^totals:\s*(\d+)",
                                                                      text, re.M)
    if match is None:
        raise RuntimeError("no instruction total in callgrind's output")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        run_steps(argv[1], argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="tiny", choices=["tiny", "mlp-b128", "mlp-b1024"])
    parser.add_argument("--steps", type=int, nargs=2, default=(20, 220), metavar=("N", "M"))
    parser.add_argument("--impl", action="append", choices=IMPLS,
                        help="what to count (repeatable; default: eager)")
    args = parser.parse_args(argv)
    low, high = args.steps
    impls = args.impl or ["eager"]
    per_step: dict[str, float] = {}
    for impl in impls:
        per_step[impl] = (instructions(impl, args.net, high)
                          - instructions(impl, args.net, low)) / (high - low)
        print(f"{args.net} {impl}: {per_step[impl]:,.0f} instructions per step, "
              f"{per_step[impl] / per_step[impls[0]]:.3f}x {impls[0]} "
              f"(callgrind, {low} vs {high} steps, OPENBLAS_NUM_THREADS=1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
