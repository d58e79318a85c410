"""Small networks built twice: with minidl, and by hand in numpy for reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidl as mdl


@dataclass
class MLP:
    """A tanh MLP with a sigmoid (BCE-on-logits) output, layers kept for inspection."""

    weights: list[mdl.Tensor]
    biases: list[mdl.Tensor]

    @classmethod
    def random(cls, sizes: list[int], seed: int) -> MLP:
        rng = np.random.default_rng(seed)
        weights = [mdl.tensor(rng.standard_normal((n_out, n_in)) * 0.5, requires_grad=True)
                   for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        biases = [mdl.tensor(rng.standard_normal(n_out) * 0.1, requires_grad=True)
                  for n_out in sizes[1:]]
        return cls(weights, biases)

    def parameters(self) -> list[mdl.Tensor]:
        return [*self.weights, *self.biases]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def forward(self, x: mdl.Tensor) -> tuple[list[mdl.Tensor], list[mdl.Tensor]]:
        """Pre-activations Z (retained) and activations A of every layer."""
        zs, activations = [], [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = activations[-1] @ w.T + b
            z.retain_grad()
            zs.append(z)
            if i < len(self.weights) - 1:
                a = z.tanh()
                a.retain_grad()
                activations.append(a)
        return zs, activations

    def loss(self, x: np.ndarray, y: np.ndarray, **kwargs: object
             ) -> tuple[mdl.Tensor, list[mdl.Tensor], list[mdl.Tensor]]:
        zs, activations = self.forward(mdl.tensor(x))
        cost = mdl.nn.functional.binary_cross_entropy_with_logits(zs[-1], mdl.tensor(y),
                                                                   **kwargs)
        return cost, zs, activations


def batch(m: int, n_in: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A float64 batch of m examples with 0/1 targets of shape (m, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_in))
    y = (rng.random((m, 1)) < 0.5).astype(np.float64)
    return x, y


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
