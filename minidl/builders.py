"""From config sections to objects: data splits, the model, its loss and its optimizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from minidl import metrics, models, nn, optim
from minidl.config import (
    MLP_FIELDS,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
)
from minidl.data import DataError, Dataset, load_builtin, load_csv, load_npz, train_val_split
from minidl.data.loader import val_split_size
from minidl.models.factories import record_architecture
from minidl.nn import functional as F
from minidl.tensor import Tensor

#: More classes than this is a label column gone wrong (an id, a price), not a task.
MAX_CLASSES = 100_000


@dataclass
class Task:
    """What the targets ask for: the loss, the output width and how accuracy is read."""

    kind: str  # "binary", "multiclass" or "regression"
    outputs: int
    loss: Callable[..., Tensor]

    def format_targets(self, targets: np.ndarray) -> np.ndarray:
        """Targets as the loss takes them: labels (m,) or float columns (m, k)."""
        if self.kind == "multiclass":
            return targets
        return targets.astype(np.float64).reshape(len(targets), -1)

    def accuracy(self, outputs: np.ndarray, targets: np.ndarray) -> float | None:
        """Share of correct predictions (None for regression, where it has no meaning)."""
        if self.kind == "regression":
            return None
        return metrics.accuracy(outputs, targets, threshold=0.0)  # binary outputs are logits


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
        features, targets = load_csv(config.dataset, target=config.target,
                                     allow_nonfinite=config.allow_nonfinite)
    elif config.dataset.endswith(".npz"):
        features, targets = load_npz(config.dataset, allow_nonfinite=config.allow_nonfinite)
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
    # Range checks on the values as given, before int64 could wrap a label like 1e30.
    low, high = float(np.min(targets)), float(np.max(targets))
    if low < 0:
        raise DataError(f"{source}: label {low:g} is negative; labels must be 0..k-1")
    if high >= MAX_CLASSES:
        raise DataError(f"{source}: label {high:g} would make {high + 1:,.0f} classes (at most "
                        f"{MAX_CLASSES:,}); class labels must be 0..k-1, or use loss.name = "
                        "\"mse\" for real-valued targets")
    labels = targets.astype(np.int64).reshape(-1)
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
                dtype: Any, plugins: Sequence[object] = ()) -> nn.Module:
    """The model the ``[model]`` section names: the built-in MLP, a model a plugin
    registers (``model.name``) or the user's factory (``model.factory``)."""
    if not config.is_mlp():
        return models.build_model(config.factory or config.name, config.options,
                                  inputs=inputs, outputs=outputs, generator=init_rng,
                                  dtype=dtype, plugins=plugins)
    options = {key: getattr(config, key) for key in MLP_FIELDS}
    model = models.mlp(inputs, outputs, **options, generator=init_rng,
                       dropout_generator=dropout_rng, dtype=dtype)
    record_architecture(model, "mlp", options, {"inputs": inputs, "outputs": outputs,
                                                "dtype": np.dtype(dtype).name})
    return model


def build_optimizer(config: OptimizerConfig, params: list[Tensor]) -> optim.Optimizer:
    if config.name == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum,
                         nesterov=config.nesterov, weight_decay=config.weight_decay)
    if config.name == "rmsprop":
        return optim.RMSprop(params, lr=config.lr, alpha=config.alpha, eps=config.eps,
                             weight_decay=config.weight_decay, momentum=config.momentum,
                             centered=config.centered)
    kind = optim.Adam if config.name == "adam" else optim.AdamW
    return kind(params, lr=config.lr, betas=config.betas, eps=config.eps,
                weight_decay=config.weight_decay)



def build_scheduler(config: SchedulerConfig, optimizer: optim.Optimizer,
                    epochs: int) -> optim.lr_scheduler.LRScheduler | None:
    """The ``[scheduler]`` section's schedule (after its warmup, if any), or None."""
    S = optim.lr_scheduler  # noqa: N806
    warmup = config.warmup_epochs
    if config.name == "none" and not warmup:
        return None
    schedules: list[optim.lr_scheduler.LRScheduler] = []
    if warmup:
        schedules.append(S.LinearWarmup(optimizer, warmup, config.warmup_start_factor))
    if config.name == "step":
        schedules.append(S.StepLR(optimizer, config.step_size,
                                  0.1 if config.gamma is None else config.gamma))
    elif config.name == "exponential":
        schedules.append(S.ExponentialLR(optimizer, config.gamma))
    elif config.name == "inverse_time":
        schedules.append(S.InverseTimeLR(optimizer, config.decay_rate))
    elif config.name == "cosine":
        schedules.append(S.CosineAnnealingLR(optimizer, config.T_max or max(1, epochs - warmup),
                                             config.eta_min or 0.0))
    if len(schedules) == 1:
        return schedules[0]
    return S.SequentialLR(optimizer, schedules, milestones=[warmup])
