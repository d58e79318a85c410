"""``Trainer``: epochs of (accumulated) mini-batches, metrics, hooks and checkpoints.

Every random draw comes from generators spawned from ``train.seed``, so the same
config gives bit-identical weights, and a checkpoint holds their states, so
``resume`` reaches the same final weights as an uninterrupted run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from minidl import checkpoint, nn, storage
from minidl.builders import Data, build_data, build_model, build_optimizer, build_scheduler
from minidl.checkpoint import history_columns as _history_columns
from minidl.config import Config, config_to_toml, validate_config
from minidl.data import DataLoader, Dataset
from minidl.distributed.training import DataParallel
from minidl.errors import (CheckpointError, ConfigError, OutputDirError, OutputWriteError,
                           TrainingDiverged)
from minidl.gradmode import no_grad
from minidl.manifest import CHECKPOINT_NAME, resolve_resume, write_manifest
from minidl.optim.diagnostics import divergence_hint
from minidl.pluginloading import plugin_name
from minidl.pluginmanager import get_plugin_manager
from minidl.resources import check_fits, run_bytes
from minidl.strategy import batch_reduce
from minidl.tensor import from_numpy


class Trainer:
    """Train the MLP a ``Config`` describes.

    Plugins named in ``config.plugins`` are registered only while ``fit`` runs.

    >>> from minidl.config import load_config
    >>> trainer = Trainer(load_config(overrides=["train.epochs=500", "output.dir="]))
    >>> final = trainer.fit()
    >>> final["train_accuracy"] > 0.8
    True
    """

    def __init__(self, config: Config, quiet: bool = True,
                 ranks: DataParallel | None = None) -> None:
        self.config, self.quiet = config, quiet
        #: The ranks of a data-parallel run (mpiexec); one process: every call a no-op.
        self.ranks = ranks if ranks is not None else DataParallel()
        self.pm = get_plugin_manager()
        self._plugins = self._import_plugins(config.plugins)
        self._build(config)

    def _import_plugins(self, specs: list[str]) -> list[tuple[str, object]]:
        """Import and check ``config.plugins`` now (a bad one fails before training), but
        register them only while ``fit`` runs, so they never fire for another trainer."""
        plugins = []
        for spec in specs:
            plugin = self.pm.import_plugin(spec, register=False)
            plugins.append((self.pm.get_name(plugin) or plugin_name(spec), plugin))
        return plugins

    def _build(self, config: Config) -> None:
        self.strategy = config.normalization.resolve()
        split_rng, init_rng, shuffle_rng, dropout_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.train.seed).spawn(4))
        self.data: Data = build_data(config.data, config.loss.name, config.model.outputs,
                                     split_rng)
        self.dtype = np.dtype(config.train.dtype)
        examples = len(self.data.train) + (len(self.data.val) if self.data.val else 0)
        check_fits(run_bytes(examples=examples, features=self.data.features,
                             hidden=config.model.hidden, outputs=self.data.task.outputs,
                             itemsize=self.dtype.itemsize, optimizer=config.optimizer.name),
                   f"training on {config.data.dataset} ({examples:,} examples, "
                   f"{self.data.features:,} features)")
        self.model = build_model(config.model, self.data.features, self.data.task.outputs,
                                 init_rng, dropout_rng, self.dtype)
        self.optimizer = build_optimizer(config.optimizer, list(self.model.parameters()))
        self.scheduler = build_scheduler(config.scheduler, self.optimizer, config.train.epochs)
        self.loader = DataLoader(self.data.train, batch_size=config.train.batch_size,
                                 shuffle=config.train.shuffle, seed=shuffle_rng,
                                 dtype=self.dtype)
        self.dropout_rng = dropout_rng
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.checkpoint_epoch: int | None = None  # of the last checkpoint this run wrote
        self.resume_notes: list[str] = []  # what --resume found odd in the directory
        self.output_dir = (Path(config.output.dir) if config.output.dir
                           and self.ranks.is_writer else None)  # rank 0 alone writes
        if self.output_dir is not None:
            try:  # now, not at the first checkpoint, perhaps 1,000 epochs in
                storage.ensure_writable_dir(self.output_dir)
            except OSError as err:
                raise OutputDirError(
                    f"output.dir {str(self.output_dir)!r} is not a writable directory "
                    f"({err.strerror or err}); choose another with --set output.dir=PATH, "
                    "or output.dir= to write nothing") from None

    # ---- the loop ----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until ``train.epochs`` (or a plugin stops it); return the final metrics."""
        added = []
        try:
            for name, plugin in self._plugins:
                if not self.pm.is_registered(plugin):
                    self.pm.register(plugin, name=name)
                    added.append(plugin)
            return self._fit()
        finally:
            for plugin in added:
                self.pm.unregister(plugin)

    def _fit(self) -> dict[str, Any]:
        epochs = self.config.train.epochs
        every = self.config.output.checkpoint_every or max(1, epochs // 10)
        observe = self.pm.call_observers
        self.ranks.start(self.model)  # rank 0's weights everywhere, at start and on resume
        observe("minidl_train_start", trainer=self)
        bar = self._progress_bar(epochs)
        try:
            while self.epoch < epochs:
                metrics = self._run_epoch()
                self.epoch += 1
                metrics["epoch"] = self.epoch
                if self.scheduler is not None:  # per epoch; the metrics show this epoch's lr
                    metrics["lr"] = self.scheduler.get_last_lr()[0]
                    self.scheduler.step()
                self.history.append(metrics)
                if self.output_dir and (self.epoch % every == 0 or self.epoch == epochs):
                    self.save_checkpoint(self.output_dir / CHECKPOINT_NAME)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", refresh=False)
                if any(observe("minidl_epoch_end", trainer=self, epoch=self.epoch,
                               metrics=metrics)):
                    break
        finally:
            if bar is not None:
                bar.close()
        observe("minidl_train_end", trainer=self, history=self.history)
        final = self.final_metrics()
        if self.output_dir:
            self.write_outputs(final)
        return final

    def _run_epoch(self) -> dict[str, float]:
        self.model.train()
        accumulate = self.config.train.accumulate
        loss_sum = correct = seen = 0.0
        pending: list[float] = []
        micro_batches = 0
        for x, y in self.ranks.batches(self.loader):  # this rank's shard of each batch
            micro_batches += 1
            if len(y) == 0:  # a batch smaller than the world leaves some ranks nothing
                if micro_batches % accumulate == 0:
                    self._optimizer_step(pending)
                    pending = []
                continue
            logits = self.model(x)
            losses = self.data.task.loss(logits, y, reduction="none")
            cost = batch_reduce(losses, strategy=self.strategy)
            if not np.isfinite(cost.data):
                raise TrainingDiverged(
                    f"the loss became {float(cost.data)} at epoch {self.epoch + 1}, step "
                    f"{self.step + 1}: {divergence_hint(self.dtype, self.optimizer)}")
            cost.backward()
            pending.append(float(cost.data))
            # In float64: in float16 the batch's sum overflows to inf past 65,504
            # (about 95,000 losses of 0.69), though every loss is fine.
            loss_sum += float(losses.data.sum(dtype=np.float64))
            accuracy = self.data.task.accuracy(logits.data, y.data)
            correct += (accuracy or 0.0) * len(y)
            seen += len(y)
            if micro_batches % accumulate == 0:
                self._optimizer_step(pending)
                pending = []
        if micro_batches % accumulate:  # the last, short group of micro-batches
            self._optimizer_step(pending)
        loss_sum, correct, seen = self.ranks.sum_over_ranks(loss_sum, correct, seen)
        metrics = {"train_loss": loss_sum / seen}
        if self.data.task.kind != "regression":
            metrics["train_accuracy"] = correct / seen
        if self.data.val is not None:
            metrics.update(self.evaluate(self.data.val, prefix="val_"))
        return metrics

    def _optimizer_step(self, costs: list[float]) -> None:
        self.ranks.combine(self.model.parameters(), self.strategy)  # the step's all-reduce
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1
        self.pm.call_observers("minidl_step_end", trainer=self, step=self.step,
                               loss=sum(costs) / max(len(costs), 1))

    def evaluate(self, dataset: Dataset, prefix: str = "") -> dict[str, float]:
        """Mean per-example loss and accuracy on ``dataset`` (eval mode, no graph)."""
        self.model.eval()
        with no_grad():
            x = from_numpy(dataset.features.astype(self.dtype, copy=False))
            y = dataset.targets
            y_tensor = from_numpy(y.astype(self.dtype, copy=False) if y.dtype.kind == "f" else y)
            logits = self.model(x)
            losses = self.data.task.loss(logits, y_tensor, reduction="none")
        self.model.train()
        result = {f"{prefix}loss": float(losses.data.astype(np.float64).mean())}
        accuracy = self.data.task.accuracy(logits.data, y)
        if accuracy is not None:
            result[f"{prefix}accuracy"] = accuracy
        return result

    def final_metrics(self) -> dict[str, Any]:
        final: dict[str, Any] = {"strategy": self.strategy.name, "epochs": self.epoch,
                                 "steps": self.step}
        final.update(self.evaluate(self.data.train, prefix="train_"))
        if self.data.val is not None:
            final.update(self.evaluate(self.data.val, prefix="val_"))
        return final

    def _progress_bar(self, epochs: int) -> Any:
        if self.quiet or not self.ranks.is_writer or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=epochs, initial=self.epoch, unit="epoch", file=sys.stderr,
                    desc=f"training ({self.strategy.name})", mininterval=0.2)

    # ---- files -------------------------------------------------------------------------
    def _generators(self) -> list[np.random.Generator]:
        dropouts = [m.generator for _, m in self.model.named_modules()
                    if isinstance(m, nn.Dropout)]
        return [self.loader.generator, self.dropout_rng, *dropouts]

    def save_checkpoint(self, path: str | Path) -> None:
        """Weights, optimizer state, config, epoch and RNG states, written atomically.

        In the output directory, the manifest then names the new checkpoint.
        """
        path = Path(path)
        self._write(path, lambda: checkpoint.save(self, path))
        if self.output_dir is not None and _same_file(path, self.output_dir / CHECKPOINT_NAME):
            self.checkpoint_epoch = self.epoch
            self._write(self.output_dir / "manifest.json", lambda: write_manifest(
                self.output_dir, [CHECKPOINT_NAME], self.epoch, self.step))

    @classmethod
    def from_checkpoint(cls, path: str | Path, quiet: bool = True) -> Trainer:
        """A trainer restored from ``save_checkpoint``, ready to continue ``fit()``.

        ``path`` is a checkpoint or a run directory; anything wrong with the file is a
        ``CheckpointError`` (a ``ValueError``) naming it.
        """
        path, notes = resolve_resume(path)
        arrays, meta = checkpoint.read(path)
        try:
            config = validate_config(meta.config)
        except ConfigError as err:
            raise CheckpointError(f"{path}: the config it holds does not validate now: {err}"
                                  ) from None
        trainer = cls(config, quiet=quiet)
        checkpoint.restore(trainer, arrays, meta, path)
        if trainer.output_dir is not None and _same_file(
                path, trainer.output_dir / CHECKPOINT_NAME):
            trainer.checkpoint_epoch = trainer.epoch
        trainer.resume_notes = notes
        return trainer

    def write_outputs(self, final: dict[str, Any]) -> None:
        """The final model, the resolved config and the metrics, each written atomically,
        then the manifest naming them with the checkpoint of the same epoch."""
        if self.output_dir is None:
            return
        directory, stamp = self.output_dir, {"epoch": self.epoch, "step": self.step}
        if self.checkpoint_epoch != self.epoch:  # e.g. a plugin stopped the run early
            self.save_checkpoint(directory / CHECKPOINT_NAME)
        self._write(directory / "model.npz", lambda: storage.save_arrays(
            directory / "model.npz", self.model.state_dict(),
            {"task": self.data.task.kind, "scaling": self.data.scaling, **stamp}))
        self._write(directory / "config.toml", lambda: storage.atomic_write_text(
            directory / "config.toml", config_to_toml(self.config)))
        self._write(directory / "metrics.json", lambda: storage.atomic_write_json(
            directory / "metrics.json",
            {**stamp, "final": final, "history": _history_columns(self.history)}))
        self._write(directory / "manifest.json", lambda: write_manifest(
            directory, [CHECKPOINT_NAME, "model.npz", "config.toml", "metrics.json"],
            self.epoch, self.step))

    def _write(self, target: Path, write: Any) -> None:
        """Run one atomic write; an ``OSError`` becomes one ``OutputWriteError`` message."""
        try:
            write()
        except OSError as err:
            kept = (f"the checkpoint of epoch {self.checkpoint_epoch} is still loadable: "
                    f"minidl train --resume {self.output_dir}"
                    if self.checkpoint_epoch is not None and self.output_dir is not None
                    else "no checkpoint was written by this run")
            raise OutputWriteError(f"cannot write {target.name} in {target.parent} at epoch "
                                   f"{self.epoch} ({err.strerror or err}); {kept}") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False
