"""The plugin manager: hookspecs, built-in plugins and installed ones, loaded by one path.

As in pytest, the built-in strategies are plain modules named in ``DEFAULT_PLUGINS``
and loaded by the same ``import_plugin`` a user's dotted path goes through;
installed packages add plugins through the entry-point group ``minidl``. This
module knows hooks, not strategies (``minidl.strategy`` looks those up), and
nothing is built at import time: ``get_plugin_manager()`` builds on first use.

Environment:
  ``MINIDL_DISABLE_PLUGIN_AUTOLOAD=1``  skip entry points (built-ins still load)
  ``MINIDL_TRACE_PLUGINS=1``            print every hook call, its arguments and result
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Sequence

import pluggy

from minidl import autograd, hookspecs
from minidl.errors import MinidlError, PluginError
from minidl.pluginloading import (ENTRY_POINT_GROUP, check_hooks, failing_entry_point,
                                  implemented_hooks, load_plugin)

DEFAULT_PLUGINS = ("minidl.plugins.deferred", "minidl.plugins.absorbed", "minidl.plugins.sum")


class PluginManager(pluggy.PluginManager):
    """minidl's plugin manager: hookspecs added, built-ins and entry points loaded.

    >>> pm = PluginManager(autoload=False)
    >>> sorted(name for name, _ in pm.list_name_plugin())
    ['minidl.plugins.absorbed', 'minidl.plugins.deferred', 'minidl.plugins.sum']
    """

    def __init__(self, *, autoload: bool | None = None) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        #: Bumped whenever the set of plugins changes, so lookups built on it can be cached.
        self.generation = 0
        self.monitored = False  # while a monitor is on (add_hookcall_monitoring, tracing)
        self._monitors = 0
        if os.environ.get("MINIDL_TRACE_PLUGINS"):
            self.trace.root.setwriter(sys.stderr.write)
            self.enable_tracing()
        for module_name in DEFAULT_PLUGINS:
            self.import_plugin(module_name)
        if autoload if autoload is not None else not os.environ.get(
                "MINIDL_DISABLE_PLUGIN_AUTOLOAD"):
            try:
                self.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            except Exception as err:  # pluggy stops at the first failure, with no name
                raise PluginError(f"{failing_entry_point() or 'a minidl entry point'} failed: "
                                  f"{type(err).__name__}: {err}; uninstall the package that "
                                  "provides it, or set MINIDL_DISABLE_PLUGIN_AUTOLOAD=1 to skip "
                                  "installed plugins") from err

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` once its hooks check out; a refused plugin leaves no trace.

        Registering a plugin again is a no-op; if its hook functions were redefined since
        (a notebook cell run again), the new ones replace the old. Another plugin under a
        name already taken is a ``PluginError``.

        >>> import types, minidl as mdl
        >>> pm, observer = PluginManager(autoload=False), types.ModuleType("observer")
        >>> pm.register(observer) == pm.register(observer) == "observer"
        True
        """
        if self.is_registered(plugin):
            registered_name = self.get_name(plugin)
            if self._registered_functions(plugin) == self._current_functions(plugin):
                return registered_name
            self.unregister(plugin)  # redefined hooks: register the module as it is now
            name = name or registered_name
        name = name or self.get_canonical_name(plugin)
        holder = self.get_plugin(name)
        if holder is not None:
            raise PluginError(
                f"cannot register {_shown(plugin)} as {name!r}: that name is taken by "
                f"{_shown(holder)} ({self.origin(holder)}); unregister that one first "
                "(mdl.get_plugin_manager().unregister(name=...)) or register under another "
                "name (register(plugin, name=...))")
        check_hooks(plugin, name)
        was_registered = self.is_registered(plugin)
        try:
            return super().register(plugin, name)
        except BaseException:  # pluggy adds a plugin before checking signatures: undo that
            if not was_registered and self.is_registered(plugin):
                super().unregister(plugin)
            raise
        finally:
            self.generation += 1

    def _registered_functions(self, plugin: object) -> dict[str, Any]:
        return {caller.name: impl.function for caller in self.get_hookcallers(plugin) or []
                for impl in caller.get_hookimpls() if impl.plugin is plugin}

    @staticmethod
    def _current_functions(plugin: object) -> dict[str, Any]:
        return {name: getattr(plugin, name) for name in implemented_hooks(plugin)}

    def unregister(self, plugin: object = None, name: str | None = None) -> Any:
        self.generation += 1
        return super().unregister(plugin, name)

    def import_plugin(self, spec: str, *, register: bool = True,
                      check: Callable[[ModuleType], None] | None = None,
                      requires: tuple[str, ...] = ()) -> ModuleType:
        """Import a plugin by dotted module path or ``.py`` file, check it, register it.

        Its source must name a minidl hook (and each hook in ``requires``) before it is
        imported at all (``pluginloading.vet_source``). Then one transaction: if the
        import raises (even after the module registered itself), the hooks or
        ``check(module)`` refuse it, a ``PluginError`` (or ``check``'s own minidl error)
        names the plugin, and the manager and ``sys.modules`` are as before.
        ``register=False`` only imports and checks.
        """
        return load_plugin(self, spec, register=register, check=check, requires=requires)

    def call_observers(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call an observer hook; an exception from a plugin is a ``PluginError`` naming it."""
        caller = getattr(self.hook, hook_name)
        try:
            return caller(**kwargs)
        except MinidlError:
            raise
        except BaseException as err:  # SystemExit from a plugin must not end minidl silently
            if isinstance(err, KeyboardInterrupt):  # still an interrupt, now with its place
                raise KeyboardInterrupt(f"in {self._culprit(caller, err)}, hook "
                                        f"{hook_name}") from err
            raise PluginError(f"{self._culprit(caller, err)} failed in hook {hook_name}: "
                              f"{type(err).__name__}: {err}") from err

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call an observer hook plugin by plugin, in pluggy's order: ``(plugin name,
        result)`` pairs, so a result can be checked and blamed on the plugin it came from."""
        answers = []
        for impl in reversed(getattr(self.hook, hook_name).get_hookimpls()):
            others = [p for p in self.get_plugins() if p is not impl.plugin]
            caller = self.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                results = caller(**kwargs)
            except MinidlError:
                raise
            except KeyboardInterrupt as err:  # still an interrupt, now with its place
                raise KeyboardInterrupt(f"in plugin {impl.plugin_name!r}, hook {hook_name}"
                                        ) from err
            except BaseException as err:  # SystemExit included: say which plugin
                raise PluginError(f"plugin {impl.plugin_name!r} failed in hook {hook_name}: "
                                  f"{type(err).__name__}: {err}") from err
            answers.append((impl.plugin_name, results[0] if results else None))
        return answers

    def _culprit(self, caller: Any, err: BaseException) -> str:
        """Which implementation of the hook raised ``err`` (from its traceback)."""
        codes = {getattr(i.function, "__code__", None): i.plugin for i in caller.get_hookimpls()}
        traceback = err.__traceback__
        while traceback is not None:
            plugin = codes.get(traceback.tb_frame.f_code)
            if plugin is not None:
                return f"plugin {self.get_name(plugin)!r}"
            traceback = traceback.tb_next
        return "a plugin"

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        # Hooks called directly for speed go through pluggy while any monitor is on.
        self._monitors += 1
        self.monitored = True
        undo_pluggy = super().add_hookcall_monitoring(before, after)
        undone = False

        def undo() -> None:
            nonlocal undone
            undo_pluggy()
            if not undone:
                undone = True
                self._monitors -= 1
                self.monitored = self._monitors > 0

        return undo

    def origin(self, plugin: object) -> str:
        """Where a plugin comes from: built-in, a distribution and version, or a path."""
        for dist_plugin, dist in self.list_plugin_distinfo():
            if dist_plugin is plugin:
                return f"{dist.project_name} {dist.version}"
        name = self.get_name(plugin) or ""
        return "built-in" if name in DEFAULT_PLUGINS else getattr(plugin, "__file__", None) or name

    def notify_after_backward(self, root: Any, leaves: Sequence[Any], plan: str | None) -> None:
        """The engine's backward observer: call ``minidl_after_backward`` if anyone listens."""
        if not self.hook.minidl_after_backward.get_hookimpls():
            return
        grads = []
        for leaf in leaves:
            view = leaf.grad.view()
            view.flags.writeable = False  # observers read, never change
            grads.append(view)
        self.call_observers("minidl_after_backward", root=root, leaves=tuple(leaves),
                            grads=tuple(grads), strategy=plan)


def _shown(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        where = getattr(plugin, "__file__", None)
        return f"module {plugin.__name__!r}" + (f" from {where}" if where else "")
    return f"plugin {plugin!r}"


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process's plugin manager, built (once) on first use.

    >>> import minidl as mdl
    >>> mdl.get_plugin_manager() is mdl.get_plugin_manager()
    True
    """
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                set_plugin_manager(PluginManager())
    return _manager  # type: ignore[return-value]


def set_plugin_manager(pm: PluginManager | None) -> PluginManager | None:
    """Make ``pm`` the process's manager (None: build afresh on next use); returns the old one.

    Tests use it to give each test its own manager (see tests/conftest.py).
    """
    global _manager
    previous, _manager = _manager, pm
    autograd.set_backward_observer(None if pm is None else pm.notify_after_backward)
    return previous
