"""minidl predict and minidl evaluate on the output of minidl train; bad input exits 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from minidl.cli import main
from minidl.models.files import FORMAT_KEY
from minidl.storage import load_arrays, save_arrays

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """`minidl train examples/digits.toml` (3 epochs, standardized inputs, all for training)."""
    run = tmp_path_factory.mktemp("digits") / "run"
    code = main(["train", str(EXAMPLES / "digits.toml"), "--quiet", "--set", "train.epochs=3",
                 "--set", f"output.dir={run}", "--set", "data.val_fraction=0"])
    assert code == 0
    return run


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    import minidl as mdl

    folder = tmp_path_factory.mktemp("digits_files")
    features, labels = mdl.data.digits()
    np.savez(folder / "labelled.npz", X=features[:50], y=labels[:50])
    np.savez(folder / "features.npz", X=features[:50])
    np.savetxt(folder / "features.csv", features[:50], delimiter=",")
    np.savetxt(folder / "with_target.csv", np.column_stack([features[:50], labels[:50]]),
               delimiter=",", header=",".join([f"p{i}" for i in range(64)] + ["digit"]),
               comments="")
    return folder, features[:50], labels[:50]


def test_evaluate_reports_the_runs_own_numbers(capsys, digits_run):
    code, out, _ = _run(capsys, "evaluate", digits_run, "digits", "--json")
    assert code == 0
    result = json.loads(out)
    final = json.loads((digits_run / "metrics.json").read_text())["final"]
    assert result["examples"] == 1797
    # the whole data set was the training split: the same loss and accuracy as the run's
    assert result["loss"] == pytest.approx(final["train_loss"], rel=1e-6)
    assert result["accuracy"] == final["train_accuracy"]
    code, out, _ = _run(capsys, "evaluate", digits_run / "model.npz", "digits")
    assert code == 0 and out.startswith(f"accuracy {final['train_accuracy']:.4f}, loss ")


def test_predict_writes_classes_and_probabilities_for_every_input_form(capsys, digits_run,
                                                                        digits_files):
    folder, features, labels = digits_files
    code, out, _ = _run(capsys, "predict", digits_run, folder / "features.csv")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["class"] + [f"probability_{k}" for k in range(10)] and len(rows) == 51
    table = np.array(rows[1:], dtype=np.float64)
    np.testing.assert_allclose(table[:, 1:].sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(table[:, 0], table[:, 1:].argmax(axis=1))
    assert (table[:, 0] == labels).mean() > 0.8  # it learned something in 3 epochs

    for source in ("features.npz", "labelled.npz", "with_target.csv"):
        target = folder / f"out_{source}.npz"
        code, _, _ = _run(capsys, "predict", digits_run, folder / source, "--output", target)
        assert code == 0
        arrays, _ = load_arrays(target)
        np.testing.assert_array_equal(arrays["class"], table[:, 0])
        np.testing.assert_allclose(arrays["probability"], table[:, 1:], rtol=1e-12)
    code, _, _ = _run(capsys, "predict", digits_run, folder / "features.csv", "--output",
                      folder / "out.csv")
    assert code == 0 and (folder / "out.csv").read_text() == out


def test_predict_and_evaluate_on_a_binary_run(capsys, tmp_path):
    assert main(["train", "--quiet", "--set", "train.epochs=300", "--set",
                 f"output.dir={tmp_path}"]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, "evaluate", tmp_path, "planar", "--json")
    result = json.loads(out)
    final = json.loads((tmp_path / "metrics.json").read_text())["final"]
    assert result["accuracy"] == final["train_accuracy"]
    points = tmp_path / "points.csv"
    points.write_text("x1,x2\n0.0,0.0\n3.0,-1.0\n")
    code, out, _ = _run(capsys, "predict", tmp_path, points)
    rows = list(csv.reader(out.splitlines()))
    assert code == 0 and rows[0] == ["class", "probability"] and len(rows) == 3
    assert all(int(row[0]) == (float(row[1]) > 0.5) for row in rows[1:])


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.csv", "missing.csv: file not found"),
    (lambda d: _write(d / "narrow.csv", "1,2,3\n"), "3 columns, but the model takes 64"),
    (lambda d: _write(d / "bad.csv", "1,x\n"), "row 1, column 2: 'x' is not a number"),
    (lambda d: _write(d / "data.txt", "1\n"), "give a .csv or .npz file"),
])
def test_bad_predict_input_is_one_message_and_exit_2(capsys, digits_run, tmp_path, make,
                                                     message):
    code, out, err = _run(capsys, "predict", digits_run, make(tmp_path))
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_models_are_one_message_and_exit_2(capsys, digits_run, digits_files, tmp_path):
    folder = digits_files[0]
    arrays, meta = load_arrays(digits_run / "model.npz")
    save_arrays(tmp_path / "newer.npz", arrays, {**meta, FORMAT_KEY: 7})
    cases = [
        (tmp_path / "newer.npz", "format 7, newer than this minidl reads (up to 1); upgrade"),
        (tmp_path / "nowhere", "no model file at"),
        (digits_run / "checkpoint.npz", "a training checkpoint, not a model file"),
    ]
    for model, message in cases:
        code, out, err = _run(capsys, "predict", model, folder / "features.csv")
        assert code == 2 and message in err and "Traceback" not in err, err
        code, _, err = _run(capsys, "evaluate", model, "digits")
        assert code == 2 and message in err
    code, _, err = _run(capsys, "evaluate", digits_run, "planar")
    assert code == 2 and "2 features per example, the model takes 64" in err
    code, _, err = _run(capsys, "evaluate", digits_run, "nothing.json")
    assert code == 2 and "unknown data 'nothing.json'" in err


def test_evaluate_says_when_the_model_is_not_the_set_the_manifest_names(capsys, tmp_path):
    """A run that stopped after its final model.npz but before the manifest named it (as a
    kill can leave it): evaluate on the directory says so, and still evaluates."""
    run = tmp_path / "run"
    assert main(["train", "--quiet", "--set", "train.epochs=4", "--set", f"output.dir={run}",
                 "--set", "output.checkpoint_every=1"]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "evaluate", run, "planar")
    assert code == 0 and err == ""  # one consistent set: nothing to say
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["files"]["model.npz"]  # as before the final manifest was written
    (run / "manifest.json").write_text(json.dumps(manifest))
    code, out, err = _run(capsys, "evaluate", run, "planar")
    assert code == 0 and out.startswith("accuracy ")
    assert err.startswith(f"note: {run / 'model.npz'} (epoch 4) is not part of the set")
