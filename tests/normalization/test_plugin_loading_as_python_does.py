"""Plugin loading as a Python user expects: dotted paths from the current directory first,
bare module names, registering again, and a strategy given as its module."""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import pytest
from helpers.plugin_sources import strategy_source

import minidl as mdl
from minidl.cli import main
from minidl.errors import InvalidTypeError
from minidl.pluginmanager import PluginManager

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.fixture
def bare_sys_path(tmp_path, monkeypatch):
    """The ``minidl`` console script's view: the current directory (tmp_path) is not on
    sys.path, and modules written here are forgotten afterwards."""
    cwd = os.getcwd()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", cwd)])
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("mypkg", "sqrtm_plugin", "shadowed_plugin", "sum"):
            del sys.modules[name]


def _package(root: Path, cost_scale: str = "count ** -0.5", name: str = "m1") -> None:
    (root / "mypkg").mkdir(exist_ok=True)
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / f"{name}.py").write_text(strategy_source(name, cost_scale))


def test_a_dotted_path_resolves_from_the_current_directory(bare_sys_path):
    _package(bare_sys_path)
    path_before = list(sys.path)
    strategy = mdl.NormalizationConfig(strategy="mypkg.m1").resolve()
    assert strategy.name == "m1" and strategy.cost_scale(16.0) == 0.25
    assert sys.path == path_before  # the current directory was on the path for the import only
    assert main(["config", "--strategy", "mypkg.m1"]) == 0  # the failing command


def test_the_current_directory_comes_before_sys_path(bare_sys_path, tmp_path_factory,
                                                     monkeypatch):
    elsewhere = tmp_path_factory.mktemp("site")
    (elsewhere / "shadowed_plugin.py").write_text(strategy_source("from-sys-path", "1.0"))
    monkeypatch.syspath_prepend(str(elsewhere))
    (bare_sys_path / "shadowed_plugin.py").write_text(strategy_source("from-cwd", "1.0"))
    assert mdl.resolve_strategy("shadowed_plugin.py").name == "from-cwd"  # a file, plainly
    pm = PluginManager(autoload=False)
    assert pm.import_plugin("shadowed_plugin").minidl_strategy_info().name == "from-cwd"


def test_a_bare_module_name_is_imported_when_no_strategy_has_that_name(bare_sys_path):
    (bare_sys_path / "sqrtm_plugin.py").write_text(strategy_source("sqrt-m", "count ** -0.5"))
    strategy = mdl.resolve_strategy("sqrtm_plugin")
    assert strategy.name == "sqrt-m" and strategy.cost_scale(4.0) == 0.5
    assert mdl.resolve_strategy("sqrt-m").key == strategy.key  # known by its own name too


def test_a_strategy_name_wins_over_a_module_of_the_same_name(bare_sys_path):
    (bare_sys_path / "sum.py").write_text(strategy_source("not-the-sum", "1.0"))
    assert mdl.resolve_strategy("sum").plugin_name == "minidl.plugins.sum"
    assert "sum" not in sys.modules


def test_a_bare_name_that_is_neither_is_an_unknown_strategy(bare_sys_path):
    with pytest.raises(mdl.UnknownStrategyError, match="(?s)unknown normalization strategy "
                       "'medain'.*deferred.*current directory first"):
        mdl.resolve_strategy("medain")


def test_registering_the_same_module_again_is_a_no_op(plugin_manager):
    module = types.ModuleType("again")
    exec(strategy_source("again", "1.0 / count"), module.__dict__)
    first = plugin_manager.register(module)
    generation = plugin_manager.generation
    assert plugin_manager.register(module) == first == "again"
    assert len(plugin_manager.hook.minidl_cost_scale.get_hookimpls()) == 4  # 3 built-ins + 1
    assert plugin_manager.generation == generation  # nothing changed, no cache dropped


def test_registering_a_module_whose_hooks_were_redefined_uses_the_new_ones(plugin_manager):
    module = types.ModuleType("cell")
    exec(strategy_source("cell", "1.0 / count"), module.__dict__)
    plugin_manager.register(module)
    assert mdl.resolve_strategy("cell").cost_scale(4.0) == 0.25
    exec(strategy_source("cell", "2.0 / count"), module.__dict__)  # the cell, edited, run again
    plugin_manager.register(module)
    assert mdl.resolve_strategy("cell").cost_scale(4.0) == 0.5
    assert len(plugin_manager.hook.minidl_cost_scale.get_hookimpls()) == 4


def test_a_different_module_under_a_taken_name_is_one_clear_error(plugin_manager):
    first, second = types.ModuleType("mine"), types.ModuleType("mine")
    plugin_manager.register(first)
    with pytest.raises(mdl.PluginError, match="cannot register module 'mine' as 'mine': that "
                       "name is taken by module 'mine'.*unregister that one first"):
        plugin_manager.register(second)
    assert plugin_manager.get_plugin("mine") is first


def test_the_readme_strategy_snippet_runs_twice_as_a_notebook_cell_would(capsys):
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
                 if "sqrt-m" in b)
    notebook = types.ModuleType("__notebook__")
    sys.modules["__notebook__"] = notebook
    try:
        for _ in range(2):
            exec(compile(block.replace("__name__", "'__notebook__'"), "cell", "exec"),
                 notebook.__dict__)
    finally:
        del sys.modules["__notebook__"]
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and printed[0] == printed[1]


def test_normalization_accepts_a_plugin_module(plugin_manager):
    module = types.ModuleType("notebook_strategy")
    exec(strategy_source("third", "1.0 / 3.0"), module.__dict__)
    losses = mdl.tensor([3.0, 6.0, 9.0], requires_grad=True, dtype="float64")
    with mdl.normalization(module):
        cost = mdl.batch_reduce(losses)
    cost.backward()
    assert cost.item() == pytest.approx(6.0)
    assert losses.grad.tolist() == pytest.approx([1 / 3] * 3)
    assert plugin_manager.is_registered(module)
    assert mdl.resolve_strategy(module).key == mdl.resolve_strategy("third").key


def test_a_plugin_module_with_options(rms_plugin, plugin_manager):
    with mdl.normalization(rms_plugin, power=0.25) as strategy:
        assert mdl.batch_reduce(mdl.tensor([1.0] * 16)).item() == pytest.approx(8.0)
    assert strategy.options.power == 0.25


def test_a_module_that_is_not_a_strategy_is_refused(plugin_manager):
    module = types.ModuleType("just_helpers")
    with pytest.raises(InvalidTypeError, match="by name .str. or by its plugin module"):
        mdl.resolve_strategy(module)
    observer = types.ModuleType("observer_only")
    observer.minidl_strategy_info = None  # not a hook: has the attribute, not the marker
    with pytest.raises(mdl.UnknownStrategyError, match="not a strategy"):
        mdl.resolve_strategy(observer)
    assert not plugin_manager.is_registered(observer)
