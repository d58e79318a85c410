"""examples/benchmark.py runs end to end: every network passes the checks of every
implementation (minidl eager nn, eager functional, compiled; torch when installed) and gets a
time and a paired ratio to hand numpy for each, the aims table has a verdict per column, and
the conv2d section checks against torch and reports (or, without torch, says it skipped the
comparison). Timings are not checked (``--smoke`` times 3 steps, which means nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark.py"
NETWORKS = ("tiny", "mlp-b128", "mlp-b1024")
MINIDL_COLUMNS = ("minidl eager nn", "minidl eager functional", "minidl compiled")


def test_benchmark_smoke_run_checks_and_times_every_implementation(tmp_path: Path) -> None:
    # From another folder: the script must find its sibling modules by itself.
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = done.stdout
    assert "\nchecks before timing" in report and "\nmedian time per training step" in report
    checks, timing = report.split("\nchecks before timing", 1)[1].split("\nmedian time per", 1)
    torch = _torch_installed()
    for name in NETWORKS:
        _check_network(name, checks, timing, torch)
    aims = timing.split("\naims (paired median ratio to hand numpy)", 1)[1]
    for name in NETWORKS:
        assert re.search(rf"^  {re.escape(name)} +" + " +".join(
            [r"[\d.]+ <= [\d.]+ +(meets|MISSES)"] * 3) + "$", aims, re.MULTILINE), aims
    _check_conv_section(report)


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _check_network(name: str, checks: str, timing: str, torch: bool) -> None:
    """``name``'s checks all passed and each implementation has a time (and, but for numpy,
    a paired ratio); torch's column says "not installed" when it is."""
    block = checks.split(f"\n  {name} ", 1)[1].split("\n  m", 1)[0]
    assert block.lstrip().startswith("ok"), checks
    for label in MINIDL_COLUMNS:
        assert re.search(rf"^    {label} +ok, ", block, re.MULTILINE), block
    torch_check = "ok, max rel grad diff" if torch else "skipped: torch is not installed"
    assert re.search(rf"^    torch eager +{torch_check}", block, re.MULTILINE), block
    table = timing.split(f"\n{name}: ", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^  hand numpy +[\d.]+ µs +\d+%$", table, re.MULTILINE), table
    timed = MINIDL_COLUMNS + (("torch eager",) if torch else ())
    for label in timed:
        row = re.search(rf"^  {label} +[\d.]+ µs +\d+% +([\d.]+) \(([\d.]+)\) ", table,
                        re.MULTILINE)
        assert row is not None and float(row.group(1)) > 0, table
    if not torch:
        assert re.search(r"^  torch eager +not installed$", table, re.MULTILINE), table


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
    """torch is an optional extra: with it unimportable, the networks' torch column is
    reported as not installed, the minidl columns are timed, and the conv section runs."""
    block_torch = ("import runpy, sys; sys.modules['torch'] = None; "
                   f"sys.argv = [{str(SCRIPT)!r}, '--smoke', '--only', 'tiny', "
                   "'--only', 'conv']; "
                   f"sys.path.insert(0, {str(SCRIPT.parent)!r}); "
                   f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", block_torch], cwd=tmp_path,
                          capture_output=True, encoding="utf-8", timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    checks, timing = done.stdout.split("\nchecks before timing", 1)[1].split(
        "\nmedian time per", 1)
    _check_network("tiny", checks, timing, torch=False)
    section = _conv_section(done.stdout)
    assert "torch is not installed: no comparison" in section, section
    assert "ratio minidl / torch" not in section
