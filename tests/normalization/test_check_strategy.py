"""mdl.testing.check_strategy: right strategies pass, each kind of wrong one is caught."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.errors import InvalidValueError
from minidl.testing import PlanarNet, StrategyCheckError, check_strategy


def _strategy(name: str, **hooks):
    namespace = {"minidl_strategy_info": lambda self: mdl.StrategyInfo(name=name)}
    namespace.update(hooks)
    return type(name, (), {k: mdl.hookimpl(v) for k, v in namespace.items()})()


@pytest.mark.parametrize("name,cost_scale,loss_grad_scale,accumulates", [
    ("deferred", lambda n: 1 / n, lambda n: 1.0, "mean"),
    ("absorbed", lambda n: 1 / n, None, "sum"),
    ("sum", lambda n: 1.0, None, "sum"),
])
def test_the_built_in_strategies_pass(name, cost_scale, loss_grad_scale, accumulates):
    errors = check_strategy(name, cost_scale, expected_loss_grad_scale=loss_grad_scale,
                            accumulates=accumulates)
    assert max(errors.values()) < 1e-6
    assert any("against finite differences" in key for key in errors)


@pytest.mark.parametrize("power", [0.5, 0.25])
def test_the_example_plugin_passes_with_its_options(rms_plugin, power):
    check_strategy("rms", lambda n: n ** -power, options={"power": power})


def test_the_reference_is_computed_independently_of_minidl():
    """The numpy losses and finite differences agree with a by-hand gradient."""
    net = PlanarNet(seed=3)
    p = net.params
    a1 = np.tanh(net.x @ p["W1"].T + p["b1"])
    dz2 = 1 / (1 + np.exp(-(a1 @ p["W2"].T + p["b2"]))) - net.y  # A2 - Y
    want_dw2 = dz2.T @ a1
    got = net.finite_differences(lambda q: net.losses(q).sum())
    np.testing.assert_allclose(got["dW2"], want_dw2, rtol=1e-6)
    np.testing.assert_allclose(got["db2"], dz2.sum(axis=0), rtol=1e-6)


def test_a_wrong_formula_is_named(plugin_manager):
    with pytest.raises(StrategyCheckError, match=r"minidl_cost_scale\(400\)"):
        check_strategy("sum", lambda n: n ** -0.5)


def test_a_loss_gradient_inconsistent_with_the_cost_is_caught(plugin_manager):
    """1/m twice in backward: the leaves are no longer the gradient of the reported cost."""
    plugin_manager.register(_strategy(
        "twice", minidl_cost_scale=lambda self, count: 1 / count,
        minidl_loss_grad_scale=lambda self, count: 1 / count ** 2), name="twice")
    with pytest.raises(StrategyCheckError) as raised:
        check_strategy("twice", lambda n: 1 / n, expected_loss_grad_scale=lambda n: n ** -2)
    assert "one batch: dW1 against finite differences" in str(raised.value)
    assert "loss-gradient scale" not in str(raised.value)  # that part was as stated


def test_a_leaf_hook_that_accumulates_wrongly_is_caught(plugin_manager):
    def last_only(self, grad, new_grad):  # forgets what was accumulated
        return new_grad

    plugin_manager.register(_strategy("forgetful", minidl_cost_scale=lambda self, count: 1.0,
                                      minidl_leaf_grad=last_only), name="forgetful")
    with pytest.raises(StrategyCheckError, match=r"2 micro-batches accumulated \(sum\): dW1"):
        check_strategy("forgetful", lambda n: 1.0)


def test_a_missing_loss_grad_scale_hints_at_the_parameter():
    with pytest.raises(StrategyCheckError, match="expected_loss_grad_scale defaults to"):
        check_strategy("deferred", lambda n: 1 / n, accumulates="mean")


def test_bad_accumulates_is_refused():
    with pytest.raises(InvalidValueError, match="'sum' or 'mean'"):
        check_strategy("sum", lambda n: 1.0, accumulates="median")
