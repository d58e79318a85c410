"""Config problems that used to surface mid-fit (or as NaN metrics) are DataErrors up front."""

from __future__ import annotations

import numpy as np
import pytest

from minidl.builders import build_data, infer_task
from minidl.cli import main
from minidl.config import load_config
from minidl.data import DataError
from minidl.trainer import Trainer


def test_model_outputs_must_match_the_regression_target_width():
    with pytest.raises(DataError, match=r"model.outputs = 3, but the regression targets have "
                                        r"1 column\(s\) per example; set model.outputs = 1"):
        Trainer(load_config(overrides=["loss.name=mse", "model.outputs=3", "output.dir="]))
    targets = np.zeros((10, 2))
    with pytest.raises(DataError, match="model.outputs = 3.* 2 column"):
        infer_task(targets, "mse", 3, "t.npz")
    assert infer_task(targets, "mse", 2, "t.npz").outputs == 2
    assert infer_task(targets, "mse", None, "t.npz").outputs == 2


def test_a_val_fraction_that_leaves_no_validation_example_is_refused(capsys):
    config = load_config(overrides=["data.val_fraction=0.001"])
    with pytest.raises(DataError, match=r"data.val_fraction = 0.001 leaves no validation "
                                        r"example out of 400; use at least 0.0025"):
        build_data(config.data, "auto", None, np.random.default_rng(0))
    assert main(["train", "--quiet", "--set", "data.val_fraction=0.001", "--set", "output.dir=",
                 "--set", "train.epochs=1"]) == 2
    assert "leaves no validation example" in capsys.readouterr().err


def test_a_val_fraction_that_leaves_no_training_example_is_refused():
    config = load_config(overrides=["data.val_fraction=0.999"])
    with pytest.raises(DataError, match="leaves no training example out of 400"):
        build_data(config.data, "auto", None, np.random.default_rng(0))


def test_the_smallest_useful_val_fraction_gives_one_validation_example():
    config = load_config(overrides=["data.val_fraction=0.0025"])
    data = build_data(config.data, "auto", None, np.random.default_rng(0))
    assert len(data.val) == 1 and len(data.train) == 399
