"""Training checkpoints: what goes in, and everything checked before anything is restored.

A checkpoint is an ``.npz`` (``storage.save_arrays``) of the model's arrays, the optimizer's
state and the metric history, plus metadata: the format version, the config, epoch and
step, the optimizer's hyperparameters and the RNG states. ``storage.load_arrays`` checks the
archive and its checksum; ``restore`` then checks that every piece fits the trainer the
config builds, so a damaged or mismatched file is one ``CheckpointError`` naming the
file and the piece, never a traceback from deep inside numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minidl import storage
from minidl.errors import CheckpointError, MinidlError

if TYPE_CHECKING:
    from minidl.training.loop import Trainer

FORMAT = 2
#: Per-parameter optimizer state each optimizer keeps (``t``: Adam's step count;
#: ``master``: the float32 copy of a float16 parameter).
OPTIMIZER_STATE = {"sgd": {"momentum", "master"}, "adam": {"m", "v", "t", "master"},
                   "adamw": {"m", "v", "t", "master"},
                   "rmsprop": {"square_avg", "grad_avg", "momentum", "master"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _OptimizerMeta(_Strict):
    steps: Annotated[int, Field(ge=0)]
    param_groups: list[dict[str, Any]]  # checked by the optimizer's load_state_dict


class CheckpointMeta(_Strict):
    """The metadata of a training checkpoint, as ``save`` writes it."""

    format: int
    config: dict[str, Any] | None = None  # minidl train's; None from mdl.Trainer
    run_id: str | None = None  # the run's random id, kept across resumes
    epoch: Annotated[int, Field(ge=0)]
    step: Annotated[int, Field(ge=0)]
    optimizer: _OptimizerMeta
    scheduler: dict[str, Any] | None = None
    rng: list[dict[str, Any]]
    checksum: str


def save(trainer: Trainer, path: str | Path, extra: dict[str, Any]) -> None:
    """Weights, optimizer and schedule state, epoch, step, history and RNG states, written
    atomically; ``extra`` joins the metadata (``minidl train`` adds its config)."""
    arrays = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    optimizer_state = trainer.optimizer.state_dict()
    for index, state in enumerate(optimizer_state["state"]):
        for key, value in state.items():
            arrays[f"optimizer/{index}/{key}"] = np.asarray(value)
    # History as arrays, not JSON: a checkpoint every epoch stays cheap in long runs.
    for key, column in history_columns(trainer.history).items():
        arrays[f"history/{key}"] = np.asarray(column, dtype=np.float64)
    meta = {
        "format": FORMAT,
        **extra,
        "run_id": trainer.run_id,
        "epoch": trainer.epoch, "step": trainer.step,
        "optimizer": {k: v for k, v in optimizer_state.items() if k != "state"},
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "rng": [g.bit_generator.state for g in trainer.generators()],
    }
    storage.save_arrays(path, arrays, meta)


def read(path: str | Path) -> tuple[dict[str, np.ndarray], CheckpointMeta]:
    """The arrays and metadata of a checkpoint file, its archive and metadata checked."""
    arrays, raw = storage.load_arrays(path)
    found = raw.get("format")
    if found != FORMAT:
        if isinstance(found, int) and not isinstance(found, bool) and found > FORMAT:
            raise CheckpointError(f"{path} is a training checkpoint of format {found}, newer "
                                  f"than this minidl reads ({FORMAT}); upgrade minidl")
        raise CheckpointError(f"{path} is not a minidl training checkpoint of format {FORMAT} "
                              f"(format: {str(found)[:40]}); is it a model.npz?")
    try:
        meta = CheckpointMeta.model_validate(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise CheckpointError(f"{path}: its metadata is malformed ({where}: {problem['msg']})"
                              ) from None
    return arrays, meta


def restore(trainer: Trainer, arrays: dict[str, np.ndarray], meta: CheckpointMeta,
            path: str | Path) -> None:
    """Put a checkpoint's state into ``trainer`` (built from ``meta.config``), checked first."""
    model = _section(arrays, "model/")
    expected = trainer.model.state_dict()  # parameters and buffers (running statistics)
    if set(model) != set(expected):
        raise CheckpointError(f"{path}: checkpoint from a different model: it holds model "
                              f"arrays {sorted(model)}, this trainer's model has "
                              f"{sorted(expected)}")
    for name, array in model.items():
        kinds = "f" if expected[name].dtype.kind == "f" else "biu"  # counters are integers
        _check_array(path, f"model/{name}", array, expected[name].shape, kinds)
    trainer.model.load_state_dict(model)

    kind = type(trainer.optimizer).__name__.lower()
    states: list[dict[str, Any]] = [{} for _ in trainer.optimizer.params]
    for key, value in _section(arrays, "optimizer/").items():
        index, _, name = key.partition("/")
        if not (index.isdigit() and int(index) < len(states)
                and name in OPTIMIZER_STATE.get(kind, {name})):
            raise CheckpointError(f"{path}: unexpected optimizer array 'optimizer/{key}' for "
                                  f"{kind}")
        if name == "t":
            if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
                raise CheckpointError(f"{path}: optimizer/{key} must be a step count")
            states[int(index)][name] = int(value)
        else:
            shape = trainer.optimizer.params[int(index)].shape
            _check_array(path, f"optimizer/{key}", value, shape)
            states[int(index)][name] = value
    if kind in ("adam", "adamw") and any(
            state and not {"m", "v", "t"} <= set(state) for state in states):
        raise CheckpointError(f"{path}: the {kind} state is incomplete (needs m, v and t)")
    try:
        trainer.optimizer.load_state_dict({**meta.optimizer.model_dump(), "state": states})
        if trainer.scheduler is not None and meta.scheduler is not None:
            trainer.scheduler.load_state_dict(meta.scheduler)
    except (MinidlError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: the optimizer or schedule state does not fit this "
                              f"config ({type(err).__name__}: {err})") from None

    generators = trainer.generators()
    if len(meta.rng) != len(generators):
        raise CheckpointError(f"{path}: {len(meta.rng)} random generator states for "
                              f"{len(generators)} generators")
    for index, (generator, state) in enumerate(zip(generators, meta.rng)):
        try:
            generator.bit_generator.state = state
        except (ValueError, TypeError, KeyError, OverflowError) as err:
            raise CheckpointError(f"{path}: random generator state {index} is unusable "
                                  f"({type(err).__name__}: {err})") from None

    columns = _section(arrays, "history/")
    for key, column in columns.items():
        if column.shape != (meta.epoch,) or column.dtype.kind != "f":
            raise CheckpointError(f"{path}: history/{key} has shape {column.shape}, expected "
                                  f"({meta.epoch},) floats for {meta.epoch} epochs")
    if meta.epoch and not np.array_equal(columns.get("epoch"), np.arange(1, meta.epoch + 1)):
        raise CheckpointError(f"{path}: the metric history is missing or its epochs are not "
                              f"1..{meta.epoch}")
    trainer.epoch, trainer.step = meta.epoch, meta.step
    trainer.history = [
        {key: int(values[i]) if key == "epoch" else float(values[i])
         for key, values in columns.items()}
        for i in range(meta.epoch)]


def _section(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def _check_array(path: str | Path, name: str, array: np.ndarray, shape: tuple[int, ...],
                 kinds: str = "f") -> None:
    if array.shape != tuple(shape):
        raise CheckpointError(f"{path}: checkpoint from a different model: {name} has shape "
                              f"{array.shape}, this trainer's has {tuple(shape)}")
    if array.dtype.kind not in kinds:
        raise CheckpointError(f"{path}: {name} has dtype {array.dtype}, expected "
                              f"{'floats' if kinds == 'f' else 'integers'}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CheckpointError(f"{path}: {name} holds NaN or inf")


def history_columns(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch metric rows as one list per metric (every row has the same keys)."""
    return {key: [row[key] for row in history] for key in (history[0] if history else {})}
