"""One network, one batch, one strategy: every dZ, dA, dW and db, and what they mean.

The network is the MLP a config describes, run layer by layer so each
pre-activation Z and activation A can keep its gradient. Weights live once in
float64 and are cast to the dtype under test, so every run sees the same network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minidl import nn
from minidl.builders import Task
from minidl.nn import functional as F
from minidl.strategy import Strategy, batch_reduce
from minidl.tensor import Tensor

ACTIVATIONS = {nn.Tanh: F.tanh, nn.ReLU: F.relu, nn.Sigmoid: F.sigmoid}


@dataclass
class Network:
    """Float64 master weights (W of shape (out, in)) and the activation between layers."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: Any

    @classmethod
    def from_model(cls, model: nn.Sequential) -> Network:
        linears = [m for m in model.children() if isinstance(m, nn.Linear)]
        activation = next((ACTIVATIONS[type(m)] for m in model.children()
                           if type(m) in ACTIVATIONS), F.tanh)
        return cls([layer.weight.data.astype(np.float64) for layer in linears],
                   [layer.bias.data.astype(np.float64) for layer in linears], activation)


@dataclass
class Snapshot:
    """What one forward and backward pass left behind, by the course's names."""

    cost: float
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)  # dZ1, dA1, dZ2 ...
    leaves: dict[str, np.ndarray] = field(default_factory=dict)  # dW1, db1, dW2 ...


def snapshot(network: Network, task: Task, x: np.ndarray, y: np.ndarray, strategy: Strategy,
             dtype: Any = np.float64, micro_batches: list[slice] | None = None) -> Snapshot:
    """Backward through ``network`` under ``strategy`` in ``dtype``; leaves accumulate
    over ``micro_batches`` (one backward each) when given, else one backward on the batch."""
    params = [(Tensor(w.astype(dtype), requires_grad=True), Tensor(b.astype(dtype),
                                                                   requires_grad=True))
              for w, b in zip(network.weights, network.biases)]
    result = Snapshot(cost=0.0)
    for part in micro_batches or [slice(None)]:
        activations = Tensor(x[part].astype(dtype))
        retained: dict[str, Tensor] = {}
        for layer, (w, b) in enumerate(params, start=1):
            z = F.linear(activations, w, b)
            z.retain_grad()
            retained[f"dZ{layer}"] = z
            if layer < len(params):
                activations = network.activation(z)
                activations.retain_grad()
                retained[f"dA{layer}"] = activations
        targets = y[part] if y.dtype.kind in "iu" else y[part].astype(dtype)
        losses = task.loss(z, Tensor(targets), reduction="none")
        cost = batch_reduce(losses, strategy=strategy)
        cost.backward()
        result.cost += float(cost.data)
        result.intermediates = {name: t.grad for name, t in retained.items()}
    for layer, (w, b) in enumerate(params, start=1):
        result.leaves[f"dW{layer}"] = w.grad
        result.leaves[f"db{layer}"] = b.grad
    return result


def relative_difference(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over the array (inf if got is not finite)."""
    got64, want64 = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if not np.isfinite(got64).all():
        return float("inf")
    scale = float(np.abs(want64).max()) or 1.0
    return float(np.abs(got64 - want64).max() / scale)


def factor_name(factor: float, m: float) -> str:
    """A readable name for a measured factor: 1, m, 1/m, sqrt(m), or the number."""
    for value, name in ((1.0, "1"), (m, f"m = {m:g}"), (1.0 / m, f"1/m = 1/{m:g}"),
                        (np.sqrt(m), f"sqrt(m) = {np.sqrt(m):.4g}"),
                        (1.0 / np.sqrt(m), f"1/sqrt(m) = 1/{np.sqrt(m):.4g}")):
        if np.isclose(factor, value, rtol=1e-9):
            return name
    return f"{factor:.6g}"


def measured_factor(got: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The least-squares factor k with got = k * reference, and the residual after it."""
    g, r = np.asarray(got, np.float64).ravel(), np.asarray(reference, np.float64).ravel()
    denominator = float(r @ r)
    if denominator == 0.0 or not np.isfinite(g).all():
        return float("nan"), float("inf")
    k = float(g @ r) / denominator
    return k, relative_difference(g, k * r)
