"""From config sections to objects: data splits, the MLP or LeNet, its loss and its optimizer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from minidl import nn, optim
from minidl.config import DataConfig, ModelConfig, OptimizerConfig
from minidl.data import DataError, Dataset, load_builtin, load_csv, load_npz, train_val_split
from minidl.data.loader import val_split_size
from minidl.nn import functional as F
from minidl.tensor import Tensor

TASKS = ("binary", "multiclass", "regression")
#: Channels of the two convolution blocks of model.name = "lenet".
LENET_CHANNELS = (32, 64)


@dataclass
class Task:
    """What the targets ask for: the loss, the output width and how accuracy is read."""

    kind: str  # one of TASKS
    outputs: int
    loss: Callable[..., Tensor]

    def format_targets(self, targets: np.ndarray) -> np.ndarray:
        """Targets as the loss takes them: labels (m,) or float columns (m, k)."""
        if self.kind == "multiclass":
            return targets
        return targets.astype(np.float64).reshape(len(targets), -1)

    def accuracy(self, outputs: np.ndarray, targets: np.ndarray) -> float | None:
        """Share of correct predictions (None for regression, where it has no meaning)."""
        if self.kind == "binary":
            return float(((outputs > 0) == (targets > 0.5)).mean())
        if self.kind == "multiclass":
            return float((outputs.argmax(axis=1) == targets).mean())
        return None


@dataclass
class Data:
    train: Dataset
    val: Dataset | None
    task: Task
    features: int
    #: Feature mean and std of the training split when standardized (for inference).
    scaling: dict[str, list[float]] | None = None

    def scale(self, features: np.ndarray) -> np.ndarray:
        """New features scaled as the training split was (unchanged if it was not)."""
        if self.scaling is None:
            return features
        return (features - np.asarray(self.scaling["mean"])) / np.asarray(self.scaling["std"])


def build_data(config: DataConfig, loss_name: str, outputs: int | None,
               rng: np.random.Generator) -> Data:
    """Load the dataset, infer the task, check the labels, split and scale."""
    if config.dataset.endswith(".csv"):
        features, targets = load_csv(config.dataset, target=config.target)
    elif config.dataset.endswith(".npz"):
        features, targets = load_npz(config.dataset)
    else:
        features, targets = load_builtin(config.dataset, **config.options)
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    task = infer_task(targets, loss_name, outputs, config.dataset)
    dataset = Dataset(features, task.format_targets(targets))
    if config.val_fraction > 0:
        _check_split(len(dataset), config.val_fraction, config.dataset)
        train, val = train_val_split(dataset, config.val_fraction,
                                     seed=int(rng.integers(2 ** 31)))
    else:
        train, val = dataset, None
    data = Data(train, val, task, features.shape[1])
    if config.standardize:
        mean, std = train.features.mean(axis=0), train.features.std(axis=0)
        std[std == 0] = 1.0  # constant features stay constant
        data.scaling = {"mean": mean.tolist(), "std": std.tolist()}
        data.train = Dataset(data.scale(train.features), train.targets)
        if val is not None:
            data.val = Dataset(data.scale(val.features), val.targets)
    return data


def _check_split(m: int, val_fraction: float, source: str) -> None:
    """Both halves of the split must hold an example (an empty one gives NaN metrics)."""
    n_val = val_split_size(m, val_fraction)
    if n_val == 0:
        raise DataError(f"{source}: data.val_fraction = {val_fraction} leaves no validation "
                        f"example out of {m}; use at least {1 / m:.3g}, or 0 for no "
                        "validation split")
    if n_val == m:
        raise DataError(f"{source}: data.val_fraction = {val_fraction} leaves no training "
                        f"example out of {m}; use a smaller fraction")


def infer_task(targets: np.ndarray, loss_name: str, outputs: int | None, source: str) -> Task:
    """Binary, multiclass or regression, from the loss name ("auto") and the targets."""
    integral = targets.dtype.kind in "iu" or (
        targets.dtype.kind == "f" and np.array_equal(targets, np.round(targets)))
    if loss_name == "mse" or (loss_name == "auto" and not integral):
        width = 1 if targets.ndim == 1 else int(np.prod(targets.shape[1:]))
        if outputs is not None and outputs != width:
            # Caught here, or the loss raises a ShapeError mid-fit, in the first batch.
            raise DataError(f"{source}: model.outputs = {outputs}, but the regression "
                            f"targets have {width} column(s) per example; set model.outputs "
                            f"= {width} or leave it unset")
        return Task("regression", width, F.mse_loss)
    if not integral:
        raise DataError(f"{source}: loss {loss_name} needs integer class labels, but the "
                        "targets are real-valued; use loss.name = \"mse\"")
    labels = targets.astype(np.int64).reshape(-1)
    if labels.min() < 0:
        raise DataError(f"{source}: label {labels.min()} is negative; labels must be 0..k-1")
    classes = int(labels.max()) + 1
    if outputs is not None and loss_name != "binary_cross_entropy" and labels.max() >= outputs:
        raise DataError(f"{source}: label {labels.max()} is out of range for model.outputs = "
                        f"{outputs} (labels must be 0..{outputs - 1})")
    if loss_name == "binary_cross_entropy" or (loss_name == "auto" and classes <= 2):
        if classes > 2:
            raise DataError(f"{source}: binary_cross_entropy needs 0/1 labels, found labels up "
                            f"to {classes - 1}; use loss.name = \"cross_entropy\"")
        return Task("binary", 1, F.binary_cross_entropy_with_logits)
    return Task("multiclass", outputs or classes, F.cross_entropy)


def build_model(config: ModelConfig, inputs: int, outputs: int,
                init_rng: np.random.Generator, dropout_rng: np.random.Generator,
                dtype: Any) -> nn.Sequential:
    """An MLP: Linear, activation (and dropout) per hidden layer, then a Linear output;
    with ``name = "lenet"``, two convolution blocks before them (``lenet_features``)."""
    activations = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    init = config.init if config.init != "auto" else (
        "he" if config.activation == "relu" else "xavier")
    layers: list[nn.Module] = []
    width = inputs
    if config.name == "lenet":
        layers, width = lenet_features(inputs, activations[config.activation], init,
                                       init_rng, dtype)
    for size in config.hidden:
        layers += [nn.Linear(width, size, init=init, generator=init_rng, dtype=dtype),
                   activations[config.activation]()]
        if config.dropout:
            layers.append(nn.Dropout(config.dropout, generator=dropout_rng))
        width = size
    layers.append(nn.Linear(width, outputs, init="xavier", generator=init_rng, dtype=dtype))
    return nn.Sequential(*layers)


def lenet_features(inputs: int, activation: type[nn.Module], init: str,
                   init_rng: np.random.Generator, dtype: Any) -> tuple[list[nn.Module], int]:
    """A LeNet-style feature extractor for rows of ``inputs`` pixels of square one-channel
    images: unflatten, then (3x3 conv, activation, 2x2 max-pool) with 32 and 64 channels,
    flatten. Returns the layers and the number of features they give."""
    side = math.isqrt(inputs)
    if side * side != inputs or side < 4:
        raise DataError(f"model.name = \"lenet\" needs square one-channel images of at least "
                        f"4x4 pixels, one row of pixels per example; the data has {inputs} "
                        "features per example. Use model.name = \"mlp\" for other data")
    layers: list[nn.Module] = [nn.Unflatten(1, (1, side, side))]
    channels = 1
    for width in LENET_CHANNELS:
        layers += [nn.Conv2d(channels, width, 3, padding=1, init=init, generator=init_rng,
                             dtype=dtype), activation(), nn.MaxPool2d(2)]
        channels, side = width, side // 2
    return layers + [nn.Flatten()], channels * side * side


def build_optimizer(config: OptimizerConfig, params: list[Tensor]) -> optim.Optimizer:
    if config.name == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum,
                         nesterov=config.nesterov, weight_decay=config.weight_decay)
    kind = optim.Adam if config.name == "adam" else optim.AdamW
    return kind(params, lr=config.lr, betas=config.betas, eps=config.eps,
                weight_decay=config.weight_decay)

