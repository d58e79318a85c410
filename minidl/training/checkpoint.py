"""A trainer's checkpoint: weights, optimizer and scheduler state, counters, history and
every random generator's state, so a resumed run reaches the same final weights.

One ``.npz`` of arrays plus one JSON entry (``minidl.storage``; no pickle), written
atomically. Format 1 is the one ``minidl train`` has always written; a config-built
trainer adds its config to the metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minidl import storage
from minidl.errors import CheckpointError, MinidlError

if TYPE_CHECKING:
    from minidl.training.loop import Trainer

FORMAT = 1


def save_checkpoint(trainer: Trainer, path: str | Path, extra: dict[str, Any]) -> None:
    """Write ``trainer``'s state to ``path`` atomically; ``extra`` joins the metadata."""
    arrays = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    optimizer_state = trainer.optimizer.state_dict()
    for index, state in enumerate(optimizer_state["state"]):
        for key, value in state.items():
            arrays[f"optimizer/{index}/{key}"] = np.asarray(value)
    # History as arrays, not JSON: a checkpoint every epoch stays cheap in long runs.
    for key, column in history_columns(trainer.history).items():
        arrays[f"history/{key}"] = np.asarray(column, dtype=np.float64)
    scheduler = trainer.scheduler
    meta = {
        "format": FORMAT,
        **extra,
        "epoch": trainer.epoch, "step": trainer.step,
        "optimizer": {k: v for k, v in optimizer_state.items() if k != "state"},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": [g.bit_generator.state for g in trainer.generators()],
    }
    storage.save_arrays(path, arrays, meta)


def read_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a training checkpoint; ``CheckpointError`` if it is not one."""
    arrays, meta = storage.load_arrays(path)
    if meta.get("format") != FORMAT:
        newer = isinstance(meta.get("format"), int) and meta["format"] > FORMAT
        raise CheckpointError(
            f"{path} is a training checkpoint of format {meta['format']}, newer than this "
            f"minidl reads ({FORMAT}); upgrade minidl" if newer else
            f"{path} is not a minidl training checkpoint")
    return arrays, meta


def restore_checkpoint(trainer: Trainer, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                       path: str | Path) -> None:
    """Load a checkpoint into a trainer built like the one that wrote it."""
    try:
        trainer.model.load_state_dict({k.removeprefix("model/"): v for k, v in arrays.items()
                                       if k.startswith("model/")})
        states: list[dict[str, Any]] = [{} for _ in trainer.optimizer.params]
        for key, value in arrays.items():
            if key.startswith("optimizer/"):
                _, index, name = key.split("/", 2)
                if int(index) >= len(states):
                    raise CheckpointError(f"optimizer state for parameter {index}, but the "
                                          f"optimizer has {len(states)} parameters")
                states[int(index)][name] = value
        trainer.optimizer.load_state_dict({**meta["optimizer"], "state": states})
    except (MinidlError, KeyError) as err:
        raise CheckpointError(f"{path} does not fit this trainer: {err}") from None
    if trainer.scheduler is not None and meta.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(meta["scheduler"])
    generators = trainer.generators()
    if len(generators) != len(meta["rng"]):
        raise CheckpointError(f"{path} holds {len(meta['rng'])} random generator states, this "
                              f"trainer has {len(generators)} (data loader, dropout layers...); "
                              "build the trainer as the one that wrote the checkpoint")
    for generator, state in zip(generators, meta["rng"]):
        generator.bit_generator.state = state
    trainer.epoch, trainer.step = meta["epoch"], meta["step"]
    columns = {k.removeprefix("history/"): v for k, v in arrays.items()
               if k.startswith("history/")}
    trainer.history = [
        {key: int(values[i]) if key == "epoch" else float(values[i])
         for key, values in columns.items()}
        for i in range(trainer.epoch)]


def history_columns(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch metric rows as one list per metric (every row has the same keys)."""
    return {key: [row[key] for row in history] for key in (history[0] if history else {})}
