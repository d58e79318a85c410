"""Your own Module through mdl.Trainer: the digits, RMSprop, an inverse-time schedule,
saved, then loaded in a new process that predicts exactly the same outputs.

    python examples/custom_module.py [--epochs 30] [--output runs/digits_net.npz]

The network is a user-defined ``nn.Module`` subclass (64 -> hidden relu -> dropout
-> 10). ``mdl.save`` records how to rebuild it: this file's path, the class name and
its options; ``mdl.load`` in any other process imports this file (the training
below is guarded by ``if __name__ == "__main__"``, so it does not run again) and
loads the weights.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import minidl as mdl
from minidl.optim import lr_scheduler


class DigitsNet(mdl.nn.Module):
    """64 pixels -> ``hidden`` relu units -> dropout -> 10 class scores."""

    def __init__(self, hidden: int = 64, dropout: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.hidden = mdl.nn.Linear(64, hidden, init="he", generator=rng)
        self.dropout = mdl.nn.Dropout(dropout, generator=rng)
        self.out = mdl.nn.Linear(hidden, 10, generator=rng)

    def forward(self, x: mdl.Tensor) -> mdl.Tensor:
        return self.out(self.dropout(self.hidden(x).relu()))


def train(epochs: int = 30, hidden: int = 64, seed: int = 0
          ) -> tuple[DigitsNet, mdl.data.Dataset, dict]:
    """Train on 80% of the digits; return the model, the held-out 20% and the metrics."""
    features, labels = mdl.data.digits()
    train_set, test_set = mdl.data.train_val_split(
        mdl.data.Dataset(features / 16.0, labels), val_fraction=0.2, seed=seed)
    model = DigitsNet(hidden=hidden, seed=seed)
    optimizer = mdl.optim.RMSprop(model.parameters(), lr=0.002)
    schedule = lr_scheduler.InverseTimeLR(optimizer, decay_rate=0.1)  # lr0 / (1 + 0.1 epoch)
    trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(), optimizer, train_set,
                          val_data=test_set, metrics=[mdl.metrics.accuracy], epochs=epochs,
                          batch_size=32, seed=seed, scheduler=schedule)
    return model, test_set, trainer.fit()


def predict(model: mdl.nn.Module, features: np.ndarray) -> np.ndarray:
    model.eval()
    with mdl.no_grad():
        return model(mdl.tensor(features, dtype="float32")).data


LOAD_AND_PREDICT = """
import sys, numpy as np, minidl as mdl
model = mdl.load(sys.argv[1])                       # a new process: rebuilt from the file
with mdl.no_grad():
    outputs = model(mdl.tensor(np.load(sys.argv[2]), dtype="float32")).data
np.save(sys.argv[3], outputs)
print(type(model).__name__)
"""


def predict_in_new_process(path: Path, features: np.ndarray) -> tuple[np.ndarray, str]:
    """``mdl.load(path)`` and predict in a fresh Python; returns (outputs, model class)."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "x.npy", Path(folder) / "out.npy"
        np.save(inputs, features)
        done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path), str(inputs),
                               str(outputs)], capture_output=True, text=True, cwd=folder)
        if done.returncode != 0:
            raise RuntimeError(f"loading in a new process failed:\n{done.stderr}")
        return np.load(outputs), done.stdout.strip()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--output", type=Path, default=Path("runs/digits_net.npz"))
    args = parser.parse_args(argv)

    model, test_set, final = train(args.epochs, args.hidden)
    mdl.save(model, args.output, options={"hidden": args.hidden}, task="multiclass")
    here = predict(model, test_set.features)
    there, kind = predict_in_new_process(args.output.resolve(), test_set.features)
    same = bool(np.array_equal(here, there))
    print(f"held-out accuracy {final['val_accuracy']:.4f} after {final['epochs']} epochs; "
          f"saved to {args.output}; a new process loaded a {kind} and predicted "
          f"{'the same' if same else 'DIFFERENT'} outputs")
    return {**final, "same_outputs": same, "loaded_class": kind}


if __name__ == "__main__":
    main()
