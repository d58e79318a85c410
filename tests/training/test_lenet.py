"""model.name = "lenet": the config builds a CNN, refuses data that are not square images,
and the CNN learns the digits from the CLI's trainer in a few seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minidl.builders import build_model
from minidl.cli import main
from minidl.config import load_config
from minidl.data import DataError
from minidl.trainer import Trainer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.toml"


def test_lenet_is_built_from_the_model_section() -> None:
    config = load_config(overrides=[
        "model.name=lenet", "model.options={hidden: [16], activation: relu, dropout: 0.1}"])
    rng = np.random.default_rng(0)
    model = build_model(config.model, 64, 10, rng, rng, np.float32)
    kinds = [type(m).__name__ for m in model._modules.values()]
    assert kinds == ["Unflatten", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                     "Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert model[1].weight.shape == (32, 1, 3, 3) and model[4].weight.shape == (64, 32, 3, 3)
    assert model[8].weight.shape == (16, 64 * 2 * 2)
    out = model(np.zeros((5, 64), dtype=np.float32))
    assert out.shape == (5, 10)
    # the default stays the MLP
    assert [type(m).__name__ for m in build_model(load_config().model, 2, 1, rng, rng,
                                                  np.float32)._modules.values()] == [
        "Linear", "Tanh", "Linear"]


def test_lenet_needs_square_images() -> None:
    with pytest.raises(DataError, match=r"square one-channel images .* has 2 features"):
        Trainer(load_config(overrides=["model.name=lenet", "output.dir="]))  # planar: 2-D


def test_an_unknown_model_name_is_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--set", "model.name=resnet", "--set", "output.dir="]) == 2
    err = capsys.readouterr().err
    assert "resnet" in err and "lenet" in err and "mlp" in err  # the names there are
    assert main(["train", "--set", "model.name=lenet", "--set", "output.dir="]) == 2
    assert "square one-channel images" in capsys.readouterr().err


def test_lenet_learns_the_digits_in_a_few_epochs() -> None:
    """Two epochs of the example config: the loss falls and validation accuracy is far
    above chance (0.1). The full 40 epochs reach >= 0.98 (examples/digits_cnn.toml)."""
    config = load_config(EXAMPLE, ["train.epochs=2", "output.dir="])
    trainer = Trainer(config, quiet=True)
    final = trainer.fit()
    losses = [epoch["train_loss"] for epoch in trainer.history]
    assert losses[-1] < 0.5 * losses[0]
    assert final["val_accuracy"] > 0.85
