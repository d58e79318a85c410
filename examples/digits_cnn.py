"""The UCI handwritten digits with a small LeNet-style CNN, through the Python API.

(N, 1, 8, 8) images -> 3x3 conv 32 relu -> 2x2 max-pool -> 3x3 conv 64 relu -> 2x2
max-pool -> flatten -> 128 relu (dropout 0.25) -> 10, Adam, mini-batches of 64, softmax
cross-entropy under the default deferred-1/m strategy; accuracy on a held-out 20%.
The same network from the CLI: ``minidl train examples/digits_cnn.toml``.

    python examples/digits_cnn.py --strategy absorbed
"""

from __future__ import annotations

import argparse

import numpy as np

import minidl as mdl
from minidl import nn


def lenet(rng: np.random.Generator, dropout: float = 0.25) -> nn.Sequential:
    """LeNet's shape (conv, pool, conv, pool, dense) sized for 8x8 images."""
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1, init="he", generator=rng), nn.ReLU(),
        nn.MaxPool2d(2),                                            # 32 x 4 x 4
        nn.Conv2d(32, 64, kernel_size=3, padding=1, init="he", generator=rng), nn.ReLU(),
        nn.MaxPool2d(2),                                            # 64 x 2 x 2
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 128, init="he", generator=rng), nn.ReLU(),
        nn.Dropout(dropout, generator=rng),
        nn.Linear(128, 10, generator=rng))


def train(strategy: str = "deferred", epochs: int = 30, seed: int = 0) -> float:
    """Train on 80% of the digits; return the accuracy on the held-out 20%."""
    features, labels = mdl.data.digits()
    images = (features / 16.0).reshape(-1, 1, 8, 8)  # pixels are 0..16
    train_set, test_set = mdl.data.train_val_split(
        mdl.data.Dataset(images, labels), val_fraction=0.2, seed=seed)
    loader = mdl.data.DataLoader(train_set, batch_size=64, shuffle=True, seed=seed)
    model = lenet(np.random.default_rng(seed))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = mdl.optim.Adam(model.parameters(), lr=2e-3)
    with mdl.normalization(strategy):
        for epoch in range(1, epochs + 1):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            if epoch % 10 == 0:
                print(f"epoch {epoch:3d}  test accuracy {accuracy(model, test_set):.4f}")
    return accuracy(model, test_set)


def accuracy(model: nn.Module, dataset: mdl.data.Dataset) -> float:
    model.eval()  # no dropout
    with mdl.no_grad():
        logits = model(mdl.tensor(dataset.features.astype(np.float32)))
    return mdl.metrics.accuracy(logits, dataset.targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="deferred")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = train(args.strategy, args.epochs, args.seed)
    print(f"held-out accuracy {result:.4f} under {args.strategy!r}")


if __name__ == "__main__":
    main()
