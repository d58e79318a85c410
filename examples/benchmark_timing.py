"""Timing helpers shared by the benchmarks: a noise-resistant per-step estimate (to size
rounds), interleaved rounds of several implementations, and the interquartile range.

Used by ``benchmark.py`` and ``benchmark_conv.py`` beside this file.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

from benchmark_machine import OtherLoad


def per_step_seconds(run: Callable[[int], None], budget_s: float) -> float:
    """A noise-resistant estimate of one step's time: the best of a few short timings.

    Runs ``run`` in doubling batches until a batch takes ``budget_s / 8``, then
    repeats that batch; the minimum per step is kept, so one stall of the machine
    cannot make the rounds too short.
    """
    steps, elapsed = 1, 0.0
    while steps < 1 << 20:
        start = time.perf_counter()
        run(steps)
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s / 8:
            break
        steps *= 2
    best = elapsed / steps
    spent = elapsed
    while spent < budget_s:
        start = time.perf_counter()
        run(steps)
        elapsed = time.perf_counter() - start
        spent += elapsed
        best = min(best, elapsed / steps)
    return best


def alternating_rounds(runs: dict[str, Callable[[int], None]], rounds: int,
                       steps: int) -> dict[str, list[float]]:
    """Seconds per step of each implementation in each round; the order flips every round,
    so that machine noise hits all of them alike and each round gives one paired ratio."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            runs[name](steps)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def rotating_rounds(runs: dict[str, Callable[[int], None]], rounds: int, steps: int,
                    settle_s: float = 0.0) -> tuple[dict[str, list[float]], list[float | None]]:
    """Seconds per step of each implementation in each round, and other processes' share of
    the CPUs during each round. The order rotates every round (a b c, b c a, c a b, ...), so
    each implementation runs in every position equally often and noise hits all alike.

    Before each timed block the process sleeps ``settle_s`` (untimed): with two thread pools
    in one process (numpy's OpenBLAS, torch's OpenMP), the workers of the one that just ran
    keep spinning for a while and would slow whichever implementation runs next.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    loads: list[float | None] = []
    names = list(runs)
    for r in range(rounds):
        first = r % len(names)
        with OtherLoad() as load:
            for name in names[first:] + names[:first]:
                time.sleep(settle_s)
                start = time.perf_counter()
                runs[name](steps)
                times[name].append((time.perf_counter() - start) / steps)
        loads.append(load.fraction)
    return times, loads


def iqr(values: list[float]) -> float:
    """Interquartile range (the full range below 4 values)."""
    if len(values) < 4:
        return max(values) - min(values)
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]
