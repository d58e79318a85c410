"""How far is a minidl training step from the numpy floor?

Trains the same network two ways in one process, interleaved round by round so
that machine noise hits both alike:

* minidl, written the way a user writes it: ``nn.Sequential`` of ``nn.Linear``
  and activations, the loss module with its default reduction, ``optim.SGD``, and
  ``zero_grad(); loss = loss_fn(model(x), y); loss.backward(); step()``;
* a hand-written numpy forward / backward / SGD update of the *same* network: the
  same dtype, the same row-major (m, features) layout, W of shape (out, in), the
  cost computed every step as minidl does, and Andrew Ng's ``dW = (1/m) dZ^T A``.
  No framework: the floor for any numpy framework.

Networks (float32):

* ``tiny``     2 -> 4 tanh -> 1 (sigmoid in BCE-with-logits), the 400 planar
               examples full batch (``mdl.data.planar()``), lr 1.2;
* ``mlp-b128`` 784 -> 256 relu -> 128 relu -> 10 softmax cross-entropy, batch 128,
               random data from a seeded generator, lr 0.01;
* ``mlp-b1024`` the same net, batch 1024.

A separate section (``benchmark_conv.py``, ``--only conv``) times conv2d forward+backward
against torch's CPU conv (the issue-12 aim: at most 1.5x), when torch is installed
(``pip install -e ".[bench]"``), and measures im2col's memory at batch 256.

Before timing, both implementations start from identical weights: their costs
and gradients on one batch, and their weights after one SGD step, are compared
with ``np.allclose``; the script exits with status 1 if they differ (a
comparison of different computations means nothing). Then each is warmed up and
timed in alternating rounds (the order flips every round); the report gives the
median time per step of each and their ratio minidl / numpy, with two noise
checks beside it: the median of the per-round ratios and the ratio of the
fastest rounds.

    python examples/benchmark.py                  # full run (about half a minute)
    python examples/benchmark.py --quick          # a few seconds
    python examples/benchmark.py --json           # results as JSON on stdout
    python examples/benchmark.py --only tiny --profile   # cProfile the minidl step
    python examples/benchmark.py --only conv      # conv2d against torch only
    python examples/benchmark.py --smoke          # 1 round of 3 steps: runs at all? (CI)
    python examples/benchmark.py --quiet-only     # only rounds the machine was otherwise idle
    python examples/benchmark.py --memory         # also peak memory of a b = 65,536 step
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python examples/benchmark.py

OpenBLAS reads ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) once, at load:
the machine section reports them and the kernel OpenBLAS actually selected.

This file times and reports; the networks and the gradient check are in
``benchmark_nets.py``, the machine description in ``benchmark_machine.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

# Siblings: `python examples/benchmark.py` puts this file's folder first on sys.path.
from benchmark_conv import bench_conv, im2col_memory, print_conv_report
from benchmark_machine import BLAS_ENV_VARS, OtherLoad, blas_probe_gflops, loadavg, machine_info
from benchmark_nets import ATOL, RTOL, MinidlNet, NumpyNet, Spec, check_gradients, make_specs
from benchmark_timing import iqr as _iqr
from benchmark_timing import per_step_seconds

#: The aims from the issue: ratio of medians, minidl / numpy.
AIMS = {"tiny": 2.5, "mlp-b128": 1.15}
#: --quiet-only keeps rounds in which other processes used at most this share of the CPUs.
QUIET_LOAD = 0.10


# =========================================================================================
# Timing
# =========================================================================================

def bench(spec: Spec, rounds: int, round_s: float, warmup_s: float, seed: int) -> dict[str, Any]:
    with OtherLoad() as load:
        result = _bench(spec, rounds, round_s, warmup_s, seed)
    result["other_processes_cpu_share"] = load.fraction
    return result


def _bench(spec: Spec, rounds: int, round_s: float, warmup_s: float, seed: int) -> dict[str, Any]:
    net = MinidlNet(spec, seed)
    ref = NumpyNet(spec, net.weights())
    impls = {"minidl": net.run, "numpy": ref.run}
    # Warm up both (caches, BLAS thread pool, allocator); size the rounds so that one
    # round of minidl takes about round_s (both run the same steps per round).
    per_step = max(per_step_seconds(run, warmup_s) for run in impls.values())
    steps = max(3, round(round_s / per_step))
    times: dict[str, list[float]] = {"minidl": [], "numpy": []}
    round_loads: list[float | None] = []  # other processes' CPU share during each round
    for r in range(rounds):
        order = ("minidl", "numpy") if r % 2 == 0 else ("numpy", "minidl")
        with OtherLoad() as round_load:
            for name in order:
                run = impls[name]
                start = time.perf_counter()
                run(steps)
                times[name].append((time.perf_counter() - start) / steps)
        round_loads.append(round_load.fraction)
    finite = all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in ref.params) and all(
        np.isfinite(p.data).all() for p in net.model.parameters())
    med_m, med_n = statistics.median(times["minidl"]), statistics.median(times["numpy"])
    spread = {name: _iqr(values) / statistics.median(values) for name, values in times.items()}
    paired = statistics.median(m / n for m, n in zip(times["minidl"], times["numpy"]))
    aim = AIMS.get(spec.name)
    ratio = med_m / med_n
    return {"name": spec.name, "sizes": list(spec.sizes), "batch": spec.batch,
            "dtype": str(spec.x.dtype), "rounds": rounds, "steps_per_round": steps,
            "minidl_median_s": med_m, "numpy_median_s": med_n, "ratio": ratio,
            "ratio_paired_median": paired, "ratio_of_minimums": min(times["minidl"]) / min(
                times["numpy"]), "aim": aim,
            "meets_aim": None if aim is None else ratio <= aim,
            "minidl_min_s": min(times["minidl"]), "numpy_min_s": min(times["numpy"]),
            "minidl_iqr_rel": spread["minidl"], "numpy_iqr_rel": spread["numpy"],
            "minidl_times_s": times["minidl"], "numpy_times_s": times["numpy"],
            "params_finite_after": bool(finite), "round_other_load": round_loads,
            **paired_ratio_stats(times["minidl"], times["numpy"])}


def paired_ratio_stats(minidl: list[float], numpy: list[float]) -> dict[str, Any]:
    """Median and interquartile range of the per-round ratios minidl / numpy."""
    ratios = [m / n for m, n in zip(minidl, numpy)]
    return {"paired_ratios": ratios, "paired_median": statistics.median(ratios),
            "paired_iqr": _iqr(ratios)}


def keep_quiet_rounds(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    """``result`` recomputed from the rounds in which other processes used at most
    ``threshold`` of the CPUs (``--quiet-only``); unchanged if the load is unknown."""
    loads = result["round_other_load"]
    keep = [i for i, load in enumerate(loads) if load is not None and load <= threshold]
    if not keep or None in loads:
        return {**result, "quiet_rounds": None}
    minidl = [result["minidl_times_s"][i] for i in keep]
    numpy = [result["numpy_times_s"][i] for i in keep]
    med_m, med_n = statistics.median(minidl), statistics.median(numpy)
    return {**result, "quiet_rounds": len(keep), "minidl_times_s": minidl,
            "numpy_times_s": numpy, "minidl_median_s": med_m, "numpy_median_s": med_n,
            "ratio": med_m / med_n, "ratio_paired_median": statistics.median(
                m / n for m, n in zip(minidl, numpy)),
            **paired_ratio_stats(minidl, numpy)}


def print_conditions(machine: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Beside each figure: the paired ratios' median and IQR, BLAS, and the other load."""
    rt = machine.get("blas_runtime") or {}
    pools = machine.get("threadpoolctl") or [{}]
    blas = (f"{rt.get('corename') or pools[0].get('internal_api')} kernel, "
            f"{rt.get('num_threads') or pools[0].get('num_threads')} threads")
    coretype = machine["blas_env"].get("OPENBLAS_CORETYPE", "not set")
    print(f"\nconditions of each figure (BLAS {blas}; OPENBLAS_CORETYPE {coretype})")
    print(f"  {'net':<10} {'paired median':>13} {'paired IQR':>10} {'rounds':>6} "
          f"{'other load':>10}")
    for r in results:
        loads = [load for load in r.get("round_other_load", []) if load is not None]
        load = f"{statistics.median(loads):.0%}" if loads else "unknown"
        rounds = r["quiet_rounds"] if r.get("quiet_rounds") else len(r["paired_ratios"])
        print(f"  {r['name']:<10} {r['paired_median']:13.3f} {r['paired_iqr']:10.3f} "
              f"{rounds:>6} {load:>10}")


# =========================================================================================
# Reporting and CLI
# =========================================================================================

def _us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} µs"


def print_report(machine: dict[str, Any], checks: dict[str, Any],
                 results: list[dict[str, Any]]) -> None:
    print("machine")
    for key in ("platform", "cpu", "cpu_count", "cpus_usable", "python", "numpy", "minidl",
                "minidl_git", "loadavg_at_start", "loadavg_at_end",
                "blas_probe_gflops_at_start", "blas_probe_gflops_at_end"):
        print(f"  {key.replace('_', ' '):<26} {machine.get(key)}")
    env = machine["blas_env"]
    print(f"  {'blas env':<26} " + (", ".join(f"{k}={v}" for k, v in env.items())
                                     if env else "none of " + ", ".join(BLAS_ENV_VARS[:2])
                                     + " etc. set"))
    build = machine.get("blas_build")
    if isinstance(build, dict):
        print(f"  {'blas build':<26} {build.get('name')} {build.get('version')}: "
              f"{build.get('openblas configuration')}")
    rt = machine.get("blas_runtime") or {}
    if rt:
        print(f"  {'blas runtime':<26} kernel {rt['corename']}, {rt['num_threads']} threads")
    for pool in machine.get("threadpoolctl", []):
        print(f"  {'threadpool':<26} {pool.get('internal_api')} {pool.get('version')} "
              f"{pool.get('architecture')} threads={pool.get('num_threads')}")
    print("\ngradient check (one step from identical weights, np.allclose "
          f"rtol={RTOL:g} atol={ATOL:g})")
    for name, check in checks.items():
        verdict = "ok" if check["ok"] else "MISMATCH: " + "; ".join(check["problems"])
        print(f"  {name:<10} {verdict}  (cost {check['cost']:.6f}, {check['dtype']}, "
              f"max rel grad diff {check['max_rel_grad_diff']:.1e})")
    if not results:
        if checks:
            print("\nno timing: the gradient check failed")
        return
    print("\nmedian time per training step (zero_grad + forward + cost + backward + SGD)")
    print(f"  {'net':<10} {'batch':>5} {'rounds x steps':>15} {'minidl':>12} {'numpy':>12} "
          f"{'ratio':>7} {'paired':>7} {'of min':>7} {'IQR m/n':>9}  aim")
    for r in results:
        aim = "" if r["aim"] is None else (f"<= {r['aim']:g} "
                                           + ("met" if r["meets_aim"] else "NOT met"))
        print(f"  {r['name']:<10} {r['batch']:>5} {r['rounds']:>6} x {r['steps_per_round']:<6} "
              f"{_us(r['minidl_median_s'])} {_us(r['numpy_median_s'])} {r['ratio']:7.2f} "
              f"{r['ratio_paired_median']:7.2f} {r['ratio_of_minimums']:7.2f} "
              f"{r['minidl_iqr_rel']:4.0%}/{r['numpy_iqr_rel']:<4.0%} "
              f"{aim}")
        other = r.get("other_processes_cpu_share")
        if other is not None and other > 0.1:
            print(f"  warning: other processes used {other:.0%} of the CPUs during {r['name']}; "
                  "its times (and, with BLAS threads, its ratio) are skewed: rerun when idle")
        if not r["params_finite_after"]:
            print(f"  warning: {r['name']} produced non-finite weights while timing")
    print("\nratio = median(minidl) / median(numpy); paired = median over rounds of the "
          "per-round ratio;\nof min = fastest minidl round / fastest numpy round; IQR m/n = "
          "interquartile range of the\nround times relative to their median (machine noise: "
          "above ~10%, rerun on a quieter machine).")


def profile_minidl(spec: Spec, seed: int, steps: int, top: int, out: TextIO) -> None:
    """cProfile the minidl step (after warm-up) and print the top functions by own time."""
    import cProfile
    import pstats

    net = MinidlNet(spec, seed)
    net.run(max(10, steps // 10))
    profiler = cProfile.Profile()
    profiler.enable()
    net.run(steps)
    profiler.disable()
    print(f"\ncProfile of {steps} minidl steps of {spec.name} (µs per step; the profiler "
          "itself inflates small Python calls about 2x)", file=out)
    stats = pstats.Stats(profiler)
    rows = []
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, line, func), (_, nc, tt, ct, _) in entries:
        short = filename.split("/minidl/")[-1] if "/minidl/" in filename else Path(filename).name
        rows.append((tt, ct, nc, f"{short}:{line}({func})"))
    total = sum(r[0] for r in rows)
    print(f"  total {total / steps * 1e6:.1f} µs/step under the profiler", file=out)
    print(f"  {'own µs/step':>11} {'cum µs/step':>11} {'calls/step':>10}  function", file=out)
    for tt, ct, nc, where in sorted(rows, reverse=True)[:top]:
        print(f"  {tt / steps * 1e6:11.2f} {ct / steps * 1e6:11.2f} {nc / steps:10.1f}  {where}",
              file=out)


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--round-seconds", type=float, help="target duration of one round of "
                        "minidl (default 0.2 s, 0.05 s with --quick, 0 with --smoke: "
                        "3 steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the minidl step of each selected benchmark")
    parser.add_argument("--quiet-only", action="store_true",
                        help="keep only rounds in which other processes used <= 10%% of the "
                        "CPUs (as measured from /proc/stat)")
    parser.add_argument("--memory", type=int, nargs="?", const=65536, metavar="BATCH",
                        help="also measure one step's peak memory (tracemalloc) at this "
                        "batch size (default 65536) on the nn and functional paths")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.smoke else 5 if args.quick else 15)
    round_s = args.round_seconds or (0.0 if args.smoke else 0.05 if args.quick else 0.2)
    warmup_s = 0.0 if args.smoke else 0.1 if args.quick else 0.4

    specs = [s for s in make_specs(args.seed) if not args.only or s.name in args.only]
    checks = {spec.name: check_gradients(spec, args.seed) for spec in specs}
    failed = [name for name, check in checks.items() if not check["ok"]]
    machine = machine_info()
    results = [] if failed else [bench(spec, rounds, round_s, warmup_s, args.seed)
                                 for spec in specs]
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
        print(json.dumps({"machine": machine, "gradient_check": checks, "results": results,
                          "conv": conv and {**conv, "memory": conv_memory},
                          "memory": memory, "command": [sys.executable, *sys.argv]},
                         indent=2, default=str))
    else:
        print_report(machine, checks, results)
        if results:
            print_conditions(machine, results)
        if memory is not None:
            print_memory(memory)
        if conv is not None and conv_memory is not None:
            print_conv_report(conv, conv_memory)
    if conv is not None and not conv.get("check", {"ok": True})["ok"]:
        print("conv2d: minidl and torch compute different things, so no timing was done",
              file=sys.stderr)
        return 1
    if failed:
        print(f"gradient check failed for {', '.join(failed)}: minidl and the numpy baseline "
              "compute different things, so no timing was done", file=sys.stderr)
        return 1
    if args.profile:
        for spec, result in zip(specs, results):
            profile_minidl(spec, args.seed, max(20, result["steps_per_round"]), top=25,
                           out=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
