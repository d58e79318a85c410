"""Bringing a plugin's code in: where it is imported from, and what is checked first.

Kept apart from the plugin manager, which registers and calls plugins: this module
only finds, imports and vets a plugin module (or names the entry point that fails).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from minidl import hookspecs
from minidl.errors import PluginError

ENTRY_POINT_GROUP = "minidl"
_HOOK_NAMES = sorted(n for n in vars(hookspecs) if n.startswith(f"{hookspecs.PROJECT_NAME}_"))


def plugin_name(spec: str) -> str:
    """The name a plugin given by ``spec`` registers under: a ``.py`` file's absolute path
    (so ``x.py`` and ``./x.py`` are one plugin), else the dotted module path."""
    return str(Path(spec).resolve()) if spec.endswith(".py") else spec


def check_hooks(plugin: object, name: str | None) -> None:
    """Refuse misspelt ``minidl_*`` hooks and strategy hooks on a plugin that is no strategy."""
    shown = name or getattr(plugin, "__name__", None) or repr(plugin)
    marker = f"{hookspecs.PROJECT_NAME}_impl"  # what @hookimpl sets on a function
    for attr in dir(plugin):
        if attr not in _HOOK_NAMES and hasattr(getattr(plugin, attr, None), marker):
            close = difflib.get_close_matches(attr, _HOOK_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"plugin {shown!r} defines {attr!r}, which is not a minidl hook"
                              f"{hint} (the hooks are listed in minidl.hookspecs)")
    implemented = {n for n in hookspecs.STRATEGY_HOOKS if hasattr(plugin, n)}
    if implemented and "minidl_strategy_info" not in implemented:
        raise PluginError(f"plugin {shown!r} implements {sorted(implemented)} but not "
                          "minidl_strategy_info; only a strategy may answer strategy hooks, so "
                          "add minidl_strategy_info (see minidl.hookspecs)")
    if implemented and "minidl_cost_scale" not in implemented:
        raise PluginError(f"strategy plugin {shown!r} must implement minidl_cost_scale "
                          "(see minidl.hookspecs)")


def import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ImportError(f"no such file {path} (current directory: {Path.cwd()})")
    module_name = file_module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def file_module_name(path: Path) -> str:
    # The path's hash keeps two plugin files with the same name apart in sys.modules.
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8]
    return f"minidl_user_plugin_{path.stem}_{digest}"


def failing_entry_point() -> str | None:
    """Which ``minidl`` entry point fails to load, and its distribution (error path only)."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception:
            dist = getattr(entry_point, "dist", None)
            source = f" of distribution {dist.metadata['Name']} {dist.version}" if dist else ""
            return f"entry point {entry_point.name} = {entry_point.value}{source}"
    return None
