"""The UCI handwritten digits through the Python API: 64 -> 64 relu -> 10, Adam.

Mini-batches of 32 from a seeded DataLoader, softmax cross-entropy under the
default deferred-1/m strategy, accuracy on a held-out 20%.

    python examples/digits_mlp.py --strategy absorbed
"""

from __future__ import annotations

import argparse

import numpy as np

import minidl as mdl


def train(strategy: str = "deferred", epochs: int = 40, seed: int = 0) -> float:
    """Train on 80% of the digits; return the accuracy on the held-out 20%."""
    features, labels = mdl.data.digits()
    train_set, test_set = mdl.data.train_val_split(
        mdl.data.Dataset(features / 16.0, labels), val_fraction=0.2, seed=seed)
    loader = mdl.data.DataLoader(train_set, batch_size=32, shuffle=True, seed=seed)
    rng = np.random.default_rng(seed)
    model = mdl.nn.Sequential(mdl.nn.Linear(64, 64, init="he", generator=rng), mdl.nn.ReLU(),
                              mdl.nn.Linear(64, 10, generator=rng))
    loss_fn = mdl.nn.CrossEntropyLoss()
    optimizer = mdl.optim.Adam(model.parameters(), lr=1e-3)
    with mdl.normalization(strategy):
        for epoch in range(1, epochs + 1):
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            if epoch % 10 == 0:
                print(f"epoch {epoch:3d}  test accuracy {accuracy(model, test_set):.4f}")
    return accuracy(model, test_set)


def accuracy(model: mdl.nn.Module, dataset: mdl.data.Dataset) -> float:
    with mdl.no_grad():
        logits = model(mdl.tensor(dataset.features.astype(np.float32)))
    return mdl.metrics.accuracy(logits, dataset.targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="deferred")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    print(f"held-out accuracy {train(args.strategy, args.epochs):.4f} under {args.strategy!r}")


if __name__ == "__main__":
    main()
