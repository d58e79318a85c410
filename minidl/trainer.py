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
from typing import Any, Mapping

import numpy as np

from minidl import models, storage
from minidl.builders import Data, build_data, build_model, build_optimizer, build_scheduler
from minidl.config import Config, config_to_toml
from minidl.data import DataLoader
from minidl.distributed.training import DataParallel
from minidl.errors import OutputDirError, TrainingDiverged
from minidl.manifest import CHECKPOINT_NAME, resolve_resume
from minidl.resources import check_fits, run_bytes
from minidl.resume import resume_config
from minidl.training import checkpoint, loop

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
    occupied_exits = ("pass --overwrite (output.overwrite = true in a config)",
                      "minidl train --resume {directory}")

    def __init__(self, config: Config, quiet: bool = True,
                 ranks: DataParallel | None = None) -> None:
        self.config = config
        plugins = [loop.import_plugin(spec) for spec in config.plugins]
        split_rng, init_rng, shuffle_rng, dropout_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.train.seed).spawn(4))
        self.data: Data = build_data(config.data, config.loss.name, config.model.outputs,
                                     split_rng)
        dtype = np.dtype(config.train.dtype)
        examples = len(self.data.train) + (len(self.data.val) if self.data.val else 0)
        check_fits(run_bytes(examples=examples, features=self.data.features,
                             hidden=config.model.hidden, outputs=self.data.task.outputs,
                             itemsize=dtype.itemsize, optimizer=config.optimizer.name),
                   f"training on {config.data.dataset} ({examples:,} examples, "
                   f"{self.data.features:,} features)")
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
            strategy=config.normalization, scheduler=scheduler,
            output_dir=config.output.dir or None,
            checkpoint_every=config.output.checkpoint_every, quiet=quiet, plugins=plugins,
            dtype=dtype, generators=[dropout_rng], overwrite=config.output.overwrite,
            ranks=ranks, compile=config.train.compile)
        self.dropout_rng = dropout_rng

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json")}

    @classmethod
    def from_checkpoint(cls, path: str | Path, quiet: bool = True, *,
                        config: Config | Mapping[str, Any] | None = None,
                        trust_plugins: bool = False,
                        ranks: DataParallel | None = None) -> Trainer:
        """A trainer restored from a checkpoint, ready to continue ``fit()``.

        ``path`` is a checkpoint or a run directory; anything wrong with the file is a
        ``CheckpointError`` (a ``ValueError``) naming it. The plugins, strategy file or
        model factory the checkpoint's config names are imported only if ``config`` (the
        config the run started with; only ``output`` may differ) or ``trust_plugins``
        says so (``minidl.resume``). Outputs go to ``config``'s ``output.dir``, else to the
        run directory holding the checkpoint.
        """
        resolved, notes = resolve_resume(path)
        arrays, meta = checkpoint.read(resolved)
        trainer = cls(resume_config(meta.config, resolved, config, trust_plugins), quiet=quiet,
                      ranks=ranks)
        trainer.restore_checkpoint(resolved, arrays, meta)
        trainer.resume_notes = notes
        return trainer

    def write_final_files(self, directory: Path, final: dict[str, Any],
                          stamp: dict[str, int]) -> list[str]:
        """The final model (architecture, weights, input scaling), the resolved config and
        the metrics, each written atomically."""
        self._write(directory / "model.npz", lambda: models.save(
            self.model, directory / "model.npz", task=self.data.task.kind,
            scaling=self.data.scaling, stamp=stamp))
        self._write(directory / "config.toml", lambda: storage.atomic_write_text(
            directory / "config.toml", config_to_toml(self.config)))
        return ["model.npz", "config.toml", *super().write_final_files(directory, final, stamp)]
