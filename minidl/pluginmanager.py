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

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pluggy

from minidl import hookspecs
from minidl.errors import MinidlError, PluginError

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
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        """Load the ``minidl`` entry points; a broken one is named, with what to do.

        pluggy's loader stops at the first entry point that fails to import with the
        bare import error, which would kill every command (even a plain backward)
        without saying which installed package is at fault.
        """
        try:
            self.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as err:
            culprit = _failing_entry_point()
            what = culprit or f"loading the {ENTRY_POINT_GROUP!r} entry points"
            raise PluginError(
                f"{what} failed: {type(err).__name__}: {err}; uninstall the package that "
                "provides it, or set MINIDL_DISABLE_PLUGIN_AUTOLOAD=1 to skip installed "
                "plugins") from err

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
        was_registered = self.is_registered(plugin)
        try:
            registered = super().register(plugin, name)
        except BaseException:
            # pluggy adds the plugin before validating its hooks, so a hook with a bad
            # signature would leave it half-registered; undo that.
            if not was_registered and self.is_registered(plugin):
                super().unregister(plugin)
            raise
        finally:
            self.strategy_cache.clear()
        return registered

    def unregister(self, plugin: object = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self.strategy_cache.clear()
        return removed

    def import_plugin(self, spec: str) -> object:
        """Import and register a plugin by dotted module path or ``.py`` file path.

        A ``.py`` file is registered under its resolved absolute path, so ``x.py`` and
        ``./x.py`` are one plugin. Any failure (the import raising anything, the hooks
        not validating, a strategy name already taken) is a ``PluginError`` naming the
        plugin, and leaves nothing registered or half-imported behind.
        """
        is_file = spec.endswith(".py")
        name = str(Path(spec).resolve()) if is_file else spec
        existing = self.get_plugin(name)
        if existing is not None:
            return existing
        was_imported = spec in sys.modules
        try:
            module = _import_file(Path(name)) if is_file else importlib.import_module(spec)
        except Exception as err:
            # Python drops a module whose import failed, but be sure: a half-initialized
            # module left in sys.modules would be handed out by the next import.
            if not is_file and not was_imported:
                sys.modules.pop(spec, None)
            raise PluginError(f"cannot import plugin {spec!r}: "
                              f"{type(err).__name__}: {err}") from err
        if self.is_registered(module):
            return module
        try:
            self.register(module, name=name)
            if hasattr(module, "minidl_strategy_info"):
                # Index now, so a clash with an installed strategy's name fails here, on
                # this plugin, instead of breaking every later strategy lookup.
                from minidl.strategy import strategy_index

                strategy_index(self)
        except Exception as err:
            if self.is_registered(module):
                self.unregister(module)
            if is_file:
                sys.modules.pop(getattr(module, "__name__", ""), None)
            detail = str(err).replace("\n", "; ")  # pluggy's messages span lines
            if not isinstance(err, PluginError):
                detail = f"{type(err).__name__}: {detail}"
            raise PluginError(f"cannot register plugin {spec!r}: {detail}") from err
        return module

    def call_observers(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call an observer hook; an exception from a plugin is a ``PluginError`` naming it.

        Observers (loggers, early stopping) run inside training, where a bare exception
        from someone else's code would surface as a traceback from minidl's loop.
        ``KeyboardInterrupt`` and minidl's own errors pass through unchanged.
        """
        caller = getattr(self.hook, hook_name)
        try:
            return caller(**kwargs)
        except MinidlError:
            raise
        except Exception as err:
            raise PluginError(f"{self._culprit(caller, err)} failed in hook {hook_name}: "
                              f"{type(err).__name__}: {err}") from err

    def _culprit(self, caller: Any, err: BaseException) -> str:
        """Which implementation of the hook raised ``err`` (from its traceback)."""
        codes = {getattr(impl.function, "__code__", None): impl.plugin
                 for impl in caller.get_hookimpls()}
        traceback = err.__traceback__
        while traceback is not None:
            plugin = codes.get(traceback.tb_frame.f_code)
            if plugin is not None:
                return f"plugin {self.get_name(plugin)!r}"
            traceback = traceback.tb_next
        return "a plugin"

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
    # The path's hash keeps two plugin files with the same name apart in sys.modules.
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8]
    module_name = f"minidl_user_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)  # never leave a half-initialized module behind
        raise
    return module


def _failing_entry_point() -> str | None:
    """Which ``minidl`` entry point fails to load, and its distribution (error path only)."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception:
            dist = getattr(entry_point, "dist", None)
            source = (f" of distribution {dist.metadata['Name']} {dist.version}"
                      if dist is not None else "")
            return f"entry point {entry_point.name} = {entry_point.value}{source}"
    return None


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
    pm = get_plugin_manager()
    if not pm.hook.minidl_after_backward.get_hookimpls():
        return
    grads = []
    for leaf in leaves:
        view = leaf.grad.view()
        view.flags.writeable = False
        grads.append(view)
    pm.call_observers(
        "minidl_after_backward", root=root, leaves=tuple(leaves), grads=tuple(grads),
        strategy=None if strategy is None else strategy.name)
