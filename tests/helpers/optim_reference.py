"""torch.optim's update rules written out by hand in numpy (float64), one step at a time,
with the hyperparameters of each parameter given separately (so parameter groups can be
checked). Independent of minidl: nothing here imports it.

Rules as documented by torch.optim (SGD, Adam, AdamW, RMSprop pseudo-code):
  SGD:     g += wd p; b = g (first step) else mu b + g; g = g + mu b (nesterov) else b;
           p -= lr g
  Adam:    g += wd p (AdamW instead: p *= 1 - lr wd); m = b1 m + (1 - b1) g;
           v = b2 v + (1 - b2) g^2; p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
  RMSprop: g += wd p; v = a v + (1 - a) g^2; centered: ga = a ga + (1 - a) g, v~ = v - ga^2;
           d = sqrt(v~) + eps; momentum: b = mu b + g / d, p -= lr b; else p -= lr g / d
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

SHAPES = [(3, 4), (5,), (2, 2)]


def problem(seed: int = 0, steps: int = 8):
    """Initial parameters and gradient g(i, p, step) = curvature (p - centre) + noise."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape) for shape in SHAPES]
    curvature = [rng.uniform(0.5, 2.0, size=shape) for shape in SHAPES]
    centre = [rng.standard_normal(shape) for shape in SHAPES]
    noise = [[rng.standard_normal(shape) * 0.1 for shape in SHAPES] for _ in range(steps)]

    def grad(i: int, value: np.ndarray, step: int) -> np.ndarray:
        return curvature[i] * (value - centre[i]) + noise[step][i]

    return initial, grad


def sgd_step(p, g, state, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        state["b"] = g.copy() if "b" not in state else momentum * state["b"] + g
        g = g + momentum * state["b"] if nesterov else state["b"]
    return p - lr * g


def adam_step(p, g, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled=False):
    beta1, beta2 = betas
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    if decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    m_hat = state["m"] / (1 - beta1 ** t)
    v_hat = state["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_step(p, g, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return adam_step(p, g, state, lr, betas, eps, weight_decay, decoupled=True)


def rmsprop_step(p, g, state, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
    if weight_decay:
        g = g + weight_decay * p
    state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g * g
    v = state["v"]
    if centered:
        state["ga"] = alpha * state.get("ga", 0.0) + (1 - alpha) * g
        v = v - state["ga"] ** 2
    denominator = np.sqrt(v) + eps
    if momentum:
        state["b"] = momentum * state.get("b", 0.0) + g / denominator
        return p - lr * state["b"]
    return p - lr * g / denominator


def run_reference(step: Callable[..., np.ndarray], hypers: list[dict[str, Any]],
                  steps: int = 8, seed: int = 0,
                  lr_at: Callable[[float, int], float] | None = None) -> list[np.ndarray]:
    """``steps`` updates of every parameter i with hyperparameters ``hypers[i]``;
    ``lr_at(lr, step)`` optionally schedules each parameter's lr."""
    initial, grad = problem(seed, steps)
    params = [p.copy() for p in initial]
    states: list[dict[str, Any]] = [{} for _ in params]
    for t in range(steps):
        for i, p in enumerate(params):
            h = dict(hypers[i])
            if lr_at is not None:
                h["lr"] = lr_at(h["lr"], t)
            params[i] = step(p, grad(i, p, t), states[i], **h)
    return params
