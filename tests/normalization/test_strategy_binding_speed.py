"""The fast paths of a bound strategy: scales kept per count for built-ins only, and hooks
called with their arguments in any order (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.errors import PluginError
from minidl.pluginmanager import get_plugin_manager


def _reduce(strategy: str, m: int) -> mdl.Tensor:
    w = mdl.tensor(np.ones(m), requires_grad=True, dtype="float64")
    with mdl.normalization(strategy):
        mdl.batch_reduce(w * 3.0).backward()
    return w


def test_a_built_in_strategy_keeps_its_scales_per_count():
    deferred = mdl.resolve_strategy("deferred")
    assert deferred.scales(5.0) == (0.2, 5.0)  # c = 1/N, seed s / c = N
    assert deferred._scales[5.0] == (0.2, 5.0)
    for m in (3, 4, 3):  # each batch's own count, cached or not
        np.testing.assert_array_equal(_reduce("deferred", m).grad, np.full(m, 3.0 / m))


def test_a_plugin_strategy_is_asked_on_every_batch():
    calls = []

    class Counting:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="counting")

        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            calls.append(count)
            return 1.0 / count

        @mdl.hookimpl
        def minidl_loss_grad_scale(self):
            return 1.0  # deferred's: raw sums reach the leaves

        # Arguments in another order than the hookspec's: each still gets its own value.
        @mdl.hookimpl
        def minidl_leaf_grad(self, new_count, new_grad, count, grad):
            return new_grad / new_count if grad is None else (grad * count + new_grad) / (
                count + new_count)

    plugin = Counting()
    get_plugin_manager().register(plugin, name="counting-plugin")
    try:
        for _ in range(3):
            w = _reduce("counting", 4)
            np.testing.assert_array_equal(w.grad, np.full(4, 0.75))  # 3 / 4
        assert calls.count(4.0) >= 3  # never cached: a plugin's hook may not be pure
        w = mdl.tensor(np.ones(2), requires_grad=True, dtype="float64")
        with mdl.normalization("counting"):
            mdl.batch_reduce(w * 3.0).backward()
            mdl.batch_reduce(w * 5.0).backward()  # running mean of 3/2 and 5/2 over 4
        np.testing.assert_array_equal(w.grad, np.full(2, 2.0))
        assert w.grad_count == 4
    finally:
        get_plugin_manager().unregister(plugin)


def test_monitored_hooks_are_called_even_for_a_built_in():
    pm = get_plugin_manager()
    seen = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name),
                                      lambda outcome, name, impls, kwargs: None)
    try:
        _reduce("sum", 3), _reduce("sum", 3)
    finally:
        undo()
    assert seen.count("minidl_cost_scale") >= 2


def test_a_built_in_leaf_grad_is_called_directly_watched_when_monitored_and_blamed(
        monkeypatch):
    deferred = mdl.resolve_strategy("deferred")
    assert deferred._direct_fold is not None  # the direct path is the one timed
    pm = get_plugin_manager()
    seen = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name),
                                      lambda outcome, name, impls, kwargs: None)
    try:
        w = _reduce("deferred", 3)
    finally:
        undo()
    assert "minidl_leaf_grad" in seen
    np.testing.assert_array_equal(w.grad, np.full(3, 1.0))  # 3 * 3 / 3

    deferred = mdl.resolve_strategy("deferred")  # monitoring changed the plugin manager

    def broken(grad, count, new_grad, new_count):
        raise FloatingPointError("overflow")

    monkeypatch.setattr(deferred, "_direct_fold", broken)
    with pytest.raises(PluginError, match=f"plugin '{deferred.plugin_name}' failed in hook "
                                          "minidl_leaf_grad: FloatingPointError: overflow"):
        _reduce("deferred", 3)


def test_hooks_go_direct_again_once_the_last_monitor_is_removed():
    pm = get_plugin_manager()
    quiet = (lambda name, impls, kwargs: None, lambda outcome, name, impls, kwargs: None)
    undo_outer = pm.add_hookcall_monitoring(*quiet)
    undo_inner = pm.add_hookcall_monitoring(*quiet)
    undo_inner()
    undo_inner()  # twice: still counted once
    assert pm.monitored  # the outer monitor is still on
    undo_outer()
    assert not pm.monitored
