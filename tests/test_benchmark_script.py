"""examples/benchmark.py runs end to end: every network passes its gradient check and gets a
ratio. Its timings are not checked (``--smoke`` times 3 steps, which means nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark.py"
NETWORKS = ("tiny", "mlp-b128", "mlp-b1024")


def test_benchmark_smoke_run_checks_and_times_every_network(tmp_path: Path) -> None:
    # From another folder: the script must find its sibling modules by itself.
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = done.stdout
    assert "\ngradient check" in report and "\nmedian time per training step" in report, report
    checks, timing = report.split("\ngradient check", 1)[1].split("\nmedian time per", 1)
    for name in NETWORKS:
        assert re.search(rf"^  {re.escape(name)} +ok +\(cost ", checks, re.MULTILINE), report
        row = re.search(rf"^  {re.escape(name)} +\d+ +1 x \d+ +[\d.]+ µs +[\d.]+ µs +([\d.]+) ",
                        timing, re.MULTILINE)
        assert row is not None, report
        assert float(row.group(1)) > 0
