"""``Trainer``: epochs of (accumulated) mini-batches of any model, with metrics, the
training hooks, a progress bar, atomic checkpoints and a bit-exact resume.

This is minidl's one training loop: ``minidl train`` builds a model, data and
optimizer from its config and hands them to it (``minidl/trainer.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from minidl import nn, storage
from minidl.data import DataLoader, Dataset
from minidl.distributed.training import DataParallel
from minidl.errors import (InvalidTypeError, InvalidValueError, OutputDirError, PluginError,
                           TrainingDiverged)
from minidl.gradmode import no_grad
from minidl.optim import Optimizer
from minidl.optim.diagnostics import divergence_hint
from minidl.pluginloading import plugin_name
from minidl.pluginmanager import get_plugin_manager
from minidl.strategy import Strategy, normalization, resolve_strategy
from minidl.tensor import Tensor, from_numpy
from minidl.training.batch_loss import cost_and_total
from minidl.training.outputs import RunOutputs
from minidl.training.step import TrainStep

Metric = Callable[[np.ndarray, np.ndarray], float]


class Trainer(RunOutputs):
    """Fit any ``Module``, as a PyTorch user writes the loop, with nothing left out.

    ``loss`` is a loss module or a function of ``(outputs, targets)`` returning
    per-example losses or a batch-reduced cost; ``train_data`` a ``Dataset`` (batched
    by ``batch_size``, shuffled from ``seed``) or a ``DataLoader``. ``metrics`` are
    functions of ``(outputs, targets)`` as numpy arrays (``minidl.metrics`` or yours),
    reported as ``train_<name>`` (batch means over the epoch) and ``val_<name>``.
    ``accumulate`` micro-batches make one optimizer step; ``strategy`` (default: the
    one active when ``fit`` runs) normalizes every batch; ``scheduler`` steps once per
    epoch. With ``output_dir``, checkpoints and ``metrics.json`` are written there,
    atomically; ``fit(resume=path)`` continues a checkpoint to the same final weights.
    A new run refuses an ``output_dir`` that holds another run's checkpoint unless
    ``overwrite=True`` (which deletes that run's files first). ``compile`` (default on)
    replays each micro-batch's forward, loss and backward with ``mdl.compile``,
    bit-identical to eager; a loss or model it cannot replay runs eagerly, and
    ``trainer.train_step.eager_reason`` says why (so does ``MINIDL_DEBUG=1``).

    >>> import numpy as np, minidl as mdl
    >>> X, y = mdl.data.moons(n=200)
    >>> model = mdl.nn.Sequential(mdl.nn.Linear(2, 16, generator=0), mdl.nn.Tanh(),
    ...                           mdl.nn.Linear(16, 2, generator=1))
    >>> trainer = mdl.Trainer(model, mdl.nn.CrossEntropyLoss(),
    ...                       mdl.optim.Adam(model.parameters(), lr=0.05),
    ...                       mdl.data.Dataset(X, y), batch_size=50, epochs=30,
    ...                       metrics=[mdl.metrics.accuracy], quiet=True)
    >>> trainer.fit()["train_accuracy"] > 0.95
    True
    """

    def __init__(self, model: nn.Module, loss: Callable[..., Tensor], optimizer: Optimizer,
                 train_data: Dataset | Iterable[tuple[Tensor, Tensor]],
                 val_data: Dataset | DataLoader | None = None,
                 metrics: Mapping[str, Metric] | Sequence[Metric] | None = None, *,
                 epochs: int = 1, batch_size: int | None = None, shuffle: bool = True,
                 seed: int | np.random.Generator = 0, accumulate: int = 1,
                 strategy: str | Strategy | None = None, scheduler: Any = None,
                 output_dir: str | Path | None = None, checkpoint_every: int = 0,
                 quiet: bool = False, plugins: Sequence[Any] = (), dtype: Any = None,
                 generators: Sequence[np.random.Generator] = (), overwrite: bool = False,
                 ranks: DataParallel | None = None, compile: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(f"Trainer: model must be a minidl nn.Module, got "
                                   f"{type(model).__name__}")
        if not callable(loss):
            raise InvalidTypeError("Trainer: loss must be a loss module or a function of "
                                   f"(outputs, targets), got {type(loss).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"Trainer: optimizer must be a minidl optimizer, got "
                                   f"{type(optimizer).__name__}")
        for name, value in (("epochs", epochs), ("accumulate", accumulate)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidValueError(f"Trainer: {name} must be a positive integer, got "
                                        f"{value!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or (
                checkpoint_every < 0):
            raise InvalidValueError("Trainer: checkpoint_every must be an integer >= 0 (0: ten "
                                    f"checkpoints per run), got {checkpoint_every!r}")
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.dtype = np.dtype(dtype) if dtype is not None else _parameter_dtype(model)
        if isinstance(train_data, Dataset):
            train_data = DataLoader(train_data, batch_size=batch_size, shuffle=shuffle,
                                    seed=seed, dtype=self.dtype)
        elif not hasattr(train_data, "__iter__"):
            raise InvalidTypeError("Trainer: train_data must be a Dataset or a DataLoader "
                                   f"(batches of (x, y)), got {type(train_data).__name__}")
        self.loader = train_data
        self.val_data = _as_dataset(val_data, "val_data") if val_data is not None else None
        self.metrics = _named_metrics(metrics)
        self.epochs, self.accumulate = epochs, accumulate
        self.checkpoint_every, self.quiet = checkpoint_every, quiet
        for name, flag in (("overwrite", overwrite), ("compile", compile)):
            if not isinstance(flag, bool):
                raise InvalidTypeError(f"Trainer: {name} must be True or False, got {flag!r}")
        self.overwrite, self.compile = overwrite, compile
        #: The micro-batch step of the current (or last) ``fit``.
        self.train_step: TrainStep | None = None
        self.run_id: str | None = None  # chosen when a new run starts; a resume keeps its own
        self._resumed_from: Path | None = None  # the checkpoint this trainer was restored from
        self._strategy, scoped = _resolve_scoped(strategy)
        self.extra_generators = list(generators)
        self.pm = get_plugin_manager()
        # Plugins a run names (its strategy's included) are registered only while it fits.
        self._plugins = self._import_plugins(plugins) + scoped
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.checkpoint_epoch: int | None = None  # of the last checkpoint in output_dir
        self.resume_notes: list[str] = []  # what a resume found odd in the directory
        #: The ranks of a data-parallel run (mpiexec); one process: every call a no-op.
        self.ranks = ranks if ranks is not None else DataParallel()
        # Rank 0 alone writes files.
        self.output_dir = Path(output_dir) if output_dir and self.ranks.is_writer else None
        if self.output_dir is not None:
            try:  # now, not at the first checkpoint, perhaps 1,000 epochs in
                storage.ensure_writable_dir(self.output_dir)
            except OSError as err:
                raise OutputDirError(
                    f"{self.output_dir_setting[0]} {str(self.output_dir)!r} is not a writable "
                    f"directory ({err.strerror or err}); {self.output_dir_setting[1]}") from None

    @property
    def strategy(self) -> Strategy:
        """The normalization strategy of this run (the active one unless one was given)."""
        return self._strategy if self._strategy is not None else resolve_strategy(None)

    def _import_plugins(self, plugins: Sequence[Any]) -> list[tuple[str | None, object]]:
        """Import ``plugins`` now (a bad one fails before training), but register them only
        while ``fit`` runs, so they never fire for another trainer."""
        imported = []
        for plugin in plugins:
            if isinstance(plugin, tuple):  # (name, plugin), already imported
                imported.append(plugin)
            elif isinstance(plugin, str):
                imported.append(import_plugin(plugin))
            else:
                imported.append((self.pm.get_name(plugin), plugin))
        return imported

    # ---- the loop ----------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Train until ``epochs`` (or a plugin stops it); return the final metrics.

        ``resume``: a checkpoint this trainer's setup wrote; training continues from it
        and reaches the same final weights as a run that was never interrupted.
        """
        if resume is not None:
            self.load_checkpoint(resume)
        self._open_output_dir()
        strategy = self.strategy  # fixed for the whole run
        added = []
        try:
            for name, plugin in self._plugins:
                if not self.pm.is_registered(plugin):
                    self.pm.register(plugin, name=name)
                    added.append(plugin)
            with normalization(strategy):
                self.train_step = TrainStep(self.model, self.loss, strategy, self.compile)
                return self._fit()
        finally:
            for plugin in added:
                self.pm.unregister(plugin)

    def _fit(self) -> dict[str, Any]:
        every = self.checkpoint_every or max(1, self.epochs // 10)
        observe = self.pm.call_observers
        self.ranks.start(self.model)  # rank 0's weights everywhere, at start and on resume
        observe("minidl_train_start", trainer=self)
        bar = self._progress_bar()
        try:
            while self.epoch < self.epochs:
                metrics = self._run_epoch()
                self.epoch += 1
                metrics["epoch"] = self.epoch
                if self.scheduler is not None:  # per epoch; the metrics show this epoch's lr
                    metrics["lr"] = self.scheduler.get_last_lr()[0]
                    self.scheduler.step()
                self.history.append(metrics)
                if self.output_dir and (self.epoch % every == 0 or self.epoch == self.epochs):
                    self.checkpoint_run()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", refresh=False)
                if self._plugin_stops(metrics):
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
        strategy, train_step = self.strategy, self.train_step  # fit() built the step
        loss_sum = seen = examples = 0.0
        metric_sums = dict.fromkeys(self.metrics, 0.0)
        pending: list[float] = []
        micro_batches = 0
        for x, y in self.ranks.batches(self.loader):  # this rank's shard of each batch
            micro_batches += 1
            if len(y) == 0:  # a batch smaller than the world leaves some ranks nothing
                if micro_batches % self.accumulate == 0:
                    self._optimizer_step(pending)
                    pending = []
                continue
            batch = train_step(x, y)  # forward, loss, backward
            cost = float(batch.cost.data)
            if not np.isfinite(cost):  # no optimizer step has used these gradients yet
                raise TrainingDiverged(
                    f"the loss became {cost} at epoch {self.epoch + 1}, step "
                    f"{self.step + 1}: {self._divergence_hint(strategy)}")
            pending.append(cost)
            loss_sum += batch.loss_sum
            seen += batch.count
            examples += len(y)  # metrics are weighted by examples, the loss by its count
            targets = y.data if isinstance(y, Tensor) else np.asarray(y)
            for name, metric in self.metrics.items():
                metric_sums[name] += metric(batch.outputs.data, targets) * len(targets)
            if micro_batches % self.accumulate == 0:
                self._optimizer_step(pending)
                pending = []
        if micro_batches % self.accumulate:  # the last, short group of micro-batches
            self._optimizer_step(pending)
        loss_sum, seen, examples, *sums = self.ranks.sum_over_ranks(
            loss_sum, seen, examples, *metric_sums.values())
        metric_sums = dict(zip(metric_sums, sums))
        if not seen:
            raise InvalidValueError("Trainer: the training data gave no batch (is it empty, "
                                    "or drop_last with fewer examples than batch_size?)")
        metrics = {"train_loss": loss_sum / seen}
        for name, value in metric_sums.items():  # each batch's value, weighted by its size
            metrics[f"train_{name}"] = value / examples
        if self.val_data is not None:
            metrics.update(self.evaluate(self.val_data, prefix="val_"))
        return metrics

    def _divergence_hint(self, strategy: Strategy) -> str:
        hint = divergence_hint(self.dtype, self.optimizer)
        if strategy.built_in:
            return hint
        return (f"{hint}; or the strategy {strategy.name!r} (plugin {strategy.plugin_name!r}) "
                "may be at fault: check it with mdl.testing.check_strategy")

    def _plugin_stops(self, metrics: dict[str, float]) -> bool:
        """Ask ``minidl_epoch_end`` whether to stop: any plugin's True stops; anything but
        True, False or None is that plugin's mistake, named."""
        answers = self.pm.call_each("minidl_epoch_end", trainer=self, epoch=self.epoch,
                                    metrics=metrics)
        for plugin, answer in answers:
            if answer is not None and not isinstance(answer, (bool, np.bool_)):
                raise PluginError(f"plugin {plugin!r} returned {answer!r:.80} from hook "
                                  "minidl_epoch_end; it must return True (stop training), "
                                  "False or None")
        return any(bool(answer) for _, answer in answers)

    def _optimizer_step(self, costs: list[float]) -> None:
        self.ranks.combine(self.model.parameters(), self.strategy)  # the step's all-reduce
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1
        self.pm.call_observers("minidl_step_end", trainer=self, step=self.step,
                               loss=sum(costs) / max(len(costs), 1))

    def evaluate(self, data: Dataset | DataLoader, prefix: str = "") -> dict[str, float]:
        """Mean per-example loss and each metric on ``data`` (eval mode, no graph kept)."""
        dataset = _as_dataset(data, "data")
        self.model.eval()
        try:
            with no_grad():
                x = from_numpy(dataset.features.astype(self.dtype, copy=False))
                y = dataset.targets
                y_tensor = from_numpy(y.astype(self.dtype, copy=False) if y.dtype.kind == "f"
                                      else y)
                outputs = self.model(x)
            # The loss's own graph only (outputs as a fresh leaf), so a batch-reduced cost
            # still shows its per-example losses; the model's graph is not recorded.
            leaf = Tensor(outputs.data, requires_grad=True)
            with normalization(self.strategy):
                _, total, count = cost_and_total(self.loss(leaf, y_tensor), self.strategy)
        finally:
            self.model.train()
        result = {f"{prefix}loss": total / count}
        for name, metric in self.metrics.items():
            result[f"{prefix}{name}"] = metric(outputs.data, y)
        return result

    def final_metrics(self) -> dict[str, Any]:
        final: dict[str, Any] = {"strategy": self.strategy.name, "epochs": self.epoch,
                                 "steps": self.step}
        dataset = getattr(self.loader, "dataset", None)
        if isinstance(dataset, Dataset):
            final.update(self.evaluate(dataset, prefix="train_"))
        elif self.history:  # a loader we cannot re-read without disturbing it
            final.update({k: v for k, v in self.history[-1].items() if k.startswith("train_")})
        if self.val_data is not None:
            final.update(self.evaluate(self.val_data, prefix="val_"))
        return final

    def _progress_bar(self) -> Any:
        if self.quiet or not self.ranks.is_writer or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=self.epochs, initial=self.epoch, unit="epoch", file=sys.stderr,
                    desc=f"training ({self.strategy.name})", mininterval=0.2)

    # ---- files (the rest: training/outputs.py) ------------------------------------
    def generators(self) -> list[np.random.Generator]:
        """Every random generator the run draws from, in a fixed order (for checkpoints)."""
        loader = getattr(self.loader, "generator", None)
        dropouts = [m.generator for _, m in self.model.named_modules()
                    if isinstance(m, nn.Dropout)]
        return [*([loader] if loader is not None else []), *self.extra_generators, *dropouts]


def _resolve_scoped(strategy: Any) -> tuple[Strategy | None, list[tuple[str | None, object]]]:
    """Resolve a run's strategy; a plugin this registers (a ``.py`` file or dotted path
    named for this run) is unregistered again and returned, to be active only while
    the run fits, so its observer hooks never fire for another trainer."""
    if strategy is None:
        return None, []
    pm = get_plugin_manager()
    before = set(pm.get_plugins())
    resolved = resolve_strategy(strategy)
    scoped = []
    for plugin in [p for p in pm.get_plugins() if p not in before]:
        scoped.append((pm.get_name(plugin), plugin))
        pm.unregister(plugin)
    return resolved, scoped


def import_plugin(spec: str) -> tuple[str, object]:
    """Import and check a plugin (dotted path or ``.py`` file) without registering it:
    ``(name, module)``."""
    pm = get_plugin_manager()
    module = pm.import_plugin(spec, register=False)
    return pm.get_name(module) or plugin_name(spec), module


def _parameter_dtype(model: nn.Module) -> np.dtype:
    for param in model.parameters():
        if param.dtype.kind == "f":
            return param.dtype
    from minidl.dtypes import get_default_dtype

    return np.dtype(get_default_dtype())


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(getattr(data, "dataset", None), Dataset):
        return data.dataset
    raise InvalidTypeError(f"Trainer: {name} must be a Dataset or a DataLoader over one, got "
                           f"{type(data).__name__}")


def _named_metrics(metrics: Any) -> dict[str, Metric]:
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        named = dict(metrics)
    elif isinstance(metrics, (list, tuple)):
        named = {}
        for metric in metrics:
            function = getattr(metric, "func", metric)  # a functools.partial's function
            named[getattr(function, "__name__", type(metric).__name__)] = metric
    else:
        raise InvalidTypeError("Trainer: metrics must be a list of functions or a dict of "
                               f"name: function, got {type(metrics).__name__}")
    for name, metric in named.items():
        if not callable(metric):
            raise InvalidTypeError(f"Trainer: metric {name!r} is not callable")
    return named

