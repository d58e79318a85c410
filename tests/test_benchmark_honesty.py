"""examples/benchmark.py's honesty helpers: paired-ratio statistics, the per-column summary
with its aims, and --quiet-only (which drops the same rounds from every implementation)."""

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


def test_summary_gives_every_column_its_paired_ratio_and_aim(benchmark_script) -> None:
    times = {"numpy": [1.0, 2.0, 1.0], "eager": [2.0, 5.0, 3.0], "compiled": [1.2, 2.6, 1.0],
             "torch": [4.0, 4.0, 4.0]}
    summary = benchmark_script.summarize("tiny", times)
    assert "paired_median" not in summary["numpy"] and summary["numpy"]["median_s"] == 1.0
    eager, compiled = summary["eager"], summary["compiled"]
    assert eager["paired_ratios"] == [2.0, 2.5, 3.0] and eager["paired_median"] == 2.5
    assert eager["ratio_of_medians"] == 3.0 and eager["ratio_of_minimums"] == 2.0
    assert eager["aim"] == 2.5 and eager["meets_aim"] is True      # 2.5 <= 2.5
    assert compiled["paired_median"] == pytest.approx(1.2) and compiled["aim"] == 1.3
    assert compiled["meets_aim"] is True
    assert summary["torch"]["aim"] is None and summary["torch"]["meets_aim"] is None
    mlp = benchmark_script.summarize("mlp-b1024", times)
    assert mlp["eager"]["aim"] == 1.03 and mlp["eager"]["meets_aim"] is False
    assert mlp["compiled"]["aim"] == 1.01 and mlp["compiled"]["meets_aim"] is False


def test_quiet_only_keeps_the_rounds_measured_while_the_machine_was_idle(benchmark_script) -> None:
    result = {"name": "tiny", "round_other_load": [0.05, 0.6, 0.0], "quiet_rounds": None,
              "times_s": {"numpy": [1.0, 1.0, 1.0], "eager": [2.0, 9.0, 3.0],
                          "functional": [1.5, 8.0, 2.5]}}
    quiet = benchmark_script.keep_quiet_rounds(result, 0.1)
    assert quiet["quiet_rounds"] == 2 and quiet["times_s"]["functional"] == [1.5, 2.5]
    assert quiet["impls"]["eager"]["paired_ratios"] == [2.0, 3.0]
    assert quiet["impls"]["eager"]["median_s"] == 2.5
    assert quiet["impls"]["functional"]["paired_median"] == 2.0
    unknown = benchmark_script.keep_quiet_rounds({**result, "round_other_load": [None] * 3}, 0.1)
    assert unknown["quiet_rounds"] is None and unknown["times_s"] == result["times_s"]
