"""Building the plugin manager: built-in strategies and third-party plugins, one path.

As in pytest, the built-in strategies are plain modules named in ``DEFAULT_PLUGINS``
and loaded by the same ``import_plugin`` a user's dotted path goes through;
installed packages add plugins through the entry-point group ``minidl``.
Nothing is built at import time: ``get_plugin_manager()`` builds on first use.

Environment:
  ``MINIDL_DISABLE_PLUGIN_AUTOLOAD=1``  skip entry points (built-ins still load)
  ``MINIDL_TRACE_PLUGINS=1``            print every hook call, its arguments and result
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pluggy

from minidl import hookspecs
from minidl.errors import PluginError

if TYPE_CHECKING:
    from minidl.strategy import Strategy
    from minidl.tensor import Tensor

ENTRY_POINT_GROUP = "minidl"
DEFAULT_PLUGINS = ("minidl.plugins.deferred", "minidl.plugins.absorbed", "minidl.plugins.sum")


class PluginManager(pluggy.PluginManager):
    """minidl's plugin manager: hookspecs added, built-ins and entry points loaded.

    >>> from minidl.pluginmanager import PluginManager
    >>> sorted(PluginManager(autoload=False).strategy_plugins())
    ['minidl.plugins.absorbed', 'minidl.plugins.deferred', 'minidl.plugins.sum']
    """

    def __init__(self, *, autoload: bool | None = None) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self._monitored = False  # set by add_hookcall_monitoring (and so enable_tracing)
        self.add_hookspecs(hookspecs)
        if os.environ.get("MINIDL_TRACE_PLUGINS"):
            self.trace.root.setwriter(sys.stderr.write)
            self.enable_tracing()
        self.strategy_cache: dict[Any, Strategy] = {}
        for module_name in DEFAULT_PLUGINS:
            self.import_plugin(module_name)
        if autoload is None:
            autoload = not os.environ.get("MINIDL_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self.load_setuptools_entrypoints(ENTRY_POINT_GROUP)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin``; a non-strategy may not answer strategy hooks."""
        implemented = {n for n in hookspecs.STRATEGY_HOOKS if hasattr(plugin, n)}
        if implemented and "minidl_strategy_info" not in implemented:
            raise PluginError(
                f"plugin {name or plugin!r} implements {sorted(implemented)} but not "
                "minidl_strategy_info; only a strategy may answer strategy hooks, so add "
                "minidl_strategy_info (see minidl.hookspecs)"
            )
        if "minidl_strategy_info" in implemented and not hasattr(plugin, "minidl_cost_scale"):
            raise PluginError(f"strategy plugin {name or plugin!r} must implement "
                              "minidl_cost_scale (see minidl.hookspecs)")
        registered = super().register(plugin, name)
        self.strategy_cache.clear()
        return registered

    def unregister(self, plugin: object = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self.strategy_cache.clear()
        return removed

    def import_plugin(self, spec: str) -> object:
        """Import and register a plugin by dotted module path or ``.py`` file path."""
        existing = self.get_plugin(spec)
        if existing is not None:
            return existing
        try:
            if spec.endswith(".py"):
                module = _import_file(Path(spec))
            else:
                module = importlib.import_module(spec)
        except ImportError as err:
            raise PluginError(f"cannot import plugin {spec!r}: {err}") from err
        if self.is_registered(module):
            return module
        self.register(module, name=spec)
        return module

    def strategy_plugins(self) -> dict[str, object]:
        """Registered strategy plugins by their registered name."""
        return {name: plugin for name, plugin in self.list_name_plugin()
                if plugin is not None and hasattr(plugin, "minidl_strategy_info")}

    def plugin_hook(self, plugin: object, hook_name: str) -> Callable[..., Any]:
        """A caller of one hook on ``plugin`` alone; its errors name the plugin and hook.

        Strategy hooks run several times per training step, so when the plugin has one
        plain implementation (no wrapper) and no hook-call monitoring or tracing is on,
        the caller runs that function directly, as pluggy's ``_multicall`` would for a
        single implementation, without pluggy's dispatch (about 2.5 µs a call).
        """
        others = [p for p in self.get_plugins() if p is not plugin]
        caller = self.subset_hook_caller(hook_name, remove_plugins=others)
        plugin_name = self.get_name(plugin)
        impls = [i for i in getattr(self.hook, hook_name).get_hookimpls() if i.plugin is plugin]
        direct = (len(impls) == 1 and not impls[0].hookwrapper
                  and not getattr(impls[0], "wrapper", False))
        function, argnames = (impls[0].function, impls[0].argnames) if direct else (None, ())

        def call(**kwargs: Any) -> Any:
            try:
                if function is not None and not self._monitored:
                    return function(*[kwargs[name] for name in argnames])
                return caller(**kwargs)
            except Exception as err:
                raise PluginError(f"plugin {plugin_name!r} failed in hook {hook_name}: "
                                  f"{type(err).__name__}: {err}") from err

        return call

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        """As pluggy's; strategy hooks then go through pluggy too, so they are seen."""
        self._monitored = True
        return super().add_hookcall_monitoring(before, after)

    def origin(self, plugin: object) -> str:
        """Where a plugin comes from: built-in, a distribution and version, or a path."""
        for dist_plugin, dist in self.list_plugin_distinfo():
            if dist_plugin is plugin:
                return f"{dist.project_name} {dist.version}"
        name = self.get_name(plugin) or ""
        if name in DEFAULT_PLUGINS:
            return "built-in"
        return getattr(plugin, "__file__", None) or name


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ImportError(f"no such file {path} (current directory: {Path.cwd()})")
    module_name = f"minidl_user_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process's plugin manager, built (once) on first use.

    >>> import minidl as mdl
    >>> pm = mdl.get_plugin_manager()
    >>> pm is mdl.get_plugin_manager()
    True
    """
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = PluginManager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the plugin manager so the next use rebuilds it (tests, env changes)."""
    global _manager
    _manager = None


def notify_after_backward(root: Tensor, leaves: Sequence[Tensor],
                          strategy: Strategy | None) -> None:
    """Call ``minidl_after_backward`` if any plugin observes backward passes."""
    hook = get_plugin_manager().hook.minidl_after_backward
    if not hook.get_hookimpls():
        return
    grads = []
    for leaf in leaves:
        view = leaf.grad.view()
        view.flags.writeable = False
        grads.append(view)
    hook(root=root, leaves=tuple(leaves), grads=tuple(grads),
         strategy=None if strategy is None else strategy.name)
