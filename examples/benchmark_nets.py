"""The benchmarked networks, each written several ways: with minidl's modules as a user writes
it (``MinidlNet``), with minidl's functions and bare Parameters (``FunctionalNet``), the module
step under ``mdl.compile`` (``CompiledNet``), and by hand in numpy (``NumpyNet``, the floor for
any numpy framework). torch's version is in ``benchmark_torch.py``; the checks that they all
compute the same thing in ``benchmark_checks.py``.

Every implementation offers ``step()``, ``run(steps)``, ``weights()`` (a list of (W, b) numpy
copies) and, except the compiled one, ``cost_and_grads()`` (the gradients in the order dW1,
db1, dW2, ...). Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

import minidl as mdl

DTYPE = np.float32
Weights = list[tuple[np.ndarray, np.ndarray]]


class Net(Protocol):
    """What the benchmark times and checks."""

    def step(self) -> None: ...
    def run(self, steps: int) -> None: ...
    def weights(self) -> Weights: ...


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

    def weights(self) -> Weights:
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


class FunctionalNet:
    """The same network without modules: bare ``nn.Parameter``s, ``F.linear``, ``F.tanh`` or
    ``F.relu`` and the functional loss (default reduction), ``optim.SGD`` on the parameters.
    What the module path costs on top of this is the price of ``nn.Module``."""

    def __init__(self, spec: Spec, weights: Weights) -> None:
        functional = mdl.nn.functional
        self.pairs = [(mdl.nn.Parameter(w), mdl.nn.Parameter(b)) for w, b in weights]
        self.activation = functional.tanh if spec.hidden == "tanh" else functional.relu
        self.loss_fn = (functional.binary_cross_entropy_with_logits if spec.loss == "bce"
                        else functional.cross_entropy)
        self.optimizer = mdl.optim.SGD([p for pair in self.pairs for p in pair], lr=spec.lr)
        self.x = mdl.tensor(spec.x)
        self.y = mdl.tensor(spec.y)

    def weights(self) -> Weights:
        return [(w.data.copy(), b.data.copy()) for w, b in self.pairs]

    def loss(self) -> Any:
        linear, activation, last = mdl.nn.functional.linear, self.activation, len(self.pairs) - 1
        a = self.x
        for i, (w, b) in enumerate(self.pairs):
            a = linear(a, w, b)
            if i < last:
                a = activation(a)
        return self.loss_fn(a, self.y)

    def step(self) -> None:
        self.optimizer.zero_grad()
        self.loss().backward()
        self.optimizer.step()

    def cost_and_grads(self) -> tuple[float, list[np.ndarray]]:
        self.optimizer.zero_grad()
        loss = self.loss()
        loss.backward()
        return float(loss.item()), [np.array(p.grad) for pair in self.pairs for p in pair]

    def run(self, steps: int) -> None:
        step = self.step
        for _ in range(steps):
            step()


class CompiledNet:
    """``MinidlNet``'s step under ``mdl.compile``: traced on the first call, then replayed.
    ``eager_reason`` is None unless the step fell back to eager."""

    def __init__(self, spec: Spec, seed: int) -> None:
        self.net = net = MinidlNet(spec, seed)
        optimizer, model, loss_fn = net.optimizer, net.model, net.loss_fn

        def train_step(x: Any, y: Any) -> None:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()

        self.compiled = mdl.compile(train_step)

    @property
    def eager_reason(self) -> str | None:
        return self.compiled.eager_reason

    def weights(self) -> Weights:
        return self.net.weights()

    def step(self) -> None:
        self.compiled(self.net.x, self.net.y)

    def run(self, steps: int) -> None:
        compiled, x, y = self.compiled, self.net.x, self.net.y
        for _ in range(steps):
            compiled(x, y)


class NumpyNet:
    """The same network by hand: row-major activations (m, n), W of shape (out, in).

    Forward  Z = A_prev W^T + b;  backward (Ng's deferred 1/m)
    dW = (1/m) dZ^T A_prev,  db = (1/m) sum_rows dZ,  dA_prev = dZ W.
    """

    def __init__(self, spec: Spec, weights: Weights) -> None:
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

    def weights(self) -> Weights:
        return [(w.copy(), b.copy()) for w, b in self.params]

    def cost_and_grads(self) -> tuple[float, list[np.ndarray]]:
        cost, grads = self.forward_backward()
        return float(cost), grads

    def run(self, steps: int) -> None:
        step = self.step
        for _ in range(steps):
            step()

