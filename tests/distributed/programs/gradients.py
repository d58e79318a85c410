"""Run under ``mpiexec -n R``: combine gradients over uneven shards with every strategy.

Rank 0 prints one JSON object: per case and strategy, the combined gradients, and
whether every rank ended with the same bits. The test compares them with numpy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ["MINIDL_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the rms example is loaded by path below
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/
from helpers.mpi_problem import data, micro_batches, shard  # noqa: E402

import minidl as mdl  # noqa: E402
from minidl.distributed import allreduce_gradients, broadcast_parameters  # noqa: E402
from mpi4py import MPI  # noqa: E402

comm = MPI.COMM_WORLD
RANK, SIZE = comm.Get_rank(), comm.Get_size()
RMS = Path(__file__).resolve().parents[3] / "examples" / "minidl-rms" / "minidl_rms.py"
mdl.get_plugin_manager().import_plugin(str(RMS))
D = data()


def model() -> mdl.nn.Sequential:
    first, second = mdl.nn.Linear(5, 7, dtype="float64"), mdl.nn.Linear(7, 1, dtype="float64")
    for layer, w, b in ((first, "w1", "b1"), (second, "w2", "b2")):
        layer.weight.data[...] = D[w] + RANK  # every rank different: the broadcast fixes it
        layer.bias.data[...] = D[b] + RANK
    net = mdl.nn.Sequential(first, mdl.nn.Tanh(), second)
    broadcast_parameters(net)
    return net


def backward(net, rows: slice, weighted: bool) -> None:
    if rows.stop <= rows.start:
        return  # an empty shard takes no backward pass
    x, y = mdl.tensor(D["x"][rows]), mdl.tensor(D["y"][rows])
    extra = {"sample_weight": D["weight"][rows], "mask": D["mask"][rows]} if weighted else {}
    mdl.nn.functional.binary_cross_entropy_with_logits(net(x), y, **extra).backward()


def run(case: str, strategy: str) -> dict:
    net = model()
    part = shard(SIZE, RANK) if case != "empty" else slice(min(RANK, 2), min(RANK + 1, 2))
    with mdl.normalization(strategy):
        pieces = micro_batches(part) if case == "accumulate" else [part]
        for rows in pieces:
            backward(net, rows, weighted=case in ("weighted", "accumulate"))
        sent = allreduce_gradients(net.parameters())
    grads = [p.grad for p in net.parameters()]
    everyone = comm.gather(np.concatenate([g.ravel() for g in grads]), root=0)
    counts = comm.gather([p.grad_count for p in net.parameters()], root=0)
    weights = comm.gather(np.concatenate([p.data.ravel() for p in net.parameters()]), root=0)
    if RANK:
        return {}
    return {"grads": {k: g.tolist() for k, g in zip(("w1", "b1", "w2", "b2"), grads)},
            "same_bits": all(np.array_equal(e, everyone[0]) for e in everyone),
            "same_weights": all(np.array_equal(w, weights[0]) for w in weights),
            "counts": counts[0], "bytes": sent}


results = {f"{case}/{strategy}": run(case, strategy)
           for case in ("plain", "weighted", "accumulate", "empty")
           for strategy in ("deferred", "absorbed", "sum", "rms")}
if RANK == 0:
    print(json.dumps(results))
