"""The text report of ``benchmark.py``: the machine and its conditions, the checks, per network
each implementation's time and paired ratios to hand numpy, the aims table, and a cProfile
of the minidl step (``--profile``).

Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, TextIO

from benchmark_checks import ATOL, RTOL
from benchmark_machine import BLAS_ENV_VARS
from benchmark_nets import MinidlNet, Spec

LABELS = {"numpy": "hand numpy", "eager": "minidl eager nn",
          "functional": "minidl eager functional", "compiled": "minidl compiled",
          "torch": "torch eager"}
#: Other processes' CPU share above which a network's figures get a warning.
BUSY = 0.10


def print_machine(machine: dict[str, Any], torch_info: dict[str, Any]) -> None:
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
    print(f"  {'torch':<26} {torch_description(torch_info)}")


def torch_description(torch_info: dict[str, Any]) -> str:
    if torch_info["torch"] is None:
        return "not installed (pip install -e \".[bench]\" for the torch column)"
    return (f"{torch_info['torch']}, {torch_info['torch_threads']} threads "
            f"({torch_info['how']}; default {torch_info['torch_default_threads']})")


def print_checks(checks: dict[str, Any]) -> None:
    print("\nchecks before timing: the eager paths against hand numpy from identical weights "
          f"(cost,\ngradients, weights after one step; np.allclose rtol={RTOL:g} atol={ATOL:g}); "
          "compiled against eager nn\n(weights bit-identical)")
    for name, check in checks.items():
        print(f"  {name:<10} {'ok' if check['ok'] else 'MISMATCH'}  (cost {check['cost']:.6f}, "
              f"{check['dtype']})")
        for impl, c in check["impls"].items():
            if "skipped" in c:
                verdict = f"skipped: {c['skipped']}"
            elif not c["ok"]:
                verdict = "MISMATCH: " + "; ".join(c["problems"])
            elif impl == "compiled":
                verdict = f"ok, bit-identical to eager after {c['steps']} steps"
            else:
                verdict = f"ok, max rel grad diff {c['max_rel_grad_diff']:.1e}"
            print(f"    {LABELS[impl]:<24} {verdict}")


def conditions(machine: dict[str, Any]) -> str:
    """BLAS kernel and threads, OPENBLAS_CORETYPE: one line beside the figures."""
    rt = machine.get("blas_runtime") or {}
    pools = machine.get("threadpoolctl") or [{}]
    blas = (f"{rt.get('corename') or pools[0].get('internal_api')} kernel, "
            f"{rt.get('num_threads') or pools[0].get('num_threads')} threads")
    coretype = machine["blas_env"].get("OPENBLAS_CORETYPE", "not set")
    return f"BLAS {blas}; OPENBLAS_CORETYPE {coretype}"


def print_network(r: dict[str, Any], torch_info: dict[str, Any]) -> None:
    kept = r.get("kept_rounds") or range(len(r["round_other_load"]))
    loads = [r["round_other_load"][i] for i in kept if r["round_other_load"][i] is not None]
    median_load = statistics.median(loads) if loads else None
    load = "unknown" if median_load is None else f"{median_load:.0%}"
    quiet = f" (kept: the {r['quiet_rounds']} quiet ones)" if r["quiet_rounds"] else ""
    print(f"\n{r['name']}: {' -> '.join(map(str, r['sizes']))}, batch {r['batch']}, "
          f"{r['dtype']}; {r['rounds']} rounds x {r['steps_per_round']} steps{quiet};\n"
          f"  other processes' CPU share {load} (median over the rounds)")
    print(f"  {'implementation':<24} {'median':>11} {'IQR':>4}   {'paired ratio (IQR)':>18} "
          f"{'of medians':>10} {'of min':>6}  aim")
    for impl, label in LABELS.items():
        s = r["impls"].get(impl)
        if s is None:
            why = "not installed" if torch_info["torch"] is None else "not timed"
            print(f"  {label:<24} {why}")
            continue
        line = f"  {label:<24} {s['median_s'] * 1e6:8.1f} µs {s['iqr_rel']:4.0%}"
        if impl != "numpy":
            aim = "" if s["aim"] is None else (f"<= {s['aim']:g} "
                                               + ("met" if s["meets_aim"] else "NOT met"))
            line += (f"   {s['paired_median']:10.3f} ({s['paired_iqr']:.3f}) "
                     f"{s['ratio_of_medians']:10.3f} {s['ratio_of_minimums']:6.3f}  {aim}")
        print(line.rstrip())
    if median_load is not None and median_load > BUSY:
        print(f"  warning: other processes used {median_load:.0%} of the CPUs during these "
              "rounds: their times (and, with\n  BLAS threads, their ratios) are skewed; rerun "
              "when the machine is idle, or with --quiet-only")
    if not r["params_finite_after"]:
        print(f"  warning: {r['name']} produced non-finite weights while timing")


def print_report(machine: dict[str, Any], torch_info: dict[str, Any], checks: dict[str, Any],
                 results: list[dict[str, Any]]) -> None:
    print_machine(machine, torch_info)
    print_checks(checks)
    if not results:
        if checks:
            print("\nno timing: a check failed")
        return
    print("\nmedian time per training step (zero_grad + forward + cost + backward + SGD)")
    print(f"conditions: {conditions(machine)}\n            torch {torch_description(torch_info)}")
    settle = results[0].get("settle_s")
    if settle:
        print(f"            an untimed {settle * 1e3:g} ms pause before each timed block, for "
              "the other thread pool\n            (OpenBLAS's or torch's) to stop spinning")
    for r in results:
        print_network(r, torch_info)
    print("\nIQR = interquartile range of the round times relative to their median (machine "
          "noise:\nabove ~10%, rerun on a quieter machine); paired ratio = median (and IQR) "
          "over rounds of\neach round's time / numpy's; of medians = median / numpy's median; "
          "of min = fastest\nround / numpy's fastest; aims are on the paired ratio.")


def print_aims(aims: dict[str, dict[str, float]], results: list[dict[str, Any]]) -> None:
    """The issue's aims per column (paired median ratio to hand numpy), met or missed."""
    print("\naims (paired median ratio to hand numpy)")
    print(f"  {'net':<10}" + "".join(f" {LABELS[impl]:>26}" for impl in aims))
    for r in results:
        cells = []
        for impl in aims:
            s = r["impls"].get(impl)
            if s is None or s["aim"] is None:
                cells.append(f"{'-':>26}")
                continue
            verdict = "meets" if s["meets_aim"] else "MISSES"
            cells.append(f"{s['paired_median']:>8.3f} <= {s['aim']:<4g} {verdict:>6}".rjust(26))
        print(f"  {r['name']:<10}" + "".join(f" {cell}" for cell in cells))


def profile_minidl(spec: Spec, seed: int, steps: int, top: int, out: TextIO) -> None:
    """cProfile the minidl nn step (after warm-up) and print the top functions by own time."""
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
