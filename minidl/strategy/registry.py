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
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from minidl.errors import ConfigError, InvalidTypeError, PluginError, UnknownStrategyError
from minidl.hookspecs import StrategyInfo
from minidl.pluginmanager import PluginManager, get_plugin_manager
from minidl.strategy.binding import Strategy, bind_hook

DEFAULT_STRATEGY = "deferred"

_active: ContextVar[Strategy | None] = ContextVar("minidl_strategy", default=None)


class _Lookups:
    """What is derived from one plugin manager's plugins, valid for one ``generation``."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.index: dict[str, tuple[object, StrategyInfo]] | None = None
        self.strategies: dict[Any, Strategy] = {}


_lookups: weakref.WeakKeyDictionary[PluginManager, _Lookups] = weakref.WeakKeyDictionary()


def _lookups_for(pm: PluginManager) -> _Lookups:
    lookups = _lookups.get(pm)
    if lookups is None or lookups.generation != pm.generation:
        lookups = _lookups[pm] = _Lookups(pm.generation)
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
    for plugin_name, plugin in _strategy_plugins(pm):
        info = bind_hook(pm, plugin, "minidl_strategy_info")()
        if not isinstance(info, StrategyInfo):
            raise PluginError(f"plugin {plugin_name!r} returned {info!r} from hook "
                              "minidl_strategy_info; it must return a minidl.StrategyInfo")
        for key in (info.name, *info.aliases):
            if key in index and index[key][0] is not plugin:
                other = pm.get_name(index[key][0])
                raise PluginError(f"strategy name {key!r} is claimed by both plugin "
                                  f"{other!r} and plugin {plugin_name!r}; uninstall one")
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
    """The ``Strategy`` for a name, alias, dotted module path or ``.py`` file.

    ``None`` gives the active strategy (``deferred`` unless a ``with
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
    if not isinstance(spec, str):
        raise InvalidTypeError(f"a strategy is selected by name (str); got {type(spec).__name__}")
    pm = get_plugin_manager()
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


def _build_strategy(pm: PluginManager, spec: str, options: dict[str, Any]) -> Strategy:
    index = strategy_index(pm)
    if spec in index:
        entry = index[spec]
    elif "." in spec:
        entry = _import_strategy(pm, spec)
    else:
        raise UnknownStrategyError(
            f"unknown normalization strategy {spec!r}. Installed strategies:\n"
            f"{describe_strategies(pm)}\nor give a dotted module path / .py file of a plugin."
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


def _import_strategy(pm: PluginManager, spec: str) -> tuple[object, StrategyInfo]:
    """Import a strategy plugin by dotted path or ``.py`` file, registering it only if it
    is a strategy whose names are free: a refused plugin leaves no trace."""
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

    module = pm.import_plugin(spec, check=check)
    entry = next(((p, i) for p, i in strategy_index(pm).values() if p is module), None)
    if entry is None:  # registered earlier as an observer
        raise UnknownStrategyError(f"plugin {spec!r} is not a strategy (it does not "
                                   "implement minidl_strategy_info)")
    return entry


@contextmanager
def normalization(strategy: Any, **options: Any) -> Iterator[Strategy]:
    """Select the normalization strategy for the block (this thread / task only).

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
        self.resolve()  # raises ValueError naming the installed strategies
        return self

    def resolve(self) -> Strategy:
        return resolve_strategy(self.strategy, self.options or None)
