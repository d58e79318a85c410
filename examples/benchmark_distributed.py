"""Data-parallel speed: steps/s at 1 and 2 processes, the all-reduce's share, bytes per step.

    python examples/benchmark_distributed.py            # about a minute; --quick, --json
    (needs pip install "minidl[mpi]": it starts mpiexec itself, BLAS at 1 thread per process)

Strong scaling: the global batch is fixed (512 examples), so 2 processes each do half.
Each network trains the same steps under ``deferred``; rounds of 1 and 2 processes
alternate so that machine noise hits both, and medians are reported. Inside each run,
the time spent in the gradient all-reduce (packing, MPI_Allreduce, unpacking) is
measured separately from the whole step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

NETWORKS = {"digits MLP 64-64-10": [64], "wider MLP 64-1024-1024-10": [1024, 1024]}
GLOBAL_BATCH = 512


def worker(hidden: list[int], steps: int) -> dict:
    """Run inside mpiexec: time ``steps`` optimizer steps on this rank's shard."""
    import minidl as mdl
    from minidl.distributed import DataParallel

    ranks = DataParallel()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=GLOBAL_BATCH)
    layers, width = [], 64
    for size in hidden:
        layers += [mdl.nn.Linear(width, size, generator=rng), mdl.nn.ReLU()]
        width = size
    model = mdl.nn.Sequential(*layers, mdl.nn.Linear(width, 10, generator=rng))
    ranks.start(model)
    optimizer = mdl.optim.SGD(model.parameters(), lr=0.01)
    strategy = mdl.resolve_strategy("deferred")
    batch = [(mdl.from_numpy(x), mdl.from_numpy(y))]
    (xs, ys), = list(ranks.batches(batch))

    def step() -> None:
        optimizer.zero_grad()
        mdl.nn.functional.cross_entropy(model(xs), ys, strategy=strategy).backward()
        ranks.combine(model.parameters(), strategy)
        optimizer.step()

    for _ in range(5):  # warm up
        step()
    ranks.allreduce_seconds, ranks.bytes_sent = 0.0, 0
    ranks.group.allreduce_sum(np.zeros(1))  # start together
    started = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - started
    return {"steps_per_s": steps / elapsed, "allreduce_share": ranks.allreduce_seconds / elapsed,
            "bytes_per_step": ranks.bytes_sent / steps, "rank": ranks.rank,
            "parameters": sum(p.data.size for p in model.parameters())}


def launch(nproc: int, hidden: list[int], steps: int) -> dict:
    from minidl.distributed.launch import find_mpiexec

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "MINIDL_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [find_mpiexec(), "-n", str(nproc), sys.executable, __file__, "--worker",
               json.dumps({"hidden": hidden, "steps": steps})]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode:
        raise SystemExit(f"mpiexec failed: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    parser.add_argument("--smoke", action="store_true", help="seconds: checks it runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.worker:
        result = worker(**json.loads(args.worker))
        if result["rank"] == 0:
            print(json.dumps(result))
        return
    rounds, scale = (1, 0.05) if args.smoke else (3, 0.3) if args.quick else (5, 1.0)
    report = {}
    for name, hidden in NETWORKS.items():
        steps = max(3, int((400 if hidden == [64] else 40) * scale))
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(rounds):
            for nproc in (1, 2):
                runs[nproc].append(launch(nproc, hidden, steps))
        report[name] = {
            nproc: {key: statistics.median(r[key] for r in results)
                    for key in ("steps_per_s", "allreduce_share", "bytes_per_step",
                                "parameters")}
            for nproc, results in runs.items()}
    if args.json:
        print(json.dumps(report))
        return
    print(f"global batch {GLOBAL_BATCH}, float32, deferred, SGD; medians of {rounds} rounds")
    print(f"{'network':<28} {'params':>9} {'procs':>5} {'steps/s':>9} {'speed-up':>8} "
          f"{'all-reduce':>10} {'bytes/step':>11}")
    for name, by_procs in report.items():
        for nproc, r in by_procs.items():
            speedup = r["steps_per_s"] / by_procs[1]["steps_per_s"]
            print(f"{name:<28} {r['parameters']:>9,.0f} {nproc:>5} {r['steps_per_s']:>9.1f} "
                  f"{speedup:>8.2f} {100 * r['allreduce_share']:>9.1f}% "
                  f"{r['bytes_per_step']:>11,.0f}")


if __name__ == "__main__":
    main()
