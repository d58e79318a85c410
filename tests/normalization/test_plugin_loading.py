"""Loading plugins: every failure is a PluginError naming the plugin, and leaves no trace."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from helpers.plugin_sources import strategy_source

import minidl as mdl
import minidl.pluginmanager as pluginmanager
from minidl.cli import main
from minidl.pluginmanager import PluginManager, get_plugin_manager

OBSERVER = textwrap.dedent('''
    import minidl as mdl

    @mdl.hookimpl
    def minidl_train_start(trainer):
        pass
''')

SUM_AGAIN = strategy_source("sum", "1.0", description="takes a built-in's name")


def _user_modules(stem: str) -> list[str]:
    return [name for name in sys.modules if name.startswith(f"minidl_user_plugin_{stem}")]


# Each names a hook, as a plugin's source does, so it gets as far as being imported.
HOOK_LINE = "# implements minidl_train_start\n"


@pytest.mark.parametrize("source,error", [
    (HOOK_LINE + "def oops(:\n    pass\n", "SyntaxError"),
    (HOOK_LINE + "raise RuntimeError('module-level failure')\n",
     "RuntimeError: module-level failure"),
])
def test_any_error_importing_a_file_plugin_is_a_plugin_error_and_leaves_no_module(
        tmp_path, source, error):
    path = tmp_path / "broken_plugin.py"
    path.write_text(source)
    pm = PluginManager(autoload=False)
    with pytest.raises(mdl.PluginError, match=f"cannot import plugin '{path}': {error}"):
        pm.import_plugin(str(path))
    assert _user_modules("broken_plugin") == []
    assert pm.get_plugin(str(path)) is None


def test_a_dotted_plugin_raising_at_import_is_a_plugin_error(tmp_path, monkeypatch):
    (tmp_path / "raising_review_plugin.py").write_text(
        HOOK_LINE + "raise RuntimeError('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = PluginManager(autoload=False)
    with pytest.raises(mdl.PluginError,
                       match="'raising_review_plugin': RuntimeError: at import"):
        pm.import_plugin("raising_review_plugin")
    assert "raising_review_plugin" not in sys.modules


def test_a_file_plugin_is_one_plugin_however_its_path_is_spelled(tmp_path, monkeypatch):
    (tmp_path / "spelled.py").write_text(OBSERVER)
    monkeypatch.chdir(tmp_path)
    pm = PluginManager(autoload=False)
    first = pm.import_plugin("spelled.py")
    second = pm.import_plugin("./spelled.py")
    third = pm.import_plugin(str(tmp_path / "sub" / ".." / "spelled.py"))
    assert first is second is third
    assert pm.get_name(first) == str((tmp_path / "spelled.py").resolve())
    assert len(pm.hook.minidl_train_start.get_hookimpls()) == 1


def test_a_hook_with_a_bad_signature_leaves_nothing_registered(tmp_path):
    path = tmp_path / "badsig.py"
    path.write_text(textwrap.dedent('''
        import minidl as mdl

        @mdl.hookimpl
        def minidl_step_end(trainer, bogus_argument):
            pass
    '''))
    pm = PluginManager(autoload=False)
    with pytest.raises(mdl.PluginError, match="cannot register plugin.*bogus_argument"):
        pm.import_plugin(str(path))
    assert pm.hook.minidl_step_end.get_hookimpls() == []
    assert _user_modules("badsig") == []


def test_a_strategy_name_clash_is_refused_and_does_not_poison_the_process(tmp_path):
    path = tmp_path / "sum_again.py"
    path.write_text(SUM_AGAIN)
    pm = get_plugin_manager()
    before = set(pm.get_plugins())
    try:
        with pytest.raises(mdl.PluginError, match="'sum' is claimed by both"):
            mdl.resolve_strategy(str(path))
        assert set(pm.get_plugins()) == before
        assert mdl.batch_reduce(mdl.tensor([1.0, 2.0])).item() == 1.5  # deferred: the mean
        assert mdl.resolve_strategy("sum").plugin_name == "minidl.plugins.sum"
    finally:
        for plugin in set(pm.get_plugins()) - before:
            pm.unregister(plugin)


def test_a_strategy_plugin_that_cannot_be_found_is_a_usage_error_in_the_cli(capsys, tmp_path):
    # `minidl config` imports nothing, so it names what is missing without trying.
    for spec, message in [("nope.module", "unknown normalization strategy 'nope.module'"),
                          (str(tmp_path / "missing.py"), "missing.py does not exist")]:
        assert main(["config", "--strategy", spec]) == 2
        out, err = capsys.readouterr()
        assert message in err and "Traceback" not in err and out == ""


@pytest.fixture
def broken_entry_point(tmp_path, monkeypatch):
    """An installed distribution whose ``minidl`` entry point names a missing module."""
    dist_info = tmp_path / "fakebroken-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakebroken\n"
                                        "Version: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[minidl]\nbroken = nonexistent_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MINIDL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return dist_info


def test_a_broken_entry_point_is_named_with_its_distribution(broken_entry_point):
    with pytest.raises(mdl.PluginError) as raised:
        PluginManager()
    message = str(raised.value)
    assert "entry point broken = nonexistent_module of distribution fakebroken 1.0" in message
    assert "No module named 'nonexistent_module'" in message
    assert "uninstall" in message and "MINIDL_DISABLE_PLUGIN_AUTOLOAD=1" in message


def test_a_broken_entry_point_can_be_skipped(broken_entry_point, monkeypatch):
    monkeypatch.setenv("MINIDL_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "minidl.plugins.sum" in {name for name, _ in PluginManager().list_name_plugin()}


def test_a_broken_entry_point_is_one_message_from_the_cli(broken_entry_point, monkeypatch,
                                                         capsys):
    pluginmanager.set_plugin_manager(None)  # rebuilt here; the fixture restores it after
    assert main(["config"]) == 2
    out, err = capsys.readouterr()
    assert "fakebroken" in err and "Traceback" not in err and out == ""
    assert main(["plugins"]) == 1
    assert "fakebroken" in capsys.readouterr().err



def test_a_broken_entry_point_leaves_plain_backward_and_every_built_in_strategy_working(
        broken_entry_point, monkeypatch):
    """The issue's first 'done when': plain calculus never loads plugins, and with
    autoload disabled the built-in strategies train as if nothing were installed."""
    pluginmanager.set_plugin_manager(None)  # as a user's process starts (conftest restores)
    w = mdl.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, dtype="float64")
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, -4.0, 6.0])
    assert pluginmanager._manager is None  # the plain backward built no plugin manager
    with pytest.raises(mdl.PluginError, match="fakebroken"):  # a strategy does need it
        mdl.resolve_strategy("sum")

    monkeypatch.setenv("MINIDL_DISABLE_PLUGIN_AUTOLOAD", "1")
    rng = np.random.default_rng(0)
    x, y, w0 = rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal(3)
    summed = 2 * x.T @ (x @ w0 - y)  # d/dw of sum_i (x_i . w - y_i)^2
    lr = 0.05
    for strategy, expected in [("deferred", summed / 6), ("absorbed", summed / 6),
                               ("sum", summed)]:
        w = mdl.nn.Parameter(w0.copy(), dtype="float64")
        optimizer = mdl.optim.SGD([w], lr=lr)
        with mdl.normalization(strategy):
            losses = (mdl.tensor(x) @ w - mdl.tensor(y)) ** 2
            mdl.batch_reduce(losses).backward()
        np.testing.assert_allclose(w.grad, expected, rtol=1e-12, err_msg=strategy)
        optimizer.step()
        np.testing.assert_allclose(w.data, w0 - lr * expected, rtol=1e-12, err_msg=strategy)
    names = {name for name, _ in mdl.get_plugin_manager().list_name_plugin()}
    assert names == set(pluginmanager.DEFAULT_PLUGINS)  # the built-ins, nothing installed
