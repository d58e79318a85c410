"""The Optimizer base: validation, zero_grad, skipped parameters, state and the guard."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.optim import SGD, Adam, AdamW

OPTIMIZERS = {
    "sgd": lambda ps, **kw: SGD(ps, lr=0.1, **kw),
    "sgd-momentum": lambda ps, **kw: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, **kw),
    "adam": lambda ps, **kw: Adam(ps, lr=0.01, **kw),
    "adamw": lambda ps, **kw: AdamW(ps, lr=0.01, weight_decay=0.1, **kw),
}


def param(values=(1.0, -2.0, 3.0), dtype=np.float64) -> mdl.nn.Parameter:
    return mdl.nn.Parameter(np.array(values), dtype=dtype)


# ---- hyperparameter validation -----------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(lr=-0.1), dict(lr="0.1"), dict(lr=None), dict(lr=float("nan")), dict(lr=float("inf")),
    dict(lr=True), dict(lr=[0.1]),
    dict(lr=0.1, momentum=1.0), dict(lr=0.1, momentum=1.5), dict(lr=0.1, momentum=-0.1),
    dict(lr=0.1, nesterov=True), dict(lr=0.1, momentum=0.0, nesterov=True),
    dict(lr=0.1, weight_decay=-1e-4), dict(lr=0.1, momentum="0.9"),
])
def test_sgd_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        SGD([param()], **kwargs)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("kwargs", [
    dict(lr=-1e-3), dict(lr="fast"), dict(betas=(1.0, 0.999)), dict(betas=(0.9, 1.0)),
    dict(betas=(-0.1, 0.999)), dict(betas=(0.9, -0.5)), dict(betas=(0.9,)),
    dict(betas=(0.9, 0.99, 0.9)), dict(eps=-1e-8), dict(weight_decay=-0.01),
    dict(eps="tiny"),
])
def test_adam_invalid_hyperparameters(cls, kwargs):
    with pytest.raises(ValueError):
        cls([param()], **kwargs)


def test_error_names_the_hyperparameter():
    with pytest.raises(ValueError, match="lr"):
        SGD([param()], lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD([param()], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([param()], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta2"):
        Adam([param()], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        Adam([param()], eps=-1.0)


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(lr=1), dict(lr=np.float32(0.5)),
                                    dict(lr=0.1, momentum=0.0), dict(lr=0.1, momentum=0.99)])
def test_sgd_valid_edge_hyperparameters(kwargs):
    """Accepted, and two steps follow torch's rule with them (the first fills the buffer)."""
    w = param()
    optimizer = SGD([w], require_normalized=False, **kwargs)
    lr, momentum = float(kwargs["lr"]), kwargs.get("momentum", 0.0)
    assert optimizer.lr == lr and optimizer.momentum == momentum
    g1, g2 = np.array([0.5, -1.0, 2.0]), np.array([1.0, 1.0, -3.0])
    w.grad = g1
    optimizer.step()
    w.grad = g2
    optimizer.step()
    start = np.array([1.0, -2.0, 3.0])
    expected = start - lr * g1 - lr * (momentum * g1 + g2)
    np.testing.assert_allclose(w.data, expected, rtol=1e-12, atol=0)
    assert w.data.dtype == np.float64  # a float32 lr does not change the parameter's dtype


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("params", [[], iter([]), (p for p in [])])
def test_empty_params_raise(name, params):
    with pytest.raises(ValueError, match="empty"):
        OPTIMIZERS[name](params)


def test_non_parameters_rejected():
    with pytest.raises(TypeError, match="parameter 1"):
        SGD([param(), mdl.tensor([1.0])], lr=0.1)


def test_generator_of_params_is_consumed_once():
    layer = mdl.nn.Linear(2, 2, generator=0)
    optimizer = SGD(layer.parameters(), lr=0.1)
    assert len(optimizer.params) == 2
    assert optimizer.params[0] is layer.weight and optimizer.params[1] is layer.bias


# ---- zero_grad and skipping --------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_zero_grad_clears_grad_and_count(name):
    w, b = param(), param((0.5,))
    optimizer = OPTIMIZERS[name]([w, b])
    mdl.nn.MSELoss()(w * b, mdl.tensor(np.zeros(3))).backward()
    assert w.grad is not None and w.grad_count == 3 and b.grad_count == 3
    optimizer.zero_grad()
    assert w.grad is None and b.grad is None
    assert w.grad_count == 0 and b.grad_count == 0


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_skips_parameters_without_grad(name):
    used, unused = param(), param((4.0, 5.0))
    optimizer = OPTIMIZERS[name]([used, unused])
    before_used, before_unused = used.data.copy(), unused.data.copy()
    for _ in range(2):
        optimizer.zero_grad()
        mdl.nn.MSELoss()(used, mdl.tensor(np.zeros(3))).backward()
        optimizer.step()
    assert unused.grad is None
    np.testing.assert_array_equal(unused.data, before_unused)
    assert not np.allclose(used.data, before_used)
    assert optimizer.state[1] == {}


# ---- state_dict --------------------------------------------------------------------------

def _train(optimizer, params, grads, start, stop):
    for step in range(start, stop):
        optimizer.zero_grad()
        for p, g in zip(params, grads[step]):
            p.grad = g
        optimizer.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_gives_identical_updates(name):
    # float32 and many entries, so that any change in how the reloaded state is promoted
    # (e.g. a step counter turned into a 0-d float64-promoting array) would show.
    rng = np.random.default_rng(0)
    initial = [rng.standard_normal((100, 50)).astype(np.float32),
               rng.standard_normal(50).astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in initial]
             for _ in range(8)]

    straight = [mdl.nn.Parameter(p.copy()) for p in initial]
    optimizer = OPTIMIZERS[name](straight, require_normalized=False)
    _train(optimizer, straight, grads, 0, 8)

    resumed = [mdl.nn.Parameter(p.copy()) for p in initial]
    first = OPTIMIZERS[name](resumed, require_normalized=False)
    _train(first, resumed, grads, 0, 4)
    saved = first.state_dict()
    second = OPTIMIZERS[name](resumed, require_normalized=False)
    second.load_state_dict(saved)
    assert second.steps == 4
    _train(second, resumed, grads, 4, 8)

    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("name", ["sgd-momentum", "adam"])
def test_state_dict_is_a_copy(name):
    w = param()
    optimizer = OPTIMIZERS[name]([w], require_normalized=False)
    w.grad = np.ones(3)
    optimizer.step()
    saved = optimizer.state_dict()
    snapshot = {k: np.copy(v) for k, v in saved["state"][0].items()}
    w.grad = np.ones(3)
    optimizer.step()  # the optimizer's state moves on, the saved copy must not
    for key, value in snapshot.items():
        np.testing.assert_array_equal(saved["state"][0][key], value)


def test_load_state_dict_restores_lr_and_rejects_wrong_length():
    w = param()
    optimizer = SGD([w], lr=0.5)
    other = SGD([param()], lr=0.1)
    other.load_state_dict(optimizer.state_dict())
    assert other.lr == 0.5
    with pytest.raises(ValueError, match="parameters"):
        SGD([param(), param()], lr=0.1).load_state_dict(optimizer.state_dict())


# ---- the normalization guard -------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_bare_sum_gradient_is_refused(name):
    w = param()
    optimizer = OPTIMIZERS[name]([w])
    (w * w).sum().backward()
    before = w.data.copy()
    with pytest.raises(mdl.GradientNotNormalizedError, match="require_normalized"):
        optimizer.step()
    np.testing.assert_array_equal(w.data, before)


def test_bare_sum_gradient_steps_with_require_normalized_false():
    w = param()
    optimizer = SGD([w], lr=0.1, require_normalized=False)
    (w * w).sum().backward()
    optimizer.step()
    expected = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(w.data, expected - 0.1 * 2 * expected, rtol=1e-12)


@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
def test_default_reduction_loss_steps_under_every_strategy(strategy):
    w = param()
    optimizer = SGD([w], lr=0.1)
    target = np.array([0.0, 1.0, 1.0])
    with mdl.normalization(strategy):
        mdl.nn.MSELoss()(w, mdl.tensor(target)).backward()
    optimizer.step()
    start = np.array([1.0, -2.0, 3.0])
    grad = 2 * (start - target) * (3 if strategy == "sum" else 1) / 3
    np.testing.assert_allclose(w.data, start - 0.1 * grad, rtol=1e-12)


def test_guard_applies_again_after_zero_grad():
    w = param()
    optimizer = SGD([w], lr=0.1)
    mdl.nn.MSELoss()(w, mdl.tensor(np.zeros(3))).backward()
    optimizer.step()
    optimizer.zero_grad()
    (w * w).sum().backward()
    with pytest.raises(mdl.GradientNotNormalizedError):
        optimizer.step()


def test_guard_error_is_a_minidl_error():
    assert issubclass(mdl.GradientNotNormalizedError, mdl.MinidlError)
