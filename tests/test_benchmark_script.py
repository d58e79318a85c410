"""examples/benchmark.py runs end to end: every network passes its gradient check and gets a
ratio, and the conv2d section checks against torch and reports (or, without torch, says it
skipped the comparison). Timings are not checked (``--smoke`` times 3 steps, which means
nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark.py"
NETWORKS = ("tiny", "mlp-b128", "mlp-b1024")


def test_benchmark_smoke_run_checks_and_times_every_network_and_conv2d(tmp_path: Path) -> None:
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
    _check_conv_section(report)


def _conv_section(report: str) -> str:
    assert "\nconv2d forward + backward (batch 64" in report, report
    return report.split("\nconv2d forward + backward", 1)[1]


def _check_conv_section(report: str) -> None:
    section = _conv_section(report)
    assert re.search(r"^  minidl +1 x \d+ +[\d.]+ ms$", section, re.MULTILINE), section
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed: no comparison" in section, section
    else:
        assert re.search(r"check against torch .*: ok, worst ", section), section
        assert re.search(r"ratio minidl / torch: median of paired rounds [\d.]+ ", section)
    memory = re.search(r"im2col memory at batch 256 .* forward \+ backward [\d.]+ MiB "
                       r"\(([\d.]+)x\)", section)
    assert memory is not None and 0 < float(memory.group(1)) <= 3.0, section


def test_benchmark_runs_without_torch(tmp_path: Path) -> None:
    """torch is an optional extra: with it unimportable the conv section still runs."""
    block_torch = ("import runpy, sys; sys.modules['torch'] = None; "
                   f"sys.argv = [{str(SCRIPT)!r}, '--smoke', '--only', 'conv']; "
                   f"sys.path.insert(0, {str(SCRIPT.parent)!r}); "
                   f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", block_torch], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    section = _conv_section(done.stdout)
    assert "torch is not installed: no comparison" in section, section
    assert "ratio minidl / torch" not in section
