"""examples/distributed_loop.py and examples/benchmark_distributed.py run as documented."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers.mpi import ROOT, mpi_env, run_mpi

EXAMPLES = ROOT / "examples"


def test_the_loop_example_trains_the_same_model_on_1_and_2_ranks():
    one = subprocess.run([sys.executable, EXAMPLES / "distributed_loop.py", "--epochs", "2"],
                         capture_output=True, text=True, timeout=60, env=mpi_env())
    two = run_mpi(2, ["python", EXAMPLES / "distributed_loop.py", "--epochs", "2"])
    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    lines_one, lines_two = one.stdout.splitlines(), two.stdout.splitlines()
    assert len(lines_two) == 3  # rank 0 alone prints: two epochs and the accuracy
    assert lines_two[0] == lines_one[0].replace("(1 rank(s))", "(2 rank(s))")
    assert float(lines_two[-1].split()[-1]) > 0.9


def test_the_distributed_benchmark_runs():
    done = subprocess.run([sys.executable, EXAMPLES / "benchmark_distributed.py", "--smoke",
                           "--json"], capture_output=True, text=True, timeout=120,
                          env=mpi_env())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    digits = report["digits MLP 64-64-10"]
    assert digits["1"]["bytes_per_step"] == 0
    assert digits["2"]["bytes_per_step"] == 4 * (4810 + 3 * 4)  # float32 values + counts
    assert digits["2"]["steps_per_s"] > 0 and 0 < digits["2"]["allreduce_share"] < 1
