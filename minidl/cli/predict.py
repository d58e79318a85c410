"""``minidl predict`` and ``minidl evaluate``: use a trained model on new data.

Both take a run directory (``minidl train``'s output) or a model file. Its input
scaling is applied by the loaded model; its task says how outputs are read
(classes and probabilities, or values) and which loss ``evaluate`` reports.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from minidl import storage
from minidl.builders import Task
from minidl.cli.main import UsageError, reading_user_input
from minidl.config import read_config_file
from minidl.data import DataError, load_builtin, load_csv, load_npz
from minidl.data.datasets import DATASETS
from minidl.data.files import is_number
from minidl.errors import ArchiveError, CheckpointError
from minidl.gradmode import no_grad
from minidl.manifest import output_notes
from minidl.models.files import MODEL_NAME, load, model_path, read_model_file
from minidl.npz import read_npz
from minidl.nn import functional as F
from minidl.tensor import from_numpy

LOSSES = {"binary": F.binary_cross_entropy_with_logits, "multiclass": F.cross_entropy,
          "regression": F.mse_loss}


class _Model:
    """A loaded model, its metadata and how many features it takes (None: unknown)."""

    def __init__(self, source: Path) -> None:
        _, self.meta = read_model_file(source)
        self.module = load(source)
        if Path(source).is_dir():  # a run directory: say when its files are not one set
            for note in output_notes(Path(source), MODEL_NAME):
                print(f"note: {note}", file=sys.stderr)
        self.task: str | None = self.meta.get("task")
        context = self.meta["architecture"].get("context") or {}
        scaling = self.meta.get("scaling")
        self.features = context.get("inputs") or (len(scaling["mean"]) if scaling else None)
        dtypes = [p.dtype for p in self.module.parameters() if p.dtype.kind == "f"]
        self.dtype = dtypes[0] if dtypes else np.dtype(np.float32)
        run_config = model_path(source).parent / "config.toml"
        # A CSV's target column, as the run read it (a model file alone: the last column).
        self.target: int | str = -1
        if Path(source).is_dir() and run_config.is_file():
            self.target = read_config_file(run_config).get("data", {}).get("target", -1)

    def outputs(self, features: np.ndarray) -> np.ndarray:
        if self.features is not None and features.shape[1] != self.features:
            raise DataError(f"the input has {features.shape[1]} features per example, the "
                            f"model takes {self.features}")
        # A scaling front takes raw float64 features (scaled as in training, then cast).
        scaled = self.meta.get("scaling") is not None
        with no_grad():
            return self.module(from_numpy(features if scaled else
                                          features.astype(self.dtype))).data


# ---- predict ---------------------------------------------------------------------------------
def predictions(outputs: np.ndarray, task: str | None) -> dict[str, np.ndarray]:
    """Classes and probabilities (classification) or values, from the model's outputs.

    >>> predictions(np.array([[0.0], [2.0]]), "binary")["class"].tolist()
    [0, 1]
    """
    outputs = outputs.astype(np.float64).reshape(len(outputs), -1)
    if task == "multiclass":
        probabilities = F.softmax(from_numpy(outputs), axis=1).data
        return {"class": probabilities.argmax(axis=1), "probability": probabilities}
    if task == "binary":
        probability = 1.0 / (1.0 + np.exp(-outputs[:, 0]))
        return {"class": (probability > 0.5).astype(np.int64), "probability": probability}
    return {"values": outputs}


def _columns(result: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    names, columns = [], []
    for key, values in result.items():
        values = values.reshape(len(values), -1)
        width = values.shape[1]
        names += [key] if width == 1 else [f"{key}_{i}" for i in range(width)]
        columns.append(values)
    return names, np.concatenate([c.astype(np.float64) for c in columns], axis=1)


def _write_predictions(result: dict[str, np.ndarray], output: Path | None) -> None:
    if output is not None and output.suffix == ".npz":
        storage.save_arrays(output, result)
        return
    names, table = _columns(result)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for row in table:
        writer.writerow([int(v) if name == "class" else repr(float(v))
                         for name, v in zip(names, row)])
    if output is None:
        sys.stdout.write(text.getvalue())
    else:
        storage.atomic_write_text(output, text.getvalue())


def read_features(path: Path, model: _Model) -> np.ndarray:
    """Features of a ``.npz`` (array ``X``) or a ``.csv``: features only, or also the
    target column (the training file), which is dropped."""
    if path.suffix == ".npz":
        return _npz_features(path)
    if path.suffix != ".csv":
        raise DataError(f"{path}: give a .csv or .npz file of features")
    table, names = _csv_table(path)
    expected, width = model.features, table.shape[1]
    if expected is None or width == expected:
        return table
    if width == expected + 1:  # the training file: drop its target column
        target = model.target
        if isinstance(target, str):
            if names is None or target not in names:
                raise DataError(f"{path}: no target column named {target!r} to drop")
            target = names.index(target)
        return np.delete(table, target % width, axis=1)
    raise DataError(f"{path}: {width} columns, but the model takes {expected} features (give "
                    "exactly those, or those and the target column)")


def _csv_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """A numeric CSV (a header row is allowed) as float64; errors name row and column."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (current directory: {Path.cwd()})")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if row]
    if not rows:
        raise DataError(f"{path}: file is empty")
    header = not any(is_number(cell) for cell in rows[0][1])
    names = [cell.strip() for cell in rows[0][1]] if header else None
    rows = rows[1:] if header else rows
    if not rows:
        raise DataError(f"{path}: a header row but no data rows")
    width = len(rows[0][1])
    table = np.empty((len(rows), width), dtype=np.float64)
    for i, (number, row) in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path}: row {number} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            if not is_number(cell):
                raise DataError(f"{path}: row {number}, column {j + 1}: {cell!r} is not a "
                                "number")
            table[i, j] = float(cell)
    return table, names


def _npz_features(path: Path) -> np.ndarray:
    try:
        return load_npz(path)[0]
    except DataError as err:
        if "no array named 'y'" not in str(err):
            raise
    # X alone is fine for predictions; read as safely as any data file.
    try:
        arrays = read_npz(path)
    except ArchiveError as err:
        raise DataError(str(err)) from None
    if "X" not in arrays:
        raise DataError(f"{path}: no array named 'X' (the features); it holds "
                        f"{', '.join(sorted(arrays)) or 'nothing'}")
    features = arrays["X"]
    return features.reshape(len(features), -1).astype(np.float64)


def _predict(args: argparse.Namespace) -> int:
    with reading_user_input():
        model = _Model(args.model)
        features = read_features(args.input, model)
        outputs = model.outputs(features)
    _write_predictions(predictions(outputs, model.task), args.output)
    return 0


# ---- evaluate --------------------------------------------------------------------------------
def read_data(spec: str, model: _Model) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets of a built-in dataset, a ``.csv`` or a ``.npz``."""
    if spec.endswith(".csv"):
        return load_csv(spec, target=model.target)
    if spec.endswith(".npz"):
        return load_npz(spec)
    if spec in DATASETS:
        features, targets = load_builtin(spec)
        return np.asarray(features, dtype=np.float64).reshape(len(features), -1), targets
    raise DataError(f"unknown data {spec!r}: give a .csv or .npz file or a built-in dataset "
                    f"({', '.join(DATASETS)})")


def evaluate(model: _Model, features: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """Mean per-example loss (the task's) and, for classification, accuracy."""
    if model.task not in LOSSES:
        raise CheckpointError("the model file does not say what task it was trained for; "
                              "save it with mdl.save(model, path, task=\"multiclass\") (or "
                              "binary, regression) to evaluate it")
    outputs = model.outputs(features)
    task = Task(model.task, outputs.shape[1] if outputs.ndim > 1 else 1, LOSSES[model.task])
    formatted = task.format_targets(targets)
    if model.task == "multiclass" and (formatted.min() < 0 or formatted.max() >= task.outputs):
        raise DataError(f"labels must be 0..{task.outputs - 1} for this model, found "
                        f"{formatted.min()}..{formatted.max()}")
    y = formatted.astype(model.dtype) if formatted.dtype.kind == "f" else formatted
    losses = task.loss(from_numpy(outputs), from_numpy(y), reduction="none")
    result: dict[str, Any] = {"loss": float(losses.data.astype(np.float64).mean())}
    accuracy = task.accuracy(outputs, formatted)
    if accuracy is not None:
        result["accuracy"] = accuracy
    result["examples"] = len(features)
    return result


def _evaluate(args: argparse.Namespace) -> int:
    with reading_user_input():
        model = _Model(args.model)
        features, targets = read_data(args.data, model)
        result = evaluate(model, features, targets)
    if args.json:
        print(json.dumps(storage.json_safe(result), allow_nan=False))
        return 0
    accuracy = f"accuracy {result['accuracy']:.4f}, " if "accuracy" in result else ""
    print(f"{accuracy}loss {result['loss']:.4f}  ({result['examples']} examples)")
    return 0


def add_parser(commands: Any) -> None:
    predict = commands.add_parser(
        "predict", help="predictions of a trained model on new data",
        description="Write predictions for INPUT (a .csv of features, or the training file "
        "with its target column, or a .npz with X): class and probabilities for a "
        "classifier, values for regression. CSV to stdout unless --output.")
    predict.add_argument("model", type=Path, metavar="RUN_DIR_OR_MODEL")
    predict.add_argument("input", type=Path, metavar="INPUT")
    predict.add_argument("--output", type=Path, metavar="FILE", help="a .csv or .npz to write "
                         "(atomically)")
    predict.set_defaults(run=_predict)

    evaluate_cmd = commands.add_parser(
        "evaluate", help="loss and accuracy of a trained model on labelled data",
        description="Print the model's mean loss and accuracy on DATA: a .csv (target column "
        "as in training), a .npz with X and y, or a built-in dataset name.")
    evaluate_cmd.add_argument("model", type=Path, metavar="RUN_DIR_OR_MODEL")
    evaluate_cmd.add_argument("data", metavar="DATA")
    evaluate_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate_cmd.set_defaults(run=_evaluate)


__all__ = ["UsageError", "add_parser", "evaluate", "predictions", "read_data", "read_features"]
