"""Every optimizer, with parameter groups, against torch's update rules written by hand in
numpy (tests/helpers/optim_reference.py), step by step in float64; and the group API."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.optim_reference import (adam_step, adamw_step, problem, rmsprop_step,
                                     run_reference, sgd_step)

import minidl as mdl
from minidl.optim import SGD, Adam, AdamW, HyperparameterError, RMSprop

STEPS = 8

# (optimizer, reference step, constructor defaults, group 1's overrides): group 0 holds
# parameter 0 with the defaults, group 1 parameters 1 and 2 with the overrides.
CASES = {
    "sgd": (SGD, sgd_step, dict(lr=0.05), dict(lr=0.2)),
    "sgd-momentum": (SGD, sgd_step, dict(lr=0.05, momentum=0.9),
                     dict(momentum=0.5, weight_decay=0.1)),
    "sgd-nesterov": (SGD, sgd_step, dict(lr=0.02, momentum=0.7, weight_decay=0.1,
                                         nesterov=True), dict(lr=0.1, weight_decay=0.0)),
    "adam": (Adam, adam_step, dict(lr=0.05), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3)),
    "adam-l2": (Adam, adam_step, dict(lr=0.05, weight_decay=0.2), dict(weight_decay=0.0)),
    "adamw": (AdamW, adamw_step, dict(lr=0.05, weight_decay=0.3),
              dict(lr=0.1, weight_decay=0.0, betas=(0.0, 0.9))),
    "rmsprop": (RMSprop, rmsprop_step, dict(lr=0.01), dict(lr=0.003, alpha=0.9)),
    "rmsprop-centered": (RMSprop, rmsprop_step, dict(lr=0.01, centered=True),
                         dict(eps=1e-4, weight_decay=0.05)),
    "rmsprop-momentum": (RMSprop, rmsprop_step, dict(lr=0.005, momentum=0.9),
                         dict(momentum=0.5, centered=True, alpha=0.95)),
    "rmsprop-all": (RMSprop, rmsprop_step, dict(lr=0.01, momentum=0.8, centered=True,
                                                weight_decay=0.1, alpha=0.9), dict(lr=0.02)),
}


def run_minidl(make_optimizer, dtype=np.float64, steps=STEPS, schedule=None):
    initial, grad = problem(0, steps)
    params = [mdl.nn.Parameter(p, dtype=dtype) for p in initial]
    optimizer = make_optimizer(params)
    scheduler = schedule(optimizer) if schedule else None
    for step in range(steps):
        optimizer.zero_grad()
        for i, param in enumerate(params):
            param.grad = grad(i, param.data.astype(np.float64), step)
        optimizer.step()
        if scheduler:
            scheduler.step()
    return params, optimizer


def grouped(cls, defaults, overrides):
    def make(params):
        return cls([{"params": [params[0]]}, {"params": params[1:], **overrides}],
                   require_normalized=False, **defaults)
    return make


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_groups_match_torch_rule_per_group(case):
    cls, step, defaults, overrides = case
    params, _ = run_minidl(grouped(cls, defaults, overrides))
    hypers = [defaults, {**defaults, **overrides}, {**defaults, **overrides}]
    expected = run_reference(step, hypers, STEPS)
    for actual, wanted in zip(params, expected):
        np.testing.assert_allclose(actual.data, wanted, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_single_group_matches_torch_rule(case):
    cls, step, defaults, _ = case
    params, _ = run_minidl(lambda ps: cls(ps, require_normalized=False, **defaults))
    expected = run_reference(step, [defaults] * 3, STEPS)
    for actual, wanted in zip(params, expected):
        np.testing.assert_allclose(actual.data, wanted, rtol=1e-12, atol=1e-13)


def test_rmsprop_first_step_by_hand():
    # v = (1 - alpha) g^2, so the step is lr g / (sqrt(1 - alpha) |g| + eps).
    w = mdl.nn.Parameter(np.array([1.0, 1.0]), dtype=np.float64)
    w.grad = np.array([0.5, -3.0])
    RMSprop([w], lr=0.01, alpha=0.9, eps=0.0, require_normalized=False).step()
    np.testing.assert_allclose(w.data, 1.0 - 0.01 * np.sign([0.5, -3.0]) / np.sqrt(0.1),
                               rtol=1e-14)


def test_rmsprop_defaults_are_torchs():
    rms = RMSprop([mdl.nn.Parameter([1.0])])
    assert (rms.lr, rms.alpha, rms.eps, rms.weight_decay, rms.momentum, rms.centered) == (
        0.01, 0.99, 1e-8, 0.0, 0.0, False)


# ---- the group API -----------------------------------------------------------------------

def test_param_groups_hold_params_and_filled_defaults():
    a, b = mdl.nn.Parameter([1.0]), mdl.nn.Parameter([2.0])
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[1]["params"] == [b] and opt.params == [a, b]
    with pytest.raises(HyperparameterError, match="param_groups"):
        opt.lr  # noqa: B018 (the groups differ: there is no one lr)
    assert opt.momentum == 0.9
    opt.lr = 0.3
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3]


def test_group_lr_change_takes_effect():
    w = mdl.nn.Parameter(np.array([1.0]), dtype=np.float64)
    opt = SGD([w], lr=0.1, require_normalized=False)
    opt.param_groups[0]["lr"] = 0.5
    w.grad = np.array([2.0])
    opt.step()
    np.testing.assert_array_equal(w.data, [0.0])


@pytest.mark.parametrize("groups, match", [
    ([{"params": []}], "empty"),
    ([{"lr": 0.1}], "params"),
    ([{"params": [0.5]}], "parameter 0"),
    ([{"params": ["P"], "lrr": 0.1}], "unknown key"),
    ([{"params": ["P"], "lr": -1.0}], "parameter group 0: invalid lr"),
    ([{"params": ["P"]}, {"params": ["Q"], "momentum": 1.5}], "parameter group 1: .*momentum"),
    ([{"params": ["P"]}, {"params": ["P"]}], "twice"),
    ([{"params": ["P"]}, "Q"], "mix"),
])
def test_bad_groups_are_clear_errors(groups, match):
    p, q = mdl.nn.Parameter([1.0]), mdl.nn.Parameter([2.0])
    swap = {"P": p, "Q": q}
    groups = [swap.get(g, g) if isinstance(g, str) else
              {**g, "params": [swap.get(x, x) for x in g["params"]]} if "params" in g else g
              for g in groups]
    with pytest.raises((HyperparameterError, TypeError), match=match):
        SGD(groups, lr=0.1)


def test_hyperparameter_errors_are_minidl_value_errors():
    assert issubclass(HyperparameterError, mdl.MinidlError)
    assert issubclass(HyperparameterError, ValueError)
    with pytest.raises(HyperparameterError, match="alpha"):
        RMSprop([mdl.nn.Parameter([1.0])], alpha=1.0)
    with pytest.raises(HyperparameterError, match="every parameter group its own 'lr'"):
        SGD([mdl.nn.Parameter([1.0])])


def test_sgd_lr_may_come_from_the_groups_only():
    opt = SGD([{"params": [mdl.nn.Parameter([1.0])], "lr": 0.2}])
    assert opt.lr == 0.2


def test_add_param_group_extends_state_and_steps_it():
    a, b = (mdl.nn.Parameter(np.array([1.0]), dtype=np.float64) for _ in range(2))
    opt = Adam([a], lr=0.1, require_normalized=False)
    opt.add_param_group({"params": [b], "lr": 0.01})
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    # Adam's first step moves each weight by about its group's lr.
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.99], rtol=1e-6)
    assert len(opt.state) == 2 and opt.state[1]["t"] == 1


def test_state_dict_round_trips_groups_through_json():
    import json

    a, b = mdl.nn.Parameter([1.0]), mdl.nn.Parameter([2.0])
    opt = Adam([{"params": [a]}, {"params": [b], "betas": (0.5, 0.6)}], lr=0.1)
    saved = opt.state_dict()
    groups = json.loads(json.dumps(saved["param_groups"]))
    assert groups[1] == {"lr": 0.1, "betas": [0.5, 0.6], "eps": 1e-8, "weight_decay": 0.0,
                         "params": [1]}
    fresh = Adam([{"params": [a]}, {"params": [b]}], lr=0.9)
    fresh.load_state_dict({**saved, "param_groups": groups})
    assert [g["lr"] for g in fresh.param_groups] == [0.1, 0.1]
    assert fresh.param_groups[1]["betas"] == (0.5, 0.6)  # a tuple again
    with pytest.raises(HyperparameterError, match="sizes"):
        Adam([a, b]).load_state_dict(saved)


def test_state_dict_saved_before_groups_still_loads():
    w = mdl.nn.Parameter([1.0])
    opt = SGD([w], lr=0.1)
    opt.load_state_dict({"lr": 0.7, "steps": 3, "state": [{}]})
    assert opt.lr == 0.7 and opt.steps == 3


# ---- with a schedule: a group's lr follows it ----------------------------------------------

def test_groups_under_a_schedule_match_the_reference():
    from minidl.optim.lr_scheduler import ExponentialLR

    cls, step, defaults, overrides = CASES["sgd-momentum"]
    params, _ = run_minidl(grouped(cls, defaults, overrides),
                           schedule=lambda opt: ExponentialLR(opt, gamma=0.8))
    hypers = [defaults, {**defaults, **overrides}, {**defaults, **overrides}]
    expected = run_reference(step, hypers, STEPS, lr_at=lambda lr, t: lr * 0.8 ** t)
    for actual, wanted in zip(params, expected):
        np.testing.assert_allclose(actual.data, wanted, rtol=1e-12, atol=1e-13)
