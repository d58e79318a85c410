"""examples/benchmark.py's honesty helpers: paired-ratio statistics and --quiet-only."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def benchmark_script():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import benchmark as module
        yield module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_paired_ratio_stats_are_median_and_iqr_of_per_round_ratios(benchmark_script) -> None:
    minidl, numpy = [2.0, 3.0, 4.0, 10.0, 6.0], [1.0, 1.0, 2.0, 2.0, 2.0]
    stats = benchmark_script.paired_ratio_stats(minidl, numpy)
    ratios = [2.0, 3.0, 2.0, 5.0, 3.0]
    assert stats["paired_ratios"] == ratios and stats["paired_median"] == 3.0
    q = statistics.quantiles(ratios, n=4)
    assert stats["paired_iqr"] == q[2] - q[0]


def test_quiet_only_keeps_the_rounds_measured_while_the_machine_was_idle(benchmark_script) -> None:
    result = {"minidl_times_s": [2.0, 9.0, 3.0], "numpy_times_s": [1.0, 1.0, 1.0],
              "round_other_load": [0.05, 0.6, 0.0]}
    quiet = benchmark_script.keep_quiet_rounds(result, 0.1)
    assert quiet["quiet_rounds"] == 2 and quiet["paired_ratios"] == [2.0, 3.0]
    assert quiet["ratio"] == 2.5 and quiet["minidl_median_s"] == 2.5
    unknown = benchmark_script.keep_quiet_rounds({**result, "round_other_load": [None] * 3}, 0.1)
    assert unknown["quiet_rounds"] is None and unknown["minidl_times_s"] == [2.0, 9.0, 3.0]
