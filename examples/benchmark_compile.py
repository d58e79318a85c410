"""A compiled minidl step (``mdl.compile``) against eager minidl and hand numpy.

The same networks as ``benchmark.py`` (``benchmark_nets.py``): three implementations
of one training step, timed in alternating rounds (the order rotates every round) in
one process. Before timing, the compiled step is checked against eager minidl: the
weights after a few steps must be bit-identical. Reports, per net, the median and IQR
of the per-round ratios to hand numpy, and the other processes' share of the CPUs.

    python examples/benchmark_compile.py            # tiny and mlp-b128
    python examples/benchmark_compile.py --quick    # fewer, shorter rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

import minidl as mdl
from benchmark_machine import OtherLoad
from benchmark_nets import MinidlNet, NumpyNet, Spec, make_specs
from benchmark_timing import iqr, per_step_seconds


def compiled_runner(net: MinidlNet) -> tuple[Callable[[int], None], Any]:
    optimizer, model, loss_fn = net.optimizer, net.model, net.loss_fn

    def train_step(x: Any, y: Any) -> None:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    step = mdl.compile(train_step)
    x, y = net.x, net.y

    def run(steps: int) -> None:
        for _ in range(steps):
            step(x, y)
    return run, step


def check_bit_identical(spec: Spec, seed: int) -> None:
    eager, compiled = MinidlNet(spec, seed), MinidlNet(spec, seed)
    run, step = compiled_runner(compiled)
    eager.run(5)
    run(5)
    if step.eager_reason is not None:
        sys.exit(f"{spec.name}: the compiled step fell back to eager: {step.eager_reason}")
    for (we, be), (wc, bc) in zip(eager.weights(), compiled.weights()):
        if not (np.array_equal(we, wc) and np.array_equal(be, bc)):
            sys.exit(f"{spec.name}: compiled and eager weights differ after 5 steps")


def bench(spec: Spec, rounds: int, round_s: float, seed: int) -> dict[str, Any]:
    eager = MinidlNet(spec, seed)
    numpy_net = NumpyNet(spec, eager.weights())
    compiled_run, _ = compiled_runner(MinidlNet(spec, seed))
    impls = {"numpy": numpy_net.run, "eager": eager.run, "compiled": compiled_run}
    per_step = max(per_step_seconds(run, 0.3) for run in impls.values())
    steps = max(3, round(round_s / per_step))
    names = list(impls)
    times: dict[str, list[float]] = {name: [] for name in names}
    loads: list[float | None] = []
    for r in range(rounds):
        order = names[r % 3:] + names[:r % 3]
        with OtherLoad() as load:
            for name in order:
                start = time.perf_counter()
                impls[name](steps)
                times[name].append((time.perf_counter() - start) / steps)
        loads.append(load.fraction)
    result: dict[str, Any] = {"name": spec.name, "steps_per_round": steps, "rounds": rounds,
                              "loads": loads}
    for name in ("eager", "compiled"):
        ratios = [t / n for t, n in zip(times[name], times["numpy"])]
        result[name] = (statistics.median(ratios), iqr(ratios))
    ratios = [c / e for c, e in zip(times["compiled"], times["eager"])]
    result["compiled/eager"] = (statistics.median(ratios), iqr(ratios))
    result["median_us"] = {name: statistics.median(v) * 1e6 for name, v in times.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="tiny,mlp-b128")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rounds, round_s = (6, 0.1) if args.quick else (21, 0.3)
    specs = [s for s in make_specs(args.seed) if s.name in args.only.split(",")]
    print(f"{'net':<10} {'numpy µs':>9} {'eager µs':>9} {'comp. µs':>9} "
          f"{'eager/np (IQR)':>16} {'compiled/np (IQR)':>18} {'comp./eager':>11} {'load':>5}")
    for spec in specs:
        check_bit_identical(spec, args.seed)
        r = bench(spec, rounds, round_s, args.seed)
        known = [x for x in r["loads"] if x is not None]
        load = f"{statistics.median(known):.0%}" if known else "?"
        us = r["median_us"]
        print(f"{r['name']:<10} {us['numpy']:9.1f} {us['eager']:9.1f} {us['compiled']:9.1f} "
              f"{r['eager'][0]:9.2f} ({r['eager'][1]:.2f}) "
              f"{r['compiled'][0]:11.2f} ({r['compiled'][1]:.2f}) "
              f"{r['compiled/eager'][0]:11.2f} {load:>5}")
    print("ratios: medians of per-round paired ratios; load: other processes' CPU share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
