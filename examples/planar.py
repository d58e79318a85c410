"""Andrew Ng's planar "flower" network through the Python API.

2 -> 4 tanh -> 1 sigmoid, cross-entropy, full-batch gradient descent with lr 1.2,
under the course's deferred-1/m normalization (swap the strategy with --strategy).

    python examples/planar.py --strategy absorbed --steps 10000
"""

from __future__ import annotations

import argparse

import numpy as np

import minidl as mdl


def train(strategy: str = "deferred", steps: int = 10_000, lr: float = 1.2, seed: int = 3,
          dtype: str = "float32") -> float:
    """Train the course's network on planar data; return the training accuracy."""
    features, labels = mdl.data.planar()
    x = mdl.tensor(features.astype(dtype))
    y = mdl.tensor(labels.reshape(-1, 1).astype(dtype))
    rng = np.random.default_rng(seed)
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 4, generator=rng, dtype=dtype), mdl.nn.Tanh(),
                              mdl.nn.Linear(4, 1, generator=rng, dtype=dtype))
    loss_fn = mdl.nn.BCEWithLogitsLoss()  # sigmoid + cross-entropy: dZ2 = A2 - Y
    optimizer = mdl.optim.SGD(model.parameters(), lr=lr)
    with mdl.normalization(strategy):
        for step in range(1, steps + 1):
            optimizer.zero_grad()
            cost = loss_fn(model(x), y)
            cost.backward()
            optimizer.step()
            if step % 1000 == 0:
                print(f"step {step:6d}  cost {cost.item():.4f}")
    with mdl.no_grad():
        predictions = model(x).data > 0
    return float((predictions == (y.data > 0.5)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="deferred")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--lr", type=float, default=1.2)
    args = parser.parse_args()
    accuracy = train(args.strategy, args.steps, args.lr)
    print(f"train accuracy {accuracy:.3f} under {args.strategy!r}")


if __name__ == "__main__":
    main()
