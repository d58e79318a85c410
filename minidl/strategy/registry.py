"""Finding and selecting strategies: by name in config, in a ``with`` block, or per call.

Strategy lookup lives here, not in the plugin manager: the index of names and
aliases (a name two plugins claim is an error), the cache of bound ``Strategy``
objects (rebuilt whenever the set of plugins changes), and importing a strategy
named by dotted path or ``.py`` file. The active strategy lives in a ContextVar,
so it never leaks across threads or from one test to the next; when nothing
selects one, ``deferred`` is active.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from minidl.errors import ConfigError, InvalidTypeError, PluginError, UnknownStrategyError
from minidl.hookspecs import StrategyInfo
from minidl.pluginloading import (is_module_path, module_exists, plugin_name, source_of,
                                  vet_source)
from minidl.pluginmanager import PluginManager, get_plugin_manager
from minidl.strategy.binding import Strategy, bind_hook

DEFAULT_STRATEGY = "deferred"

_active: ContextVar[Strategy | None] = ContextVar("minidl_strategy", default=None)


class _Lookups:
    """What is derived from one plugin manager's plugins, valid for one ``generation``."""

    def __init__(self, pm: PluginManager) -> None:
        self.pm, self.generation = pm, pm.generation
        self.index: dict[str, tuple[object, StrategyInfo]] | None = None
        self.strategies: dict[Any, Strategy] = {}


# One entry, not a dict of managers: the process has one manager at a time (tests swap
# it), and this lookup runs on every batch reduction.
_lookups: _Lookups | None = None


def _lookups_for(pm: PluginManager) -> _Lookups:
    global _lookups
    lookups = _lookups
    if lookups is None or lookups.pm is not pm or lookups.generation != pm.generation:
        lookups = _lookups = _Lookups(pm)
    return lookups


def _strategy_plugins(pm: PluginManager) -> list[tuple[str, object]]:
    return [(name, plugin) for name, plugin in pm.list_name_plugin()
            if plugin is not None and hasattr(plugin, "minidl_strategy_info")]


def strategy_index(pm: PluginManager | None = None) -> dict[str, tuple[object, StrategyInfo]]:
    """Every installed strategy's name and alias, mapped to (plugin, info)."""
    pm = pm or get_plugin_manager()
    lookups = _lookups_for(pm)
    if lookups.index is not None:
        return lookups.index
    index: dict[str, tuple[object, StrategyInfo]] = {}
    for registered_name, plugin in _strategy_plugins(pm):
        info = bind_hook(pm, plugin, "minidl_strategy_info")()
        if not isinstance(info, StrategyInfo):
            raise PluginError(f"plugin {registered_name!r} returned {info!r} from hook "
                              "minidl_strategy_info; it must return a minidl.StrategyInfo")
        for key in (info.name, *info.aliases):
            if key in index and index[key][0] is not plugin:
                other = pm.get_name(index[key][0])
                raise PluginError(f"strategy name {key!r} is claimed by both plugin "
                                  f"{other!r} and plugin {registered_name!r}; uninstall one")
            index[key] = (plugin, info)
    lookups.index = index
    return index


def describe_strategies(pm: PluginManager | None = None) -> str:
    """One line per installed strategy: name, aliases and where it comes from."""
    pm = pm or get_plugin_manager()
    lines = []
    seen = set()
    for plugin, info in strategy_index(pm).values():
        if info.name in seen:
            continue
        seen.add(info.name)
        aliases = f" (aliases: {', '.join(info.aliases)})" if info.aliases else ""
        lines.append(f"  {info.name}{aliases} — {pm.origin(plugin)}")
    return "\n".join(lines)


def resolve_strategy(spec: Any = None, options: dict[str, Any] | None = None) -> Strategy:
    """The ``Strategy`` for a name, alias, dotted module path, ``.py`` file or plugin module.

    A name no strategy answers to is imported as a module, if there is one (from the
    current directory first); a plugin module (or object) is registered if it is not
    yet. ``None`` gives the active strategy (``deferred`` unless a ``with
    mdl.normalization(...)`` block selected another).

    >>> import minidl as mdl
    >>> mdl.resolve_strategy("absorbed-1/m").name
    'absorbed'
    """
    if spec is None:
        active = _active.get()
        return active if active is not None else _default_strategy()
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, NormalizationConfig):
        return resolve_strategy(spec.strategy, spec.options)
    if not isinstance(spec, str) and not hasattr(spec, "minidl_strategy_info"):
        raise InvalidTypeError(f"a strategy is selected by name (str) or by its plugin module; "
                               f"got {type(spec).__name__}")
    pm = get_plugin_manager()
    if not isinstance(spec, str) and pm.is_registered(spec):
        pm.register(spec)  # a no-op, unless its hooks were redefined (a cell run again)
    cache = _lookups_for(pm).strategies
    key = (spec, tuple(sorted((options or {}).items())) if options else None)
    try:
        cached = cache.get(key)
    except TypeError:  # unhashable option values: validate afresh
        cached = None
    if cached is not None:
        return cached
    strategy = _build_strategy(pm, spec, options or {})
    try:
        cache[key] = strategy
    except TypeError:
        pass
    return strategy


class _DefaultCache:
    """The default strategy, bound for one manager and generation: every batch reduction
    outside a ``with mdl.normalization(...)`` block asks for it."""

    __slots__ = ("manager", "generation", "strategy")

    def __init__(self) -> None:
        self.manager: weakref.ref[PluginManager] | None = None
        self.generation = -1
        self.strategy: Strategy | None = None


_default = _DefaultCache()


def _default_strategy() -> Strategy:
    pm = get_plugin_manager()
    cache = _default
    if (cache.strategy is not None and cache.manager is not None and cache.manager() is pm
            and cache.generation == pm.generation):
        return cache.strategy
    strategy = resolve_strategy(DEFAULT_STRATEGY)
    cache.manager, cache.generation, cache.strategy = weakref.ref(pm), pm.generation, strategy
    return strategy


def _build_strategy(pm: PluginManager, spec: Any, options: dict[str, Any]) -> Strategy:
    index = strategy_index(pm)
    if not isinstance(spec, str):
        entry = _plugin_strategy(pm, spec)
    elif spec in index:
        entry = index[spec]
    elif spec.endswith(".py") or ("." in spec and is_module_path(spec)):
        entry = _import_strategy(pm, spec)
    elif is_module_path(spec) and module_exists(spec):  # a bare module name, no such strategy
        entry = _import_strategy(pm, spec)
    else:
        raise UnknownStrategyError(
            f"unknown normalization strategy {spec!r}. Installed strategies:\n"
            f"{describe_strategies(pm)}\nor give a dotted module path / .py file of a plugin "
            "(module paths are imported from the current directory first)."
        )
    plugin, info = entry
    if info.options is None:
        if options:
            raise ConfigError(f"strategy {info.name!r} takes no options; got {sorted(options)}")
        return Strategy(pm, plugin, info, None)
    unknown = sorted(set(options) - set(info.options.model_fields))
    if unknown:
        raise ConfigError(f"strategy {info.name!r} has no option {', '.join(map(repr, unknown))};"
                         f" its options: {', '.join(info.options.model_fields) or 'none'}")
    try:
        validated = info.options.model_validate(options)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']} "
                             f"(got {e.get('input')!r})" for e in err.errors())
        raise ConfigError(f"invalid options for strategy {info.name!r}: {problems}") from None
    return Strategy(pm, plugin, info, validated)


def _strategy_check(pm: PluginManager, spec: str) -> Callable[[object], None]:
    """What a plugin must pass before it is registered as a strategy: a StrategyInfo whose
    names no other plugin claims."""
    index = strategy_index(pm)

    def check(module: object) -> None:
        describe = getattr(module, "minidl_strategy_info", None)
        if describe is None:
            raise UnknownStrategyError(f"plugin {spec!r} is not a strategy (it does not "
                                       "implement minidl_strategy_info); list it under "
                                       "plugins to load it as an observer")
        info = describe()
        if not isinstance(info, StrategyInfo):
            raise PluginError(f"plugin {spec!r} returned {info!r} from hook "
                              "minidl_strategy_info; it must return a minidl.StrategyInfo")
        for key in (info.name, *info.aliases):
            if key in index and index[key][0] is not module:
                raise PluginError(f"cannot register plugin {spec!r}: strategy name {key!r} is "
                                  f"claimed by both plugin {pm.get_name(index[key][0])!r} and "
                                  "this one; rename it")

    return check


def _plugin_strategy(pm: PluginManager, plugin: object) -> tuple[object, StrategyInfo]:
    """A strategy given as its plugin (a module in a notebook, say), registered if need be."""
    if not pm.is_registered(plugin) or pm.get_name(plugin) is None:
        shown = getattr(plugin, "__name__", None) or repr(plugin)
        _strategy_check(pm, shown)(plugin)
        pm.register(plugin)
    entry = next(((p, i) for p, i in strategy_index(pm).values() if p is plugin), None)
    if entry is None:  # pragma: no cover - register() refuses a plugin without the hook
        raise UnknownStrategyError(f"{plugin!r} is not a strategy plugin")
    return entry


def _import_strategy(pm: PluginManager, spec: str) -> tuple[object, StrategyInfo]:
    """Import a strategy plugin by dotted path or ``.py`` file, registering it only if it
    is a strategy whose names are free: a refused plugin leaves no trace."""
    module = pm.import_plugin(spec, check=_strategy_check(pm, spec),
                              requires=("minidl_strategy_info",))
    entry = next(((p, i) for p, i in strategy_index(pm).values() if p is module), None)
    if entry is None:  # registered earlier as an observer
        raise UnknownStrategyError(f"plugin {spec!r} is not a strategy (it does not "
                                   "implement minidl_strategy_info)")
    return entry


def check_strategy_spec(spec: str, options: dict[str, Any] | None = None) -> None:
    """Check a configured strategy as config validation does, running no plugin code.

    An installed strategy (built-in or entry point) is resolved, so its options are
    validated now. A dotted path or ``.py`` file not loaded yet must exist and its
    source must define ``minidl_strategy_info``; its options are validated when it is
    loaded (``resolve()``, when a trainer is built), since that runs its code.
    """
    pm = get_plugin_manager()
    loaded = pm.get_plugin(plugin_name(spec)) if spec.endswith(".py") or is_module_path(spec) \
        else None
    if spec in strategy_index(pm) or loaded is not None:
        resolve_strategy(spec, options or None)
        return
    if spec.endswith(".py"):
        if not Path(spec).is_file():
            raise ConfigError(f"strategy plugin file {spec} does not exist (current directory: "
                              f"{Path.cwd()})")
    elif not is_module_path(spec) or source_of(spec) is None:
        raise UnknownStrategyError(
            f"unknown normalization strategy {spec!r}. Installed strategies:\n"
            f"{describe_strategies(pm)}\nor give a dotted module path / .py file of a plugin "
            "(module paths are imported from the current directory first).")
    vet_source(spec, ("minidl_strategy_info",))


@contextmanager
def normalization(strategy: Any, **options: Any) -> Iterator[Strategy]:
    """Select the normalization strategy for the block (this thread / task only).

    ``strategy`` is anything ``resolve_strategy`` takes: a name or alias, a dotted module
    path, a ``.py`` file, or the plugin module itself (registered on first use, so a
    notebook needs no ``register`` line); ``options`` are the strategy's options.

    >>> import minidl as mdl
    >>> losses = mdl.tensor([1.0, 3.0])
    >>> with mdl.normalization("sum"):
    ...     mdl.batch_reduce(losses)
    tensor(4.)
    """
    token = _active.set(resolve_strategy(strategy, options or None))
    try:
        yield _active.get()  # type: ignore[misc]
    finally:
        _active.reset(token)


def active_strategy() -> Strategy:
    """The strategy a batch reduction made here would use."""
    return resolve_strategy(None)


class NormalizationConfig(BaseModel):
    """The ``[normalization]`` section: which strategy, and its options.

    >>> NormalizationConfig(strategy="sum-reduction").resolve().name
    'sum'
    """

    model_config = ConfigDict(extra="forbid")

    strategy: str = Field(DEFAULT_STRATEGY, description="strategy name, alias, dotted module "
                          "path or .py file of a strategy plugin")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="the strategy's own options")

    @model_validator(mode="after")
    def _strategy_exists(self) -> NormalizationConfig:
        check_strategy_spec(self.strategy, self.options)  # imports no plugin file
        return self

    def resolve(self) -> Strategy:
        return resolve_strategy(self.strategy, self.options or None)
