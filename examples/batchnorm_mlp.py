"""Batch normalization speeds up training of a deeper MLP (the course's comparison).

Two 8-layer ReLU networks on the bundled 8x8 digits, 64 -> 7 x 64 -> 10, the same
initial weights, the same mini-batches and plain SGD: one as is, one with a
``BatchNorm1d`` after each hidden linear layer. Prints the training loss of both per
epoch and the held-out accuracy (batch norm in eval mode: its running statistics).
With matplotlib installed (``pip install -e ".[plot]"``), saves docs/batchnorm_mlp.png.

    python examples/batchnorm_mlp.py --epochs 15
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# One BLAS thread, set before numpy loads: 64 x 64 matmuls are faster on one thread,
# and two threads stall whenever another process shares this 2-core machine.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

import minidl as mdl  # noqa: E402

PLOT = Path(__file__).resolve().parents[1] / "docs" / "batchnorm_mlp.png"


def deep_mlp(batch_norm: bool, depth: int = 7, width: int = 64, seed: int = 0
             ) -> mdl.nn.Sequential:
    """64 -> depth x (width, relu) -> 10; Xavier init (the course's default), which
    shrinks the signal through many ReLU layers: what batch norm repairs."""
    rng = np.random.default_rng(seed)  # the same draws with and without batch norm
    layers: list[mdl.nn.Module] = []
    fan_in = 64
    for _ in range(depth):
        layers.append(mdl.nn.Linear(fan_in, width, generator=rng))
        if batch_norm:
            layers.append(mdl.nn.BatchNorm1d(width))
        layers.append(mdl.nn.ReLU())
        fan_in = width
    layers.append(mdl.nn.Linear(fan_in, 10, generator=rng))
    return mdl.nn.Sequential(*layers)


def train(batch_norm: bool, epochs: int = 15, lr: float = 0.05, batch_size: int = 64,
          seed: int = 0, limit: int | None = None, verbose: bool = True
          ) -> tuple[list[float], float]:
    """Train one network; return its mean training loss per epoch and its held-out
    accuracy. ``limit`` keeps the first examples only (for a quick test)."""
    features, labels = mdl.data.digits()
    if limit is not None:
        features, labels = features[:limit], labels[:limit]
    train_set, test_set = mdl.data.train_val_split(
        mdl.data.Dataset(features / 16.0, labels), val_fraction=0.2, seed=seed)
    loader = mdl.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed,
                                 drop_last=True)  # no batch of 1 for batch norm
    model = deep_mlp(batch_norm, seed=seed)
    loss_fn = mdl.nn.CrossEntropyLoss()
    optimizer = mdl.optim.SGD(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        if verbose:
            print(f"  epoch {epoch:3d}  training loss {history[-1]:.4f}")
    model.eval()
    with mdl.no_grad():
        logits = model(mdl.tensor(test_set.features.astype(np.float32)))
    return history, float((logits.data.argmax(axis=1) == test_set.targets).mean())


def plot(curves: dict[str, list[float]], path: Path) -> bool:
    """Save the loss curves if matplotlib is installed; False if it is not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, history in curves.items():
        ax.plot(range(1, len(history) + 1), history, marker="o", label=label)
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log",
           title="8-layer ReLU MLP on digits, SGD lr 0.05")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)  # atomic: never a half-written plot
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    curves, accuracy = {}, {}
    for label, batch_norm in (("without batch norm", False), ("with batch norm", True)):
        started = time.perf_counter()
        print(label)
        curves[label], accuracy[label] = train(batch_norm, args.epochs, args.lr)
        print(f"  held-out accuracy {accuracy[label]:.4f} "
              f"({time.perf_counter() - started:.1f} s)")
    for label, history in curves.items():
        print(f"{label:>20}: loss {history[0]:.3f} -> {history[-1]:.3f}, "
              f"accuracy {accuracy[label]:.4f}")
    if plot(curves, PLOT):
        print(f"plot saved to {PLOT}")
    else:
        print("matplotlib is not installed: no plot (pip install -e \".[plot]\")")


if __name__ == "__main__":
    main()
