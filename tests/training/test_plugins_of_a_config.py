"""``minidl plugins CONFIG``: the plugins that config would load, observers included."""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers.plugin_sources import strategy_source

from minidl.cli import main

OBSERVER = textwrap.dedent('''
    """Logs the loss after each step."""
    import minidl as mdl

    @mdl.hookimpl
    def minidl_step_end(trainer, step, loss):
        pass

    @mdl.hookimpl
    def minidl_train_end(trainer, history):
        pass
''')


@pytest.fixture
def config(tmp_path):
    (tmp_path / "steplog.py").write_text(OBSERVER)
    (tmp_path / "halved.py").write_text(strategy_source("halved", "0.5 / count",
                                                        description="half the mean"))
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(f'''
        plugins = ["{tmp_path / 'steplog.py'}"]

        [normalization]
        strategy = "{tmp_path / 'halved.py'}"
    '''))
    return path


def test_the_configs_strategy_and_observers_are_listed_with_their_hooks(config, capsys,
                                                                        plugin_manager):
    assert main(["plugins", str(config), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    observer = rows[str(config.parent / "steplog.py")]
    assert observer["kind"] == "observer" and observer["from_config"]
    assert observer["hooks"] == ["minidl_step_end", "minidl_train_end"]
    assert observer["description"] == "Logs the loss after each step."
    assert rows["halved"]["kind"] == "strategy" and rows["halved"]["selected"]
    assert rows["halved"]["hooks"] == ["minidl_cost_scale", "minidl_strategy_info"]
    assert not rows["deferred"]["selected"] and "minidl_leaf_grad" in rows["deferred"]["hooks"]
    # Listing registers no observer: it would fire for every trainer afterwards.
    assert not any(p.__name__.startswith("minidl_user_plugin_steplog")
                   for p in plugin_manager.get_plugins() if hasattr(p, "__name__"))


def test_the_text_listing_marks_what_the_config_brings(config, capsys):
    assert main(["plugins", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{config} would load these plugins (strategy 'halved'):")
    assert "halved  [strategy, " in out and "selected by the config]" in out
    assert "[observer, " in out and "listed under plugins]" in out
    assert "hooks: minidl_step_end, minidl_train_end" in out


def test_without_a_config_the_default_strategy_is_not_marked(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert not any(row["selected"] or row["from_config"] for row in rows)


def test_a_config_naming_a_missing_observer_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f'plugins = ["{tmp_path / "nope.py"}"]\n')
    assert main(["plugins", str(path)]) == 2
    assert "no such file" in capsys.readouterr().err
