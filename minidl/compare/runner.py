"""Run every strategy on the same network and batch, and measure what changes.

Four measurements, each computed, never assumed (a strategy that puts 1/m in
twice shows up as a mismatch):

* where the 1/m went: per-layer norms of dZ, dA, dW, db, and each one's factor
  against ``absorbed``;
* equivalence: dW, db against ``absorbed`` times the strategy's cost factor,
  for one batch and after N training steps;
* stability: each strategy, dtype and batch size against its float64 self;
* accumulation: uneven micro-batches against one full batch.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from minidl.builders import Data, Task, build_data, build_model
from minidl.compare.gradients import (
    Network,
    factor_name,
    measured_factor,
    relative_difference,
    snapshot,
)
from minidl.config import Config
from minidl.data import load_builtin
from minidl.data.datasets import DATASETS
from minidl.errors import InvalidValueError
from minidl.resources import check_fits, run_bytes
from minidl.strategy import Strategy, resolve_strategy, strategy_index

REFERENCE = "absorbed"
TOLERANCE = 1e-9  # float64 agreement below this counts as equal
#: Micro-batch sizes for the accumulation panel of the plot; each leaves a short last one
#: on the planar batch of 400.
MICRO_BATCH_SWEEP = (24, 32, 48, 96, 150)


def installed_strategies() -> list[str]:
    """Every installed strategy's name, once, in registration order."""
    names: list[str] = []
    for _, info in strategy_index().values():
        if info.name not in names:
            names.append(info.name)
    return names


def compare(config: Config, strategies: Sequence[str] | None = None,
            dtypes: Sequence[str] = ("float16", "float32", "float64"),
            batch_sizes: Sequence[int] = (64, 1024, 16384, 65536), steps: int = 200,
            micro_batch: int = 32, strategy_options: dict[str, dict[str, Any]] | None = None,
            micro_batch_sweep: Sequence[int] = MICRO_BATCH_SWEEP) -> dict[str, Any]:
    """Every number of ``minidl compare``, as one JSON-able dict.

    ``strategy_options`` maps a strategy's name to its options (``{"rms": {"power": 0.5}}``).
    """
    options = dict(strategy_options or {})
    names = list(dict.fromkeys(resolve_strategy(n).name
                               for n in strategies or installed_strategies()))
    unused = sorted(set(options) - set(names))
    if unused:
        raise InvalidValueError(f"options given for {', '.join(map(repr, unused))}, which is "
                                f"not in this comparison ({', '.join(names)})")
    resolved = {name: resolve_strategy(name, options.get(name) or None)
                for name in dict.fromkeys([REFERENCE, *names])}
    rng = np.random.default_rng(config.train.seed)
    data = build_data(config.data, config.loss.name, config.model.outputs, rng)
    for m in batch_sizes:  # before the first allocation, not at the biggest batch
        check_fits(run_bytes(examples=m, features=data.features, hidden=config.model.hidden,
                             outputs=data.task.outputs, itemsize=8),
                   f"compare at batch size {m:,}")
    model = build_model(config.model, data.features, data.task.outputs, rng, rng, np.float64)
    network = Network.from_model(model)
    x, y = data.train.features, data.train.targets
    runs = {name: snapshot(network, data.task, x, y, strategy)
            for name, strategy in resolved.items()}
    factors = {name: runs[name].cost / runs[REFERENCE].cost for name in resolved}
    result: dict[str, Any] = {
        "m": len(x), "strategies": names, "reference": REFERENCE,
        "options": {name: resolved[name].options.model_dump()
                    for name in names if resolved[name].options is not None},
        "cost": {name: runs[name].cost for name in names},
        "cost_factor": {name: factors[name] for name in names},
        "cost_factor_name": {name: short_factor(factors[name], len(x)) for name in names},
        "lr": config.optimizer.lr,
    }
    result["where"] = _where(runs, factors, names, float(len(x)))
    result["equivalence"] = {
        "one_batch": {name: _leaf_difference(runs[name].leaves, runs[REFERENCE].leaves,
                                             factors[name]) for name in names},
        "after_steps": _after_steps(network, data.task, x, y, resolved, factors, names, steps,
                                    config.optimizer.lr),
        "steps": steps,
    }
    result["stability"] = _stability(config, network, data, resolved, names, dtypes,
                                     batch_sizes)
    result["accumulation"] = _accumulation(network, data.task, x, y, resolved, names,
                                           micro_batch)
    result["accumulation_sweep"] = [
        _accumulation(network, data.task, x, y, resolved, names, size)
        for size in micro_batch_sweep if 1 <= size < len(x)]
    dtype = np.float64  # so that a difference between curves is the strategies', not rounding
    result["curves"] = {name: _curve(network, data.task, x, y, resolved[name], steps,
                                     config.optimizer.lr / factors[name], dtype, factors[name])
                        for name in names}
    # The same run with the config's lr as is, for strategies whose cost is not a mean.
    result["curves_unscaled_lr"] = {
        name: _curve(network, data.task, x, y, resolved[name], steps, config.optimizer.lr,
                     dtype, factors[name])
        for name in names if not np.isclose(factors[name], 1.0, rtol=1e-9)}
    result["mismatches"] = [f"{row['row']} under {name}: {row['verdicts'][name]}"
                            for row in result["where"] for name in names
                            if not row["ok"][name]]
    return result


def _where(runs: dict[str, Any], factors: dict[str, float], names: list[str],
           m: float) -> list[dict[str, Any]]:
    reference = runs[REFERENCE]
    order = sorted(reference.intermediates, key=lambda k: (int(k[2:]), k[:2] != "dZ"))
    rows = []
    for row in [*order, *reference.leaves]:
        is_leaf = row in reference.leaves
        ref = (reference.leaves if is_leaf else reference.intermediates)[row]
        entry: dict[str, Any] = {"row": row, "norm": {}, "ratio": {}, "factor": {},
                                 "residual": {}, "ok": {}, "verdicts": {}, "short": {}}
        for name in names:
            got = (runs[name].leaves if is_leaf else runs[name].intermediates)[row]
            k, residual = measured_factor(got, ref)
            entry["norm"][name] = float(np.linalg.norm(got))
            entry["ratio"][name] = entry["norm"][name] / (float(np.linalg.norm(ref)) or 1.0)
            entry["factor"][name] = factor_name(k, m)
            entry["residual"][name] = residual
            # Leaves must be the gradient of the reported cost: absorbed's times the cost ratio.
            expected = factors[name] if is_leaf else k
            ok = residual < TOLERANCE and bool(np.isclose(k, expected, rtol=1e-9))
            entry["ok"][name] = ok
            entry["verdicts"][name] = _verdict(k, residual, expected, ok, is_leaf, m)
            entry["short"][name] = ("—" if name == REFERENCE else "MISMATCH" if not ok
                                    else _short_verdict(k, residual, m))
        rows.append(entry)
    return rows


def _verdict(k: float, residual: float, expected: float, ok: bool, is_leaf: bool,
             m: float) -> str:
    if not np.isfinite(k) or residual >= TOLERANCE:
        return f"MISMATCH: not a constant multiple of {REFERENCE}'s (residual {residual:.2g})"
    if not ok:
        return (f"MISMATCH: {factor_name(k, m)} x {REFERENCE}'s, but the reported cost is "
                f"{factor_name(expected, m)} x; not the gradient of its own cost")
    if np.isclose(k, 1.0, rtol=1e-9):
        return f"equal to {residual:.0e}"
    return f"differs by exactly {factor_name(k, m)}" + ("" if is_leaf else " (inside dZ/dA)")


def _short_verdict(k: float, residual: float, m: float) -> str:
    """A table cell: '= (4e-16)' for equal (to that relative difference), '× m' for a factor."""
    if np.isclose(k, 1.0, rtol=1e-9):
        return "= (0)" if residual == 0 else f"= ({residual:.0e})"
    return f"× {short_factor(k, m)}"


def short_factor(factor: float, m: float) -> str:
    """A factor as a table shows it: 1, m, 1/m, sqrt(m), 1/sqrt(m), or the number."""
    for value, name in ((1.0, "1"), (m, "m"), (1.0 / m, "1/m"), (np.sqrt(m), "sqrt(m)"),
                        (1.0 / np.sqrt(m), "1/sqrt(m)")):
        if np.isclose(factor, value, rtol=1e-9):
            return name
    return f"{factor:.5g}"


def _leaf_difference(got: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                     factor: float) -> float:
    return max(relative_difference(got[k], factor * reference[k]) for k in reference)


def _sgd(network: Network, task: Task, x: np.ndarray, y: np.ndarray, strategy: Strategy,
         steps: int, lr: float, dtype: Any) -> tuple[Network, list[float]]:
    """Plain full-batch gradient descent; returns the trained network and each step's cost."""
    current = Network([w.astype(dtype) for w in network.weights],
                      [b.astype(dtype) for b in network.biases], network.activation)
    costs = []
    for _ in range(steps):
        run = snapshot(current, task, x, y, strategy, dtype)
        costs.append(run.cost)
        for layer, (w, b) in enumerate(zip(current.weights, current.biases), start=1):
            w -= lr * run.leaves[f"dW{layer}"]
            b -= lr * run.leaves[f"db{layer}"]
    return current, costs


def _after_steps(network: Network, task: Task, x: np.ndarray, y: np.ndarray,
                 resolved: dict[str, Strategy], factors: dict[str, float], names: list[str],
                 steps: int, lr: float) -> dict[str, float]:
    """Weights after ``steps`` of SGD with lr / cost factor, against absorbed's (float64)."""
    trained = {name: _sgd(network, task, x, y, resolved[name], steps, lr / factors[name],
                          np.float64)[0] for name in resolved}
    ref = trained[REFERENCE]
    return {name: max(relative_difference(a, b) for a, b in zip(
        trained[name].weights + trained[name].biases, ref.weights + ref.biases))
        for name in names}


def _curve(network: Network, task: Task, x: np.ndarray, y: np.ndarray, strategy: Strategy,
           steps: int, lr: float, dtype: Any, factor: float) -> list[float]:
    """Mean per-example loss before each step (the reported cost over its cost factor)."""
    return [cost / factor for cost in _sgd(network, task, x, y, strategy, steps, lr, dtype)[1]]


def _stability(config: Config, network: Network, data: Data, resolved: dict[str, Strategy],
               names: list[str], dtypes: Sequence[str], batch_sizes: Sequence[int]
               ) -> list[dict[str, Any]]:
    rows = []
    task = data.task
    for m in batch_sizes:
        x, y = _batch(config, data, m)
        for name in names:
            reference = snapshot(network, task, x, y, resolved[name], np.float64)
            for dtype in dtypes:
                run = snapshot(network, task, x, y, resolved[name], np.dtype(dtype))
                rows.append({
                    "strategy": name, "dtype": dtype, "batch_size": m,
                    "rel_error": _leaf_difference(run.leaves, reference.leaves, 1.0),
                    "cost_finite": bool(np.isfinite(run.cost)),
                    "leaves": _counts(run.leaves, reference.leaves),
                    "intermediates": _counts(run.intermediates, reference.intermediates),
                })
    return rows


def _batch(config: Config, data: Data, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of m examples of the config's dataset, targets in the task's format.

    A built-in generator that takes ``n`` draws m fresh examples; any other dataset
    (digits, a .csv or .npz file) has a fixed size, so m of its training rows are drawn
    with replacement (seeded). Either way the features fit the network under test.
    """
    if "n" in inspect.signature(DATASETS.get(config.data.dataset, _fixed)).parameters:
        x, labels = load_builtin(config.data.dataset, **{**config.data.options, "n": m})
        return data.scale(x), data.task.format_targets(labels)
    rows = np.random.default_rng(config.train.seed).integers(0, len(data.train), size=m)
    return data.train.features[rows], data.train.targets[rows]


def _fixed() -> None:
    """Stands in for a dataset that is not a built-in generator (it takes no ``n``)."""


def _counts(got: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, int]:
    values = [np.asarray(a, np.float64) for a in got.values()]
    refs = [np.asarray(a, np.float64) for a in reference.values()]
    return {
        "inf": int(sum(np.isinf(v).sum() for v in values)),
        "nan": int(sum(np.isnan(v).sum() for v in values)),
        "underflow": int(sum(((v == 0) & (r != 0)).sum() for v, r in zip(values, refs))),
        "total": int(sum(v.size for v in values)),
    }


def _accumulation(network: Network, task: Task, x: np.ndarray, y: np.ndarray,
                  resolved: dict[str, Strategy], names: list[str], micro_batch: int
                  ) -> dict[str, Any]:
    """Micro-batches of ``micro_batch`` (the last one short) against one full batch."""
    m = len(x)
    parts = [slice(start, min(start + micro_batch, m)) for start in range(0, m, micro_batch)]
    result: dict[str, Any] = {"micro_batches": [p.stop - p.start for p in parts]}
    for name in names:
        full = snapshot(network, task, x, y, resolved[name])
        accumulated = snapshot(network, task, x, y, resolved[name], micro_batches=parts)
        rel_diff = _leaf_difference(accumulated.leaves, full.leaves, 1.0)
        # Dividing by the number of micro-batches is the recipe for per-batch means; where
        # accumulation is already exact it does not apply (None, shown as "—").
        divided = (None if rel_diff < TOLERANCE else
                   _leaf_difference(accumulated.leaves, full.leaves, float(len(parts))))
        result[name] = {"rel_diff": rel_diff, "rel_diff_divided_by_count": divided}
    return result
