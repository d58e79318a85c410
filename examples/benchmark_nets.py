"""The benchmarked networks, each written twice: with minidl as a user writes it, and by hand
in numpy (the floor for any numpy framework); plus the check that both compute the same thing.

Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import minidl as mdl

DTYPE = np.float32
# float32 sums over up to 1024 examples: agree to ~1e-6 relative, allow headroom.
RTOL, ATOL = 1e-4, 1e-6


@dataclass
class Spec:
    """One benchmark: a network, its data and loss."""

    name: str
    sizes: tuple[int, ...]          # layer widths, input first
    hidden: str                     # "tanh" or "relu"
    loss: str                       # "bce" (one logit, 0/1 targets) or "ce" (class labels)
    x: np.ndarray                   # (m, sizes[0]) float32
    y: np.ndarray                   # bce: (m, 1) float32; ce: (m,) int64
    lr: float

    @property
    def batch(self) -> int:
        return self.x.shape[0]


def make_specs(seed: int = 0) -> list[Spec]:
    rng = np.random.default_rng(seed)
    features, labels = mdl.data.planar()
    specs = [Spec("tiny", (2, 4, 1), "tanh", "bce", features.astype(DTYPE),
                  labels.reshape(-1, 1).astype(DTYPE), lr=1.2)]
    for batch in (128, 1024):
        x = rng.standard_normal((batch, 784)).astype(DTYPE)
        y = rng.integers(0, 10, size=batch).astype(np.int64)
        specs.append(Spec(f"mlp-b{batch}", (784, 256, 128, 10), "relu", "ce", x, y, lr=0.01))
    return specs


class MinidlNet:
    """The network as a minidl user writes it."""

    def __init__(self, spec: Spec, seed: int) -> None:
        rng = np.random.default_rng(seed)
        nn = mdl.nn
        act = nn.Tanh if spec.hidden == "tanh" else nn.ReLU
        init = "xavier" if spec.hidden == "tanh" else "he"
        layers: list[Any] = []
        sizes = spec.sizes
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(fan_in, fan_out, init=init, generator=rng, dtype=DTYPE))
            if i < len(sizes) - 2:
                layers.append(act())
        self.model = nn.Sequential(*layers)
        self.loss_fn = nn.BCEWithLogitsLoss() if spec.loss == "bce" else nn.CrossEntropyLoss()
        self.optimizer = mdl.optim.SGD(self.model.parameters(), lr=spec.lr)
        self.x = mdl.tensor(spec.x)
        self.y = mdl.tensor(spec.y)
        self.pairs: list[tuple[Any, Any]] = []  # (weight, bias) Parameters of each Linear
        for layer in layers:
            if isinstance(layer, nn.Linear):
                assert layer.bias is not None
                self.pairs.append((layer.weight, layer.bias))

    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(w.data.copy(), b.data.copy()) for w, b in self.pairs]

    def step(self) -> None:
        optimizer, model, loss_fn, x, y = (self.optimizer, self.model, self.loss_fn,
                                           self.x, self.y)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    def cost_and_grads(self) -> tuple[float, list[np.ndarray]]:
        """One forward/backward without the update, for the gradient check."""
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        grads = [np.array(p.grad) for pair in self.pairs for p in pair]
        return float(loss.item()), grads

    def run(self, steps: int) -> None:
        step = self.step
        for _ in range(steps):
            step()


class NumpyNet:
    """The same network by hand: row-major activations (m, n), W of shape (out, in).

    Forward  Z = A_prev W^T + b;  backward (Ng's deferred 1/m)
    dW = (1/m) dZ^T A_prev,  db = (1/m) sum_rows dZ,  dA_prev = dZ W.
    """

    def __init__(self, spec: Spec, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.params = [(w.copy(), b.copy()) for w, b in weights]
        self.x, self.y, self.lr = spec.x, spec.y, spec.lr
        self.m = spec.x.shape[0]
        self.rows = np.arange(self.m)
        self.forward_backward: Callable[[], tuple[Any, list[np.ndarray]]] = (
            self._tiny if spec.loss == "bce" else self._mlp)

    def _tiny(self) -> tuple[Any, list[np.ndarray]]:
        (w1, b1), (w2, b2) = self.params
        x, y, inv_m = self.x, self.y, 1.0 / self.m
        a1 = np.tanh(x @ w1.T + b1)                      # (m, 4)
        z2 = a1 @ w2.T + b2                              # (m, 1)
        # Stable BCE on logits and sigmoid, sharing exp(-|z|).
        e = np.exp(-np.abs(z2))
        cost = (np.maximum(z2, 0) - z2 * y + np.log1p(e)).mean()
        a2 = np.where(z2 >= 0, 1, e) / (1 + e)           # sigmoid(z2)
        dz2 = a2 - y                                     # no 1/m in dZ (deferred)
        dw2 = inv_m * (dz2.T @ a1)
        db2 = inv_m * dz2.sum(axis=0)
        dz1 = (dz2 @ w2) * (1 - a1 * a1)
        dw1 = inv_m * (dz1.T @ x)
        db1 = inv_m * dz1.sum(axis=0)
        return cost, [dw1, db1, dw2, db2]

    def _mlp(self) -> tuple[Any, list[np.ndarray]]:
        (w1, b1), (w2, b2), (w3, b3) = self.params
        x, y, rows, inv_m = self.x, self.y, self.rows, 1.0 / self.m
        z1 = x @ w1.T + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ w2.T + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ w3.T + b3
        shifted = z3 - z3.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        cost = (np.log(total[:, 0]) - shifted[rows, y]).mean()
        dz3 = e / total                                  # softmax
        dz3[rows, y] -= 1                                # softmax - onehot (no 1/m)
        dw3 = inv_m * (dz3.T @ a2)
        db3 = inv_m * dz3.sum(axis=0)
        dz2 = (dz3 @ w3) * (z2 > 0)
        dw2 = inv_m * (dz2.T @ a1)
        db2 = inv_m * dz2.sum(axis=0)
        dz1 = (dz2 @ w2) * (z1 > 0)
        dw1 = inv_m * (dz1.T @ x)
        db1 = inv_m * dz1.sum(axis=0)
        return cost, [dw1, db1, dw2, db2, dw3, db3]

    def step(self) -> None:
        _, grads = self.forward_backward()  # the cost is computed every step, as minidl does
        lr = self.lr
        for (w, b), dw, db in zip(self.params, grads[0::2], grads[1::2]):
            w -= lr * dw
            b -= lr * db

    def cost_and_grads(self) -> tuple[float, list[np.ndarray]]:
        cost, grads = self.forward_backward()
        return float(cost), grads

    def run(self, steps: int) -> None:
        step = self.step
        for _ in range(steps):
            step()


def check_gradients(spec: Spec, seed: int) -> dict[str, Any]:
    """One step from the same weights: same cost, same gradients, same dtype?"""
    net = MinidlNet(spec, seed)
    ref = NumpyNet(spec, net.weights())
    cost_m, grads_m = net.cost_and_grads()
    cost_n, grads_n = ref.cost_and_grads()
    names = [f"{kind}{i + 1}" for i in range(len(grads_m) // 2) for kind in ("dW", "db")]
    problems = []
    worst = 0.0
    for name, gm, gn in zip(names, grads_m, grads_n):
        if gm.shape != gn.shape or gm.dtype != gn.dtype:
            problems.append(f"{name}: minidl {gm.dtype}{gm.shape} vs numpy {gn.dtype}{gn.shape}")
            continue
        if not np.allclose(gm, gn, rtol=RTOL, atol=ATOL):
            problems.append(f"{name}: max |diff| {np.abs(gm - gn).max():.3g}")
        scale = max(float(np.abs(gn).max()), 1e-30)
        worst = max(worst, float(np.abs(gm - gn).max()) / scale)
    if not np.isclose(cost_m, cost_n, rtol=RTOL, atol=ATOL):
        problems.append(f"cost: minidl {cost_m!r} vs numpy {cost_n!r}")
    # One full step each (zero_grad, forward, backward, SGD) from the same weights.
    net = MinidlNet(spec, seed)
    ref = NumpyNet(spec, net.weights())
    net.step()
    ref.step()
    for i, ((wm, bm), (wn, bn)) in enumerate(zip(net.weights(), ref.params)):
        if not (np.allclose(wm, wn, rtol=RTOL, atol=ATOL)
                and np.allclose(bm, bn, rtol=RTOL, atol=ATOL)):
            problems.append(f"layer {i + 1} weights differ after one SGD step")
    return {"ok": not problems, "problems": problems, "cost": cost_n,
            "max_rel_grad_diff": worst, "dtype": str(grads_n[0].dtype)}
