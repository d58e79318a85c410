"""How far is a minidl training step from the numpy floor, and from torch?

Trains the same network several ways in one process, in rounds whose order rotates every
round, so that machine noise hits all of them alike:

* ``numpy``: a hand-written numpy forward / backward / SGD update of the network: the same
  dtype, the same row-major (m, features) layout, W of shape (out, in), the cost computed
  every step as minidl does, and Andrew Ng's ``dW = (1/m) dZ^T A``. No framework: the
  floor for any numpy framework, and what every ratio is relative to;
* ``eager``: minidl as a user writes it: ``nn.Sequential`` of ``nn.Linear`` and
  activations, the loss module with its default reduction, ``optim.SGD``, and
  ``zero_grad(); loss = loss_fn(model(x), y); loss.backward(); step()``;
* ``functional``: the same with ``mdl.nn.functional`` (``linear``, ``tanh``/``relu``, the
  functional loss) on bare ``nn.Parameter``s, no ``nn.Module``;
* ``compiled``: the ``eager`` step under ``mdl.compile`` (traced once, then replayed);
* ``torch``: torch.nn eager on the CPU, from the same weights, float32,
  ``torch.optim.SGD``, with as many threads as numpy's BLAS (when torch is installed:
  ``pip install -e ".[bench]"``, torch 2.13.0 CPU; otherwise reported as not installed).

With torch timed too, each timed block starts after an untimed 50 ms pause: two thread pools
(numpy's OpenBLAS, torch's OpenMP) in one process, the one that just ran keeps spinning for a
while and would slow the next (``SETTLE_S``).

Networks (float32):

* ``tiny``     2 -> 4 tanh -> 1 (sigmoid in BCE-with-logits), the 400 planar
               examples full batch (``mdl.data.planar()``), lr 1.2;
* ``mlp-b128`` 784 -> 256 relu -> 128 relu -> 10 softmax cross-entropy, batch 128,
               random data from a seeded generator, lr 0.01;
* ``mlp-b1024`` the same net, batch 1024.

Before timing, every implementation is checked (``benchmark_checks.py``): the eager ones'
costs, gradients and weights after one step against numpy's (``np.allclose``), and the
compiled step's weights after a few steps bit-identical to eager's (and no fall-back to
eager). The script exits with status 1 if any differs. The report gives, for each
implementation, its median time per step and the median and IQR of the per-round ratios
to numpy, the aims of issue 14 per column, and the machine's conditions.

A separate section (``benchmark_conv.py``, ``--only conv``) times conv2d forward+backward
against torch's CPU conv (the issue-12 aim: at most 1.5x), when torch is installed, and
measures im2col's memory at batch 256.

    python examples/benchmark.py                  # full run (about a minute and a half)
    python examples/benchmark.py --quick          # about 15 seconds
    python examples/benchmark.py --json           # results as JSON on stdout
    python examples/benchmark.py --only tiny --profile   # cProfile the minidl nn step
    python examples/benchmark.py --only conv      # conv2d against torch only
    python examples/benchmark.py --smoke          # 1 round of 3 steps: runs at all? (CI)
    python examples/benchmark.py --quiet-only     # only rounds the machine was otherwise idle
    python examples/benchmark.py --memory         # also peak memory of a b = 65,536 step
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python examples/benchmark.py

OpenBLAS reads ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) once, at load:
the machine section reports them and the kernel OpenBLAS actually selected.

This file times; the networks are in ``benchmark_nets.py`` and ``benchmark_torch.py``, the
checks in ``benchmark_checks.py``, the report in ``benchmark_report.py``, the machine
description in ``benchmark_machine.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

# Siblings: `python examples/benchmark.py` puts this file's folder first on sys.path.
from benchmark_checks import check_all
from benchmark_conv import bench_conv, im2col_memory, print_conv_report
from benchmark_machine import OtherLoad, blas_probe_gflops, loadavg, machine_info
from benchmark_nets import CompiledNet, FunctionalNet, MinidlNet, Net, NumpyNet, Spec, make_specs
from benchmark_report import print_aims, print_report, profile_minidl
from benchmark_timing import iqr as _iqr
from benchmark_timing import per_step_seconds, rotating_rounds
from benchmark_torch import TorchNet, import_torch, match_blas_threads

#: The aims of issue 14: the median of the per-round ratios to hand numpy, per column
#: (the eager aims hold for both eager paths, nn and functional).
EAGER_AIMS = {"tiny": 2.5, "mlp-b128": 1.10, "mlp-b1024": 1.03}
AIMS = {"eager": EAGER_AIMS, "functional": EAGER_AIMS,
        "compiled": {"tiny": 1.3, "mlp-b128": 1.03, "mlp-b1024": 1.01}}
#: Untimed pause before each timed block when torch is timed too: its idle OpenMP workers,
#: and OpenBLAS's, spin for tens of ms and would slow the next implementation (measured on
#: mlp-b1024: numpy 7.2 ms/step right after torch without a pause, 6.3-6.5 ms with 20-50 ms).
SETTLE_S = 0.05
#: --quiet-only keeps rounds in which other processes used at most this share of the CPUs.
QUIET_LOAD = 0.10


# =========================================================================================
# Timing
# =========================================================================================

def build_impls(spec: Spec, seed: int, torch: Any) -> dict[str, Net]:
    """Every implementation, from identical weights; numpy first (the reference)."""
    eager = MinidlNet(spec, seed)
    weights = eager.weights()
    impls: dict[str, Net] = {"numpy": NumpyNet(spec, weights), "eager": eager,
                             "functional": FunctionalNet(spec, weights),
                             "compiled": CompiledNet(spec, seed)}
    if torch is not None:
        impls["torch"] = TorchNet(spec, weights, torch)
    return impls


def bench(spec: Spec, rounds: int, round_s: float, warmup_s: float, seed: int,
          torch: Any = None, settle_s: float = SETTLE_S) -> dict[str, Any]:
    impls = build_impls(spec, seed, torch)
    runs = {name: impl.run for name, impl in impls.items()}
    settle_s = settle_s if torch is not None else 0.0  # one thread pool: nothing to settle
    with OtherLoad() as load:
        # Warm up all (caches, BLAS thread pools, allocator, the compiled trace); size the
        # rounds so that the slowest implementation's part of a round takes about round_s.
        per_step = 0.0
        for run in runs.values():
            time.sleep(settle_s)
            per_step = max(per_step, per_step_seconds(run, warmup_s))
        steps = max(3, round(round_s / per_step))
        times, round_loads = rotating_rounds(runs, rounds, steps, settle_s)
    finite = all(np.isfinite(w).all() and np.isfinite(b).all()
                 for impl in impls.values() for w, b in impl.weights())
    return {"name": spec.name, "sizes": list(spec.sizes), "batch": spec.batch,
            "dtype": str(spec.x.dtype), "rounds": rounds, "steps_per_round": steps,
            "settle_s": settle_s, "times_s": times, "round_other_load": round_loads,
            "other_processes_cpu_share": load.fraction, "params_finite_after": bool(finite),
            "quiet_rounds": None, "impls": summarize(spec.name, times)}


def paired_ratio_stats(times: list[float], numpy: list[float]) -> dict[str, Any]:
    """Median and interquartile range of the per-round ratios ``times / numpy``."""
    ratios = [t / n for t, n in zip(times, numpy)]
    return {"paired_ratios": ratios, "paired_median": statistics.median(ratios),
            "paired_iqr": _iqr(ratios)}


def summarize(name: str, times: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Per implementation: median, fastest and spread of its round times; for all but numpy,
    its paired ratios to numpy and the aim of this network's column, met or not."""
    numpy = times["numpy"]
    summary = {}
    for impl, values in times.items():
        median = statistics.median(values)
        row: dict[str, Any] = {"median_s": median, "min_s": min(values),
                               "iqr_rel": _iqr(values) / median}
        if impl != "numpy":
            aim = AIMS.get(impl, {}).get(name)
            row.update(paired_ratio_stats(values, numpy))
            row.update(ratio_of_medians=median / statistics.median(numpy),
                       ratio_of_minimums=min(values) / min(numpy), aim=aim,
                       meets_aim=None if aim is None else row["paired_median"] <= aim)
        summary[impl] = row
    return summary


def keep_quiet_rounds(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    """``result`` recomputed, for every implementation, from the rounds in which other
    processes used at most ``threshold`` of the CPUs (``--quiet-only``); unchanged (with
    ``quiet_rounds`` None) if the load is unknown or no round was quiet."""
    loads = result["round_other_load"]
    keep = [i for i, load in enumerate(loads) if load is not None and load <= threshold]
    if not keep or None in loads:
        return {**result, "quiet_rounds": None}
    times = {impl: [values[i] for i in keep] for impl, values in result["times_s"].items()}
    return {**result, "quiet_rounds": len(keep), "kept_rounds": keep, "times_s": times,
            "impls": summarize(result["name"], times)}


# =========================================================================================
# CLI
# =========================================================================================

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="a fast, rougher run")
    speed.add_argument("--smoke", action="store_true", help="1 round of 3 steps, no warm-up: "
                       "checks that the script runs (CI); its times mean nothing")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--only", action="append",
                        choices=["tiny", "mlp-b128", "mlp-b1024", "conv"],
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--rounds", type=int, help="timing rounds per implementation "
                        "(default 15, 5 with --quick, 1 with --smoke)")
    parser.add_argument("--round-seconds", type=float, help="target duration of the slowest "
                        "implementation's part of a round (default 0.2 s, 0.05 s with "
                        "--quick, 0 with --smoke: 3 steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the minidl nn step of each selected benchmark")
    parser.add_argument("--quiet-only", action="store_true",
                        help="keep only rounds in which other processes used <= 10%% of the "
                        "CPUs (as measured from /proc/stat), for every implementation")
    parser.add_argument("--memory", type=int, nargs="?", const=65536, metavar="BATCH",
                        help="also measure one step's peak memory (tracemalloc) at this "
                        "batch size (default 65536) on the nn and functional paths")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds or (1 if args.smoke else 5 if args.quick else 15)
    round_s = args.round_seconds or (0.0 if args.smoke else 0.05 if args.quick else 0.2)
    warmup_s = 0.0 if args.smoke else 0.1 if args.quick else 0.4

    machine = machine_info()
    torch = import_torch()
    torch_info = ({"torch": None} if torch is None
                  else {"torch": torch.__version__, **match_blas_threads(torch, machine)})
    specs = [s for s in make_specs(args.seed) if not args.only or s.name in args.only]
    checks = {spec.name: check_all(spec, args.seed, torch) for spec in specs}
    failed = [name for name, check in checks.items() if not check["ok"]]
    settle_s = 0.0 if args.smoke else SETTLE_S
    results = [] if failed else [bench(spec, rounds, round_s, warmup_s, args.seed, torch,
                                       settle_s) for spec in specs]
    conv = conv_memory = None
    if not args.only or "conv" in args.only:
        with OtherLoad() as load:
            conv = bench_conv(rounds, round_s, warmup_s, args.seed)
        conv["other_processes_cpu_share"] = load.fraction
        conv_memory = im2col_memory()
    if args.quiet_only:
        results = [keep_quiet_rounds(r, QUIET_LOAD) for r in results]
    machine["loadavg_at_end"] = loadavg()
    machine["blas_probe_gflops_at_end"] = blas_probe_gflops()
    memory = None
    if args.memory:
        from benchmark_memory import measure, print_memory
        memory = measure(args.memory, args.seed)
    if args.json:
        print(json.dumps({"machine": machine, "torch": torch_info, "checks": checks,
                          "results": results, "aims": AIMS,
                          "conv": conv and {**conv, "memory": conv_memory},
                          "memory": memory, "command": [sys.executable, *sys.argv]},
                         indent=2, default=str))
    else:
        print_report(machine, torch_info, checks, results)
        if results:
            print_aims(AIMS, results)
        if memory is not None:
            print_memory(memory)
        if conv is not None and conv_memory is not None:
            print_conv_report(conv, conv_memory)
    if conv is not None and not conv.get("check", {"ok": True})["ok"]:
        print("conv2d: minidl and torch compute different things, so no timing was done",
              file=sys.stderr)
        return 1
    if failed:
        print(f"check failed for {', '.join(failed)}: the implementations compute different "
              "things, so no timing was done", file=sys.stderr)
        return 1
    if args.profile:
        for spec, result in zip(specs, results):
            profile_minidl(spec, args.seed, max(20, result["steps_per_round"]), top=25,
                           out=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
