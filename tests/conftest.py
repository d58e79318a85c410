"""Fixtures every test gets: its own plugin manager, so no test sees another's plugins."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest
from helpers.distributions import write_distribution

from minidl.pluginmanager import PluginManager, set_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def plugin_manager() -> Iterator[PluginManager]:
    """A fresh plugin manager for this test alone: the built-in strategies, no entry points.

    Installed plugins (entry points) never leak into the suite; a test that needs one
    registers it on this manager (``plugin_manager.import_plugin(...)``).
    """
    pm = PluginManager(autoload=False)
    previous = set_plugin_manager(pm)
    yield pm
    set_plugin_manager(previous)


@pytest.fixture
def installed_plugins(plugin_manager: PluginManager) -> Iterator[PluginManager]:
    """The process's manager as a user gets it: built-ins plus installed entry points."""
    pm = PluginManager(autoload=True)
    previous = set_plugin_manager(pm)
    yield pm
    set_plugin_manager(previous)


@pytest.fixture
def rms_plugin(plugin_manager: PluginManager) -> object:
    """The example strategy package (examples/minidl-rms), loaded by path, not installed."""
    return plugin_manager.import_plugin(str(EXAMPLES / "minidl-rms" / "minidl_rms.py"))


@pytest.fixture
def rms_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  plugin_manager: PluginManager) -> Iterator[PluginManager]:
    """examples/minidl-rms as ``pip install`` leaves it (its module and a dist-info with the
    entry point, on sys.path), found through its entry point by a manager that autoloads.
    Nothing is installed into the environment running the tests."""
    site = tmp_path / "site-packages"
    site.mkdir()
    write_distribution(site, EXAMPLES / "minidl-rms")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("MINIDL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pm = PluginManager(autoload=True)
    previous = set_plugin_manager(pm)
    yield pm
    set_plugin_manager(previous)
    sys.modules.pop("minidl_rms", None)
