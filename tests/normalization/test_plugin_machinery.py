"""Selecting, loading, tracing and guarding strategy plugins."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from helpers.plugin_sources import strategy_source

import minidl as mdl
from minidl.cli import main
from minidl.pluginmanager import PluginManager, get_plugin_manager
from minidl.strategy.binding import bind_hook


@pytest.fixture
def register():
    """Register plugin objects on the process's plugin manager for one test."""
    pm = get_plugin_manager()
    added = []

    def _register(plugin: object, name: str) -> object:
        pm.register(plugin, name=name)
        added.append(plugin)
        return plugin

    yield _register
    for plugin in added:
        pm.unregister(plugin)


def _strategy(name: str, **hooks):
    """A strategy plugin object named ``name`` whose hooks are the given functions."""
    namespace = {"minidl_strategy_info": lambda self: mdl.StrategyInfo(name=name)}
    namespace.setdefault("minidl_cost_scale", lambda self, count: 1.0 / count)
    for hook, fn in hooks.items():
        namespace[hook] = fn
    cls = type(f"Strategy_{name}", (), {k: mdl.hookimpl(v) for k, v in namespace.items()})
    return cls()


def _backward_on(strategy: str, m: int = 4) -> mdl.Tensor:
    w = mdl.tensor(np.ones(m), requires_grad=True, dtype="float64")
    with mdl.normalization(strategy):
        mdl.batch_reduce(w * 3.0).backward()
    return w


def test_a_plugin_that_raises_is_named_with_its_hook(register):
    def boom(self, count):
        raise ZeroDivisionError("nope")
    register(_strategy("exploding", minidl_cost_scale=boom), "exploding-plugin")
    with pytest.raises(mdl.PluginError, match="'exploding-plugin'.*minidl_cost_scale.*nope"):
        _backward_on("exploding")


@pytest.mark.parametrize("hook,value", [("minidl_cost_scale", "0.5"),
                                        ("minidl_cost_scale", -1.0),
                                        ("minidl_loss_grad_scale", float("nan")),
                                        ("minidl_leaf_grad", [1.0])])
def test_a_plugin_returning_the_wrong_type_is_named_with_its_hook(register, hook, value):
    register(_strategy("wrong", **{hook: lambda self: value}), "wrong-plugin")
    with pytest.raises(mdl.PluginError, match=f"'wrong-plugin'.*{hook}"):
        _backward_on("wrong")


def test_a_leaf_grad_of_the_wrong_shape_is_refused(register):
    register(_strategy("shapeless", minidl_leaf_grad=lambda self: np.zeros(2)), "shapeless")
    with pytest.raises(mdl.PluginError, match=r"leaf's shape \(4,\)"):
        _backward_on("shapeless")


def test_a_leaf_grad_taking_the_four_arrays_and_counts_is_checked_and_blamed(register):
    # (grad, count, new_grad, new_count): the signature accumulate calls directly.
    def wrong_shape(self, grad, count, new_grad, new_count):
        return new_grad[:2]

    def failing(self, grad, count, new_grad, new_count):
        raise ZeroDivisionError("by design")

    register(_strategy("direct-shape", minidl_leaf_grad=wrong_shape), "direct-shape")
    register(_strategy("direct-fail", minidl_leaf_grad=failing), "direct-fail")
    assert mdl.resolve_strategy("direct-shape")._direct_fold is not None
    with pytest.raises(mdl.PluginError, match=r"'direct-shape'.*leaf's shape \(4,\)"):
        _backward_on("direct-shape")
    with pytest.raises(mdl.PluginError,
                       match="'direct-fail' failed in hook minidl_leaf_grad: ZeroDivisionError"):
        _backward_on("direct-fail")


def test_only_a_strategy_may_answer_strategy_hooks(register):
    class Meddler:
        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            return 1.0
    with pytest.raises(mdl.PluginError, match="only a strategy may answer strategy hooks"):
        register(Meddler(), "meddler")


def test_a_custom_strategy_applies_its_own_hooks(register):
    """A strategy doubling dJ/dl_i and halving leaves: the engine follows each hook."""
    register(_strategy("odd", minidl_cost_scale=lambda self: 1.0,
                       minidl_loss_grad_scale=lambda self: 2.0,
                       minidl_leaf_grad=lambda self, new_grad: new_grad / 4),
             "odd-plugin")
    w = _backward_on("odd", m=5)
    np.testing.assert_allclose(w.grad, np.full(5, 3.0 * 2.0 / 4))


def test_unknown_strategy_lists_the_installed_ones_with_origin():
    with pytest.raises(mdl.UnknownStrategyError) as info:
        mdl.resolve_strategy("median")
    message = str(info.value)
    assert "'median'" in message
    for line in ("deferred (aliases: deferred-1/m) — built-in", "absorbed", "sum"):
        assert line in message
    with pytest.raises(ValueError, match="unknown normalization strategy 'median'"):
        mdl.NormalizationConfig(strategy="median")


def test_threads_using_different_strategies_get_their_own_results():
    barrier = threading.Barrier(3)
    results: dict[str, np.ndarray] = {}

    def work(strategy: str) -> None:
        with mdl.normalization(strategy):
            barrier.wait()  # all three blocks are open at once
            for _ in range(50):
                w = mdl.tensor(np.ones(8), requires_grad=True, dtype="float64")
                mdl.batch_reduce(w * 2.0).backward()
            results[strategy] = w.grad

    threads = [threading.Thread(target=work, args=(s,)) for s in ("deferred", "absorbed", "sum")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(results["deferred"], np.full(8, 2.0 / 8))
    np.testing.assert_allclose(results["absorbed"], np.full(8, 2.0 / 8))
    np.testing.assert_allclose(results["sum"], np.full(8, 2.0))
    assert mdl.active_strategy().name == "deferred"  # nothing leaked into this thread


def test_the_context_manager_restores_the_previous_strategy_even_on_error():
    with pytest.raises(RuntimeError):
        with mdl.normalization("sum"):
            with mdl.normalization("absorbed"):
                assert mdl.active_strategy().name == "absorbed"
            assert mdl.active_strategy().name == "sum"
            raise RuntimeError
    assert mdl.active_strategy().name == "deferred"


def test_an_explicit_argument_overrides_the_active_strategy_for_one_call():
    losses = mdl.tensor([1.0, 2.0, 3.0])
    with mdl.normalization("absorbed"):
        assert mdl.nn.MSELoss(strategy="sum")(losses, mdl.tensor([0.0, 0.0, 0.0])).item() == 14
        assert mdl.batch_reduce(losses).item() == pytest.approx(2.0)


def test_normalization_config_resolves_aliases_and_validates_options():
    assert mdl.NormalizationConfig(strategy="absorbed-1/m").resolve().name == "absorbed"
    with pytest.raises(ValueError, match="takes no options"):
        mdl.NormalizationConfig(strategy="sum", options={"power": 2})
    with pytest.raises(ValueError, match="extra"):
        mdl.NormalizationConfig(strategy="sum", colour="red")


def test_a_strategy_loads_from_a_dotted_module_path_and_from_a_file(tmp_path, monkeypatch):
    package = tmp_path / "userplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for folder, name in ((package, "halfmean"), (tmp_path, "filemean")):
        (folder / f"{name}.py").write_text(strategy_source(name, "1.0 / (2 * count)",
                                                           "a user plugin"))
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager()
    before = set(pm.get_plugins())
    try:
        by_path = mdl.NormalizationConfig(strategy="userplugins.halfmean").resolve()
        assert by_path.name == "halfmean"
        by_name = mdl.resolve_strategy("halfmean")  # now selectable by name too
        assert by_name.name == "halfmean" and by_name.plugin_name == "userplugins.halfmean"
        assert by_name.cost_scale(4.0) == 1.0 / 8.0  # the plugin's c = 1 / (2 N)
        by_file = mdl.resolve_strategy(str(tmp_path / "filemean.py"))
        assert by_file.name == "filemean"
        for strategy in (by_path, by_file):
            assert mdl.batch_reduce(mdl.tensor([4.0, 4.0]), strategy=strategy).item() == 2.0
        with pytest.raises(mdl.PluginError, match="cannot import plugin 'userplugins.nothing'"):
            mdl.resolve_strategy("userplugins.nothing")
    finally:
        for plugin in set(pm.get_plugins()) - before:
            pm.unregister(plugin)


def test_an_installed_package_strategy_is_found_and_selected_by_name_in_config(
        rms_installed):
    """examples/minidl-rms found through its entry point, as pip would install it."""
    assert "rms" in mdl.strategy.strategy_index()
    assert rms_installed.origin(rms_installed.get_plugin("rms")) == "minidl-rms 0.1.0"
    config = mdl.NormalizationConfig(strategy="rms", options={"power": 0.5})
    losses = mdl.tensor(np.full(16, 2.0), requires_grad=True, dtype="float64")
    with mdl.normalization(config):
        cost = mdl.batch_reduce(losses)
    cost.backward()
    assert cost.item() == pytest.approx(32.0 / 4.0)  # sum / sqrt(16)
    np.testing.assert_allclose(losses.grad, np.full(16, 0.25))
    with pytest.raises(ValueError, match="power"):
        mdl.NormalizationConfig(strategy="rms", options={"power": 3})


def test_disabling_autoload_skips_entry_points_but_keeps_built_ins(monkeypatch):
    monkeypatch.setenv("MINIDL_DISABLE_PLUGIN_AUTOLOAD", "1")
    names = {name for name, _ in PluginManager().list_name_plugin()}
    assert names == {"minidl.plugins.deferred", "minidl.plugins.absorbed", "minidl.plugins.sum"}


def test_tracing_prints_every_hook_call_with_arguments_and_result(monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_TRACE_PLUGINS", "1")
    pm = PluginManager()
    bind_hook(pm, pm.get_plugin("minidl.plugins.sum"), "minidl_cost_scale")(count=4.0,
                                                                           options=None)
    err = capsys.readouterr().err
    assert "minidl_cost_scale" in err and "count" in err and "1.0" in err


def test_hook_minidl_after_backward(register):
    """Observers see each pass's root, leaves, strategy and read-only gradients."""
    seen = []

    class Observer:
        @mdl.hookimpl
        def minidl_after_backward(self, root, leaves, grads, strategy):
            seen.append((root, list(leaves), strategy, [g.copy() for g in grads],
                         [g.flags.writeable for g in grads]))
            with pytest.raises(ValueError):
                grads[0][0] = 99.0  # observers read, never change

    register(Observer(), "observer")
    w = _backward_on("absorbed", m=2)
    plain = (w * w).sum()
    plain.backward()
    assert len(seen) == 2
    assert seen[0][1] == [w] and seen[0][2] == "absorbed"
    np.testing.assert_allclose(seen[0][3][0], [1.5, 1.5])  # d/dw mean(3 w) = 3 / 2
    assert seen[0][4] == [False]
    assert seen[1][0] is plain and seen[1][1] == [w] and seen[1][2] is None
    np.testing.assert_allclose(seen[1][3][0], [3.5, 3.5])  # 1.5 + 2 * 1
    np.testing.assert_allclose(w.grad, [3.5, 3.5])  # untouched by the observer


def test_minidl_plugins_lists_every_plugin(capsys, rms_installed):
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["deferred"]["origin"] == "built-in"
    assert rows["deferred"]["aliases"] == ["deferred-1/m"]
    assert "minidl_leaf_grad" in rows["deferred"]["hooks"]
    assert rows["rms"]["origin"].startswith("minidl-rms ")
    assert rows["rms"]["kind"] == "strategy"
    assert main(["plugins"]) == 0
    assert "sum (aliases: sum-reduction)  [strategy, built-in]" in capsys.readouterr().out
