"""Bringing a plugin's code in: where it is imported from, and what is checked first.

Kept apart from the plugin manager, which registers and calls plugins: this module
only finds, imports and vets a plugin module (or names the entry point that fails).
Every import of a plugin by name or path goes through ``import_module`` or
``import_file`` here, so what may be imported is decided in this one place.

A dotted path (``mypkg.mystrategy``) is imported from the current directory first,
then from ``sys.path``, as ``python -m`` does; the current directory is on the path
only while the plugin is imported.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import pluggy

from minidl import hookspecs
from minidl.errors import MinidlError, PluginError

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
    # Signatures, as pluggy checks them when registering, but on a scratch manager: a
    # plugin imported now and registered only while a trainer fits fails here, at load.
    scratch = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    scratch.add_hookspecs(hookspecs)
    try:
        scratch.register(plugin, name=shown)
    except pluggy.PluginValidationError as err:
        detail = str(err).replace("\n", "; ")
        raise PluginError(f"cannot register plugin {shown!r}: {detail}") from None


def implemented_hooks(plugin: object) -> list[str]:
    """The ``minidl_*`` hooks ``plugin`` implements with ``@hookimpl``, registered or not."""
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    return [n for n in _HOOK_NAMES if hasattr(getattr(plugin, n, None), marker)]


@contextmanager
def current_directory_first() -> Iterator[None]:
    """Put the current directory first on ``sys.path`` for the block, as ``python -m`` does
    for a whole process (the ``minidl`` command, a console script, does not)."""
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a module written since the last import must be seen
    try:
        yield
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)  # the first occurrence: the one inserted above


def import_module(dotted: str) -> ModuleType:
    """Import a plugin module by dotted path, from the current directory first."""
    with current_directory_first():
        return importlib.import_module(dotted)


def module_exists(dotted: str) -> bool:
    """Whether ``import_module(dotted)`` would find a module (without importing it, for a
    top-level name; a submodule's parent packages are imported to look inside them)."""
    with current_directory_first():
        try:
            return importlib.util.find_spec(dotted) is not None
        except (ImportError, ValueError):
            return False


def is_module_path(spec: str) -> bool:
    """``spec`` reads as a dotted module path (``pkg.mod``) or a bare module name."""
    return all(part.isidentifier() for part in spec.split("."))


def vet_source(spec: str, requires: tuple[str, ...] = ()) -> None:
    """Refuse, before any of its code runs, a plugin whose source declares no minidl hook.

    Importing a module runs it, so a dotted name or file that is not a plugin at all
    (``unittest.__main__``, a script) must not be imported on the strength of a config
    value. The module's source is found without importing it or its packages, and must
    name a minidl hook, and each hook in ``requires`` (a strategy: ``minidl_strategy_info``).
    A module already imported runs no new code and is not checked. Installed entry points
    are trusted: their package chose to be a minidl plugin.
    """
    if not spec.endswith(".py") and spec in sys.modules:
        return
    source_file = Path(spec) if spec.endswith(".py") else source_of(spec)
    if source_file is None:
        return  # not found: the import itself says so, naming the module
    try:
        text = source_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # unreadable: the import fails with the reason
    missing = [hook for hook in requires if hook not in text]
    if missing or not any(hook in text for hook in _HOOK_NAMES):
        what = (f"does not define {', '.join(missing)}" if missing
                else "declares no minidl hook")
        raise PluginError(f"refusing to import {spec!r} ({source_file}): its source {what}, so "
                          "it is not a minidl plugin, and importing it would run its code. "
                          "Name a module of @mdl.hookimpl functions (see minidl.hookspecs)")


def source_of(dotted: str) -> Path | None:
    """The source file a dotted module path would load, found without importing it or its
    parent packages (the current directory first, as ``import_module``); None when it is
    not a Python source file (built-in, compiled) or cannot be found."""
    search: list[str] | None = [os.getcwd(), *sys.path]
    spec = None
    parts = dotted.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is not None:
            spec = getattr(loaded, "__spec__", None)
        else:
            spec = importlib.machinery.PathFinder.find_spec(name, search)
            for finder in sys.meta_path if spec is None else ():  # an editable install's finder
                find_spec = getattr(finder, "find_spec", None)
                try:
                    spec = find_spec(name, search) if find_spec is not None else None
                except (ImportError, ValueError):
                    spec = None
                if spec is not None:
                    break
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


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

def load_plugin(pm: Any, spec: str, *, register: bool = True,
                check: Callable[[ModuleType], None] | None = None,
                requires: tuple[str, ...] = ()) -> ModuleType:
    """``PluginManager.import_plugin``: vet, import, check and register ``spec`` on ``pm``
    as one transaction (see its docstring)."""
    is_file = spec.endswith(".py")
    name = plugin_name(spec)
    existing = pm.get_plugin(name)
    if isinstance(existing, ModuleType):
        return existing
    vet_source(spec, requires)
    plugins_before = set(pm.get_plugins())
    # What to forget if this fails: the plugin's own module(s), nothing they imported.
    top = None if is_file else spec.split(".")[0]
    modules_before = {m for m in sys.modules if m == top or m.startswith(f"{top}.")}
    stage = "import"
    try:
        module = import_file(Path(name)) if is_file else import_module(spec)
        stage = "register"
        if check is not None:
            check(module)
        if register and not pm.is_registered(module):
            pm.register(module, name=name)
        else:
            check_hooks(module, name)
        return module
    except BaseException as err:
        for plugin in set(pm.get_plugins()) - plugins_before:
            pm.unregister(plugin)
        for module_name in list(sys.modules):
            ours = (module_name == top or module_name.startswith(f"{top}.")
                    or module_name == file_module_name(Path(name)))
            if ours and module_name not in modules_before:
                del sys.modules[module_name]
        if isinstance(err, (MinidlError, KeyboardInterrupt)):
            raise
        detail = str(err).replace("\n", "; ")  # pluggy's messages span lines
        raise PluginError(f"cannot {stage} plugin {spec!r}: {type(err).__name__}: "
                          f"{detail}") from err
