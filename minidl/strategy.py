"""Selecting a normalization strategy: by name in config, in a ``with`` block, or per call.

The active strategy lives in a ContextVar, so it never leaks across threads or
from one test to the next; when nothing selects one, ``deferred`` is active.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from minidl.errors import PluginError
from minidl.pluginmanager import PluginManager, get_plugin_manager

DEFAULT_STRATEGY = "deferred"

_active: ContextVar[Strategy | None] = ContextVar("minidl_strategy", default=None)


@dataclass(frozen=True)
class StrategyInfo:
    """How a strategy plugin describes itself, returned by ``minidl_strategy_info``.

    >>> from pydantic import BaseModel
    >>> class Options(BaseModel):
    ...     power: float = 0.5
    >>> StrategyInfo(name="rms", description="divide by m ** power", options=Options).name
    'rms'
    """

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: A pydantic model of the strategy's options, validated with the config.
    options: type[BaseModel] | None = None


class UnknownStrategyError(ValueError):
    """A strategy name that no installed plugin answers to."""


class Strategy:
    """A strategy plugin bound to its validated options: what the engine calls.

    Get one with ``mdl.resolve_strategy(name)``; every hook result is checked
    here, so a broken plugin fails with its name and the hook, not deep in numpy.
    """

    def __init__(self, pm: PluginManager, plugin: object, info: StrategyInfo,
                 options: BaseModel | None) -> None:
        self.plugin_name = pm.get_name(plugin)
        self.name, self.info, self.options = info.name, info, options
        self.key = (self.plugin_name, None if options is None else options.model_dump_json())
        self._cost_scale = pm.plugin_hook(plugin, "minidl_cost_scale")
        self._loss_grad_scale = pm.plugin_hook(plugin, "minidl_loss_grad_scale")
        self._leaf_grad = pm.plugin_hook(plugin, "minidl_leaf_grad")

    def __repr__(self) -> str:
        return f"<Strategy {self.name!r} from plugin {self.plugin_name!r}>"

    def _checked_scale(self, value: Any, hook: str) -> float:
        if type(value) is float and 0.0 < value < math.inf:  # the usual case, checked cheaply
            return value
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not np.isfinite(value) or value <= 0):
            raise PluginError(f"plugin {self.plugin_name!r} returned {value!r} from hook {hook}; "
                              "it must return a positive finite number")
        return float(value)

    def cost_scale(self, count: float) -> float:
        """c in J = c * sum_i w_i l_i."""
        value = self._cost_scale(count=count, options=self.options)
        return self._checked_scale(value, "minidl_cost_scale")

    def loss_grad_scale(self, count: float) -> float:
        """s in dJ/dl_i = s * w_i (c when the plugin does not say)."""
        value = self._loss_grad_scale(count=count, options=self.options)
        if value is None:
            return self.cost_scale(count)
        return self._checked_scale(value, "minidl_loss_grad_scale")

    def accumulate(self, leaf: Any, grad: np.ndarray | None, count: float,
                   new_grad: np.ndarray, new_count: float) -> np.ndarray:
        """The leaf's new ``.grad`` (the sum of old and new when the plugin does not say)."""
        value = self._leaf_grad(grad=grad, count=count, new_grad=new_grad, new_count=new_count,
                                options=self.options)
        if value is None:
            return new_grad if grad is None else grad + new_grad
        if isinstance(value, np.generic):  # numpy turns 0-d arithmetic into scalars
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.shape != leaf.data.shape:
            shown = getattr(value, "shape", type(value).__name__)
            raise PluginError(f"plugin {self.plugin_name!r} returned {shown} from hook "
                              f"minidl_leaf_grad; it must return an array of the leaf's shape "
                              f"{leaf.data.shape}")
        return value


def strategy_index(pm: PluginManager | None = None) -> dict[str, tuple[object, StrategyInfo]]:
    """Every installed strategy's name and alias, mapped to (plugin, info)."""
    pm = pm or get_plugin_manager()
    cached = pm.strategy_cache.get("__index__")
    if cached is not None:
        return cached  # type: ignore[return-value]
    index: dict[str, tuple[object, StrategyInfo]] = {}
    for plugin_name, plugin in pm.strategy_plugins().items():
        info = pm.plugin_hook(plugin, "minidl_strategy_info")()
        if not isinstance(info, StrategyInfo):
            raise PluginError(f"plugin {plugin_name!r} returned {info!r} from hook "
                              "minidl_strategy_info; it must return a minidl.StrategyInfo")
        for key in (info.name, *info.aliases):
            if key in index and index[key][0] is not plugin:
                other = pm.get_name(index[key][0])
                raise PluginError(f"strategy name {key!r} is claimed by both plugin "
                                  f"{other!r} and plugin {plugin_name!r}; uninstall one")
            index[key] = (plugin, info)
    pm.strategy_cache["__index__"] = index  # type: ignore[assignment]
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
        return active if active is not None else resolve_strategy(DEFAULT_STRATEGY)
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, NormalizationConfig):
        return resolve_strategy(spec.strategy, spec.options)
    if not isinstance(spec, str):
        raise TypeError(f"a strategy is selected by name (str); got {type(spec).__name__}")
    pm = get_plugin_manager()
    key = (spec, tuple(sorted((options or {}).items())) if options else None)
    try:
        cached = pm.strategy_cache.get(key)
    except TypeError:  # unhashable option values: validate afresh
        cached = None
    if cached is not None:
        return cached
    strategy = _build_strategy(pm, spec, options or {})
    try:
        pm.strategy_cache[key] = strategy
    except TypeError:
        pass
    return strategy


def _build_strategy(pm: PluginManager, spec: str, options: dict[str, Any]) -> Strategy:
    index = strategy_index(pm)
    if spec not in index and "." in spec:
        module = pm.import_plugin(spec)  # a dotted path or .py file naming a plugin
        index = strategy_index(pm)
        entry = next(((p, i) for p, i in index.values() if p is module), None)
        if entry is None:
            raise UnknownStrategyError(f"plugin {spec!r} loaded, but it is not a strategy "
                                       "(it does not implement minidl_strategy_info)")
    elif spec in index:
        entry = index[spec]
    else:
        raise UnknownStrategyError(
            f"unknown normalization strategy {spec!r}. Installed strategies:\n"
            f"{describe_strategies(pm)}\nor give a dotted module path / .py file of a plugin."
        )
    plugin, info = entry
    if info.options is None:
        if options:
            raise ValueError(f"strategy {info.name!r} takes no options; got {sorted(options)}")
        return Strategy(pm, plugin, info, None)
    unknown = sorted(set(options) - set(info.options.model_fields))
    if unknown:
        raise ValueError(f"strategy {info.name!r} has no option {', '.join(map(repr, unknown))};"
                         f" its options: {', '.join(info.options.model_fields) or 'none'}")
    try:
        validated = info.options.model_validate(options)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']} "
                             f"(got {e.get('input')!r})" for e in err.errors())
        raise ValueError(f"invalid options for strategy {info.name!r}: {problems}") from None
    return Strategy(pm, plugin, info, validated)


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
