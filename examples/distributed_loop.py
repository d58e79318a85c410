"""Your own training loop, data-parallel: the digits MLP over R processes.

    python examples/distributed_loop.py                  # one process
    mpiexec -n 2 python examples/distributed_loop.py     # two (pip install "minidl[mpi]")

Every rank builds the same model and draws the same global batches from the same
seed; each trains on its shard of every batch, and one all-reduce per step leaves
every rank with the same gradients (under deferred: the exact mean over the global
batch, however unevenly it was split). Rank 0 prints.
"""

from __future__ import annotations

import argparse

import minidl as mdl
from minidl import distributed as dist


def main(epochs: int = 5, batch_size: int = 100, strategy: str = "deferred") -> float:
    features, labels = mdl.data.digits()
    features = (features - features.mean(0)) / (features.std(0) + 1e-8)
    loader = mdl.data.DataLoader(mdl.data.Dataset(features, labels), batch_size=batch_size,
                                 shuffle=True, seed=0)  # the same seed on every rank
    model = mdl.nn.Sequential(mdl.nn.Linear(64, 64, generator=1), mdl.nn.ReLU(),
                              mdl.nn.Linear(64, 10, generator=2))
    dist.broadcast_parameters(model)  # rank 0's initial weights everywhere
    optimizer = mdl.optim.Adam(model.parameters(), lr=0.01)
    with dist.abort_on_failure(), mdl.normalization(strategy):
        for epoch in range(epochs):
            loss_sum = seen = 0.0
            for x, y in dist.shard_batches(loader, dist.rank(), dist.world_size()):
                optimizer.zero_grad()
                if len(y):  # a batch smaller than the world leaves a rank nothing
                    losses = mdl.nn.functional.cross_entropy(model(x), y, reduction="none")
                    mdl.batch_reduce(losses).backward()
                    loss_sum += float(losses.data.sum())
                    seen += len(y)
                dist.allreduce_gradients(model.parameters())  # the step's one all-reduce
                optimizer.step()
            loss_sum, seen = dist.allreduce_sum([loss_sum, seen])  # over the global batches
            if dist.is_main():
                print(f"epoch {epoch + 1}: loss {loss_sum / seen:.4f} "
                      f"({dist.world_size()} rank(s))")
    with mdl.no_grad():
        accuracy = mdl.metrics.accuracy(model(mdl.tensor(features)), labels)
    if dist.is_main():
        print(f"training accuracy {accuracy:.4f}")
    return float(accuracy)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--strategy", default="deferred")
    main(**vars(parser.parse_args()))
