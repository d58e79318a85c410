"""The config-driven trainer of ``minidl train``: builds data, model, optimizer and
schedule from a ``Config``, then trains them with the one training loop,
``minidl.training.Trainer``.

Every random draw comes from generators spawned from ``train.seed``, so the same
config gives bit-identical weights, and a checkpoint holds their states, so
``resume`` reaches the same final weights as an uninterrupted run.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from minidl import models, storage
from minidl.builders import Data, build_data, build_model, build_optimizer, build_scheduler
from minidl.config import Config, config_to_toml
from minidl.data import DataLoader
from minidl.errors import CheckpointError, OutputDirError, TrainingDiverged
from minidl.training import loop
from minidl.training.checkpoint import read_checkpoint, restore_checkpoint

CHECKPOINT_NAME = loop.CHECKPOINT_NAME

__all__ = ["CHECKPOINT_NAME", "OutputDirError", "Trainer", "TrainingDiverged"]


class Trainer(loop.Trainer):
    """Train the model a ``Config`` describes (``minidl train``).

    Plugins named in ``config.plugins`` are registered only while ``fit`` runs.

    >>> from minidl.config import load_config
    >>> trainer = Trainer(load_config(overrides=["train.epochs=500", "output.dir="]))
    >>> final = trainer.fit()
    >>> final["train_accuracy"] > 0.8
    True
    """

    output_dir_setting = ("output.dir", "choose another with --set output.dir=PATH, or "
                          "output.dir= to write nothing")

    def __init__(self, config: Config, quiet: bool = True) -> None:
        self.config = config
        plugins = [loop.import_plugin(spec) for spec in config.plugins]
        strategy = config.normalization.resolve()
        split_rng, init_rng, shuffle_rng, dropout_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.train.seed).spawn(4))
        self.data: Data = build_data(config.data, config.loss.name, config.model.outputs,
                                     split_rng)
        dtype = np.dtype(config.train.dtype)
        model = build_model(config.model, self.data.features, self.data.task.outputs,
                            init_rng, dropout_rng, dtype, plugins=[p for _, p in plugins])
        optimizer = build_optimizer(config.optimizer, list(model.parameters()))
        scheduler = build_scheduler(config.scheduler, optimizer, config.train.epochs)
        loader = DataLoader(self.data.train, batch_size=config.train.batch_size,
                            shuffle=config.train.shuffle, seed=shuffle_rng, dtype=dtype)
        task = self.data.task
        super().__init__(
            model, functools.partial(task.loss, reduction="none"), optimizer, loader,
            val_data=self.data.val,
            metrics={} if task.kind == "regression" else {"accuracy": task.accuracy},
            epochs=config.train.epochs, accumulate=config.train.accumulate,
            strategy=strategy, scheduler=scheduler, output_dir=config.output.dir or None,
            checkpoint_every=config.output.checkpoint_every, quiet=quiet, plugins=plugins,
            dtype=dtype, generators=[dropout_rng])
        self.dropout_rng = dropout_rng

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json")}

    @classmethod
    def from_checkpoint(cls, path: str | Path, quiet: bool = True) -> Trainer:
        """A trainer restored from ``save_checkpoint``, ready to continue ``fit()``."""
        arrays, meta = read_checkpoint(path)
        if "config" not in meta:
            raise CheckpointError(f"{path} was written by mdl.Trainer from Python, without a "
                                  "config; resume it there: build the same trainer and call "
                                  "trainer.fit(resume=path)")
        trainer = cls(Config.model_validate(meta["config"]), quiet=quiet)
        restore_checkpoint(trainer, arrays, meta, path)
        return trainer

    def write_outputs(self, final: dict[str, Any]) -> None:
        """The final model (architecture, weights, input scaling), the resolved config and
        the metrics, each written atomically."""
        if self.output_dir is None:
            return
        models.save(self.model, self.output_dir / "model.npz", task=self.data.task.kind,
                    scaling=self.data.scaling)
        storage.atomic_write_text(self.output_dir / "config.toml", config_to_toml(self.config))
        super().write_outputs(final)
