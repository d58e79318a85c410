"""SGD, Adam and AdamW updates against hand-written numpy references.

The references follow the documented update rules of torch.optim.SGD, torch.optim.Adam
(Kingma & Ba 2015) and torch.optim.AdamW (Loshchilov & Hutter 2019), written out here
independently of minidl. Gradients come from a fixed quadratic g(p) = A p - c plus
per-step noise, so the trajectory depends on every previous update.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.optim import SGD, Adam, AdamW

STEPS = 6
SHAPES = [(3, 4), (5,)]


def problem(seed: int = 0):
    """Initial parameters and a gradient function of (parameter index, value, step)."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape) for shape in SHAPES]
    curvature = [rng.uniform(0.5, 2.0, size=shape) for shape in SHAPES]
    centre = [rng.standard_normal(shape) for shape in SHAPES]
    noise = [[rng.standard_normal(shape) * 0.1 for shape in SHAPES] for _ in range(STEPS)]

    def grad(i: int, value: np.ndarray, step: int) -> np.ndarray:
        return curvature[i] * (value - centre[i]) + noise[step][i]

    return initial, grad


def run_minidl(make_optimizer, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
    initial, grad = problem(seed)
    params = [mdl.nn.Parameter(p, dtype=dtype) for p in initial]
    optimizer = make_optimizer(params)
    for step in range(STEPS):
        optimizer.zero_grad()
        for i, param in enumerate(params):
            param.grad = grad(i, param.data.astype(np.float64), step)
        optimizer.step()
    return [p.data for p in params]


# ---- references ----------------------------------------------------------------------

def sgd_reference(lr, momentum=0.0, weight_decay=0.0, nesterov=False, seed=0):
    initial, grad = problem(seed)
    params = [p.copy() for p in initial]
    buffers = [None] * len(params)
    for step in range(STEPS):
        for i, p in enumerate(params):
            g = grad(i, p, step)
            if weight_decay != 0:
                g = g + weight_decay * p
            if momentum != 0:
                if buffers[i] is None:
                    buffers[i] = g.copy()
                else:
                    buffers[i] = momentum * buffers[i] + g  # dampening 0
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            params[i] = p - lr * g
    return params


def adam_reference(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, seed=0):
    initial, grad = problem(seed)
    beta1, beta2 = betas
    params = [p.copy() for p in initial]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for step in range(STEPS):
        t = step + 1
        for i, p in enumerate(params):
            g = grad(i, p, step)
            if decoupled:
                p = p * (1 - lr * weight_decay)
            elif weight_decay != 0:
                g = g + weight_decay * p
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def assert_params_close(actual, expected, rtol=1e-12, atol=1e-13):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


# ---- SGD -------------------------------------------------------------------------------

SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.3),
    "all": dict(lr=0.02, momentum=0.7, weight_decay=0.1, nesterov=True),
    "momentum+decay": dict(lr=0.02, momentum=0.5, weight_decay=0.05),
}


@pytest.mark.parametrize("config", SGD_CONFIGS.values(), ids=SGD_CONFIGS.keys())
def test_sgd_matches_torch_update_rule(config):
    actual = run_minidl(lambda ps: SGD(ps, require_normalized=False, **config))
    assert_params_close(actual, sgd_reference(**config))


def test_sgd_float32_parameters_stay_float32_and_close():
    config = SGD_CONFIGS["all"]
    actual = run_minidl(lambda ps: SGD(ps, require_normalized=False, **config), np.float32)
    assert all(a.dtype == np.float32 for a in actual)
    assert_params_close(actual, sgd_reference(**config), rtol=1e-5, atol=1e-6)


def test_sgd_single_step_by_hand():
    w = mdl.nn.Parameter(np.array([1.0, -2.0]), dtype=np.float64)
    w.grad = np.array([0.5, 0.25])
    SGD([w], lr=0.1, require_normalized=False).step()
    np.testing.assert_array_equal(w.data, np.array([1.0 - 0.05, -2.0 - 0.025]))


# ---- Adam / AdamW ----------------------------------------------------------------------

ADAM_CONFIGS = {
    "default": dict(lr=1e-3),
    "large-lr": dict(lr=0.1, betas=(0.8, 0.99)),
    "eps": dict(lr=0.05, eps=1e-2),
    "l2": dict(lr=0.05, weight_decay=0.2),
    "beta1-zero": dict(lr=0.05, betas=(0.0, 0.9)),
}


@pytest.mark.parametrize("config", ADAM_CONFIGS.values(), ids=ADAM_CONFIGS.keys())
def test_adam_matches_paper_update(config):
    actual = run_minidl(lambda ps: Adam(ps, require_normalized=False, **config))
    assert_params_close(actual, adam_reference(**config))


ADAMW_CONFIGS = {
    "default": dict(lr=1e-3),
    "strong-decay": dict(lr=0.05, weight_decay=0.5, betas=(0.85, 0.995)),
    "no-decay": dict(lr=0.05, weight_decay=0.0),
}


@pytest.mark.parametrize("config", ADAMW_CONFIGS.values(), ids=ADAMW_CONFIGS.keys())
def test_adamw_matches_decoupled_update(config):
    expected = adam_reference(**{"weight_decay": 1e-2, **config}, decoupled=True)
    actual = run_minidl(lambda ps: AdamW(ps, require_normalized=False, **config))
    assert_params_close(actual, expected)


def test_adamw_differs_from_adam_with_l2():
    adam = run_minidl(lambda ps: Adam(ps, lr=0.05, weight_decay=0.5, require_normalized=False))
    adamw = run_minidl(lambda ps: AdamW(ps, lr=0.05, weight_decay=0.5, require_normalized=False))
    assert not np.allclose(adam[0], adamw[0])


def test_adam_defaults():
    w = mdl.nn.Parameter([1.0])
    adam, adamw = Adam([w]), AdamW([w])
    assert adam.lr == 1e-3 and adam.betas == (0.9, 0.999) and adam.eps == 1e-8
    assert adam.weight_decay == 0.0 and adamw.weight_decay == 0.01


def test_adam_first_step_moves_each_entry_by_about_lr():
    # After one step m_hat = g and v_hat = g**2, so the step is lr * g / (|g| + eps).
    w = mdl.nn.Parameter(np.array([1.0, 1.0, 1.0]), dtype=np.float64)
    g = np.array([1e-3, -5.0, 200.0])
    w.grad = g
    Adam([w], lr=0.01, require_normalized=False).step()
    np.testing.assert_allclose(w.data, 1.0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_float32_parameters_stay_float32_and_close():
    config = ADAM_CONFIGS["large-lr"]
    actual = run_minidl(lambda ps: Adam(ps, require_normalized=False, **config), np.float32)
    assert all(a.dtype == np.float32 for a in actual)
    assert_params_close(actual, adam_reference(**config), rtol=1e-5, atol=1e-5)


# ---- through a real loss -----------------------------------------------------------------

def test_sgd_on_a_default_reduction_loss_uses_the_mean_gradient():
    rng = np.random.default_rng(3)
    m = 8
    x, y = rng.standard_normal((m, 3)), rng.standard_normal((m, 1))
    layer = mdl.nn.Linear(3, 1, generator=0, dtype=np.float64)
    w, b = layer.weight.data.copy(), layer.bias.data.copy()
    optimizer = SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        mdl.nn.MSELoss()(layer(mdl.tensor(x)), mdl.tensor(y)).backward()
        optimizer.step()
        residual = x @ w.T + b - y
        w = w - 0.1 * 2 * residual.T @ x / m
        b = b - 0.1 * 2 * residual.sum(axis=0) / m
    np.testing.assert_allclose(layer.weight.data, w, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.data, b, rtol=1e-12)
