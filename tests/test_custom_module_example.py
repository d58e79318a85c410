"""examples/custom_module.py, shortened: a user-defined Module trained by mdl.Trainer with
RMSprop and a schedule, saved, and loaded in a new process that predicts the same outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import minidl as mdl
from minidl.storage import load_arrays

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_module.py"


def test_the_example_trains_saves_and_a_new_process_predicts_the_same(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("example_custom_module", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    result = example.main(["--epochs", "3", "--hidden", "16", "--output",
                           str(tmp_path / "net.npz")])
    assert result["same_outputs"] and result["loaded_class"] == "DigitsNet"
    assert result["val_accuracy"] > 0.85 and result["epochs"] == 3
    assert "predicted the same outputs" in capsys.readouterr().out

    _, meta = load_arrays(tmp_path / "net.npz")
    factory = meta["architecture"]["factory"]
    assert factory == f"{EXAMPLE}:DigitsNet"  # a file, so any process can import it
    assert meta["architecture"]["options"] == {"hidden": 16} and meta["task"] == "multiclass"
    loaded = mdl.load(tmp_path / "net.npz")  # and in this process too
    assert loaded.hidden.weight.shape == (16, 64) and not loaded.dropout.training
    features = mdl.data.digits()[0][:20] / 16.0
    with mdl.no_grad():
        first = loaded(mdl.tensor(features, dtype="float32")).data
        second = loaded(mdl.tensor(features, dtype="float32")).data
    np.testing.assert_array_equal(first, second)  # eval mode: dropout off
