"""``Strategy``: one strategy plugin bound to its validated options, as the engine calls it.

Strategy hooks run several times per training step, on the strategy's own plugin
only (``minidl.hookspecs``). So each hook is bound once here: when the plugin has
one plain implementation and no hook monitoring or tracing is on, the function is
called directly, as pluggy's ``_multicall`` would for a single implementation,
without pluggy's dispatch (about 2.5 µs a call). Every result is checked here, so a
broken plugin fails with its name and the hook, not deep in numpy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel

from minidl.errors import PluginError
from minidl.hookspecs import SUM_OVER_RANKS, RankCombine, StrategyInfo
from minidl.pluginmanager import DEFAULT_PLUGINS, PluginManager


def bind_hook(pm: PluginManager, plugin: object, hook_name: str,
              positional: bool = False) -> Callable[..., Any]:
    """Call ``hook_name`` on ``plugin`` alone, by keyword (or, with ``positional``, with
    every argument of the hookspec in its order); None when it does not implement it.

    Any exception from the plugin (``SystemExit`` included) is a ``PluginError`` naming it.
    """
    plugin_name = pm.get_name(plugin)
    caller = getattr(pm.hook, hook_name)
    impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
    others = [p for p in pm.get_plugins() if p is not plugin]
    through_pluggy = pm.subset_hook_caller(hook_name, remove_plugins=others)
    direct = len(impls) == 1 and not impls[0].hookwrapper and not impls[0].wrapper
    function, argnames = (impls[0].function, impls[0].argnames) if direct else (None, ())
    spec_names = tuple(caller.spec.argnames) if caller.spec is not None else ()
    # The implementation's arguments, as positions among the hookspec's: usually its first
    # few, in order (an implementation leaves out the ones it ignores, often the last).
    positions = tuple(spec_names.index(name) for name in argnames if name in spec_names)
    leading = len(positions) if positions == tuple(range(len(positions))) else None

    def call(*args: Any, **kwargs: Any) -> Any:
        if not impls:
            return None
        try:
            # Through pluggy only while it watches (tracing) and the plugin is registered:
            # a trainer registers a strategy plugin only while it fits.
            if function is not None and (not pm.monitored or not pm.is_registered(plugin)):
                if not positional:
                    return function(*map(kwargs.__getitem__, argnames))
                if leading is not None:
                    return function(*args[:leading])
                return function(*map(args.__getitem__, positions))
            if positional:
                kwargs = dict(zip(spec_names, args))
            results = through_pluggy(**kwargs)  # a list: these hooks are not firstresult
            return results[0] if results else None
        except BaseException as err:
            raise plugin_failure(plugin_name, hook_name, err) from err

    #: The implementation itself when a positional call may skip ``call`` (it takes the
    #: hookspec's first four arguments, in order), else None; the pass plan calls it
    #: while nothing monitors hooks (``Strategy.direct_fold``).
    call.direct = function if positional and leading == 4 else None  # type: ignore[attr-defined]
    return call


def plugin_failure(plugin_name: str, hook_name: str, err: BaseException) -> BaseException:
    """What to raise when a plugin's hook raised ``err``: a ``PluginError`` naming them
    (a ``KeyboardInterrupt`` stays one, now with its place)."""
    if isinstance(err, KeyboardInterrupt):
        return KeyboardInterrupt(f"in plugin {plugin_name!r}, hook {hook_name}")
    return PluginError(f"plugin {plugin_name!r} failed in hook {hook_name}: "
                       f"{type(err).__name__}: {err}")


def _implements(pm: PluginManager, plugin: object, hook_name: str) -> bool:
    return any(i.plugin is plugin for i in getattr(pm.hook, hook_name).get_hookimpls())


class Strategy:
    """A strategy plugin bound to its validated options: what the batch reduction calls.

    Get one with ``mdl.resolve_strategy(name)``.

    >>> import minidl as mdl
    >>> deferred = mdl.resolve_strategy("deferred")
    >>> deferred.cost_scale(4.0), deferred.loss_grad_scale(4.0)
    (0.25, 1.0)
    """

    def __init__(self, pm: PluginManager, plugin: object, info: StrategyInfo,
                 options: BaseModel | None) -> None:
        self.plugin_name = pm.get_name(plugin)
        #: A built-in strategy's formulas are tested here; a plugin's results are checked
        #: for NaN, so a broken formula is blamed on its plugin, not on the learning rate.
        self.built_in = self.plugin_name in DEFAULT_PLUGINS
        self.name, self.info, self.options = info.name, info, options
        #: Two strategies are the same normalization when plugin and options match.
        self.key = (self.plugin_name, None if options is None else options.model_dump_json())
        self._cost_scale = bind_hook(pm, plugin, "minidl_cost_scale")
        self._loss_grad_scale = bind_hook(pm, plugin, "minidl_loss_grad_scale")
        self._leaf_grad = bind_hook(pm, plugin, "minidl_leaf_grad", positional=True)
        # The plugin's minidl_leaf_grad, called straight by the pass plan (``direct_fold``)
        # when it takes (grad, count, new_grad, new_count).
        self._direct_fold = self._leaf_grad.direct
        self._combine_ranks = bind_hook(pm, plugin, "minidl_combine_ranks")
        #: The plugin keeps running values itself (it implements minidl_leaf_grad).
        self.folds_leaves = _implements(pm, plugin, "minidl_leaf_grad")
        self.combines_ranks = _implements(pm, plugin, "minidl_combine_ranks")
        self._pm = pm
        self._scales: dict[float, tuple[float, float]] = {}  # a built-in's, by count

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

    def scales(self, count: float) -> tuple[float, float]:
        """(c, s / c) for ``count`` examples: the cost scale and the pass's seed scale.

        A built-in strategy's are kept per count (they are pure functions of it), so a
        training step asks its hooks once per batch size, unless hook calls are watched.
        """
        known = self._scales.get(count)
        if known is not None and not self._pm.monitored:
            return known
        cost_scale = self.cost_scale(count)
        scales = (cost_scale, self.loss_grad_scale(count) / cost_scale)
        if self.built_in:
            if len(self._scales) >= 64:  # a few batch sizes, or weights that vary each batch
                self._scales.clear()
            self._scales[count] = scales
        return scales

    @property
    def direct_fold(self) -> Callable[..., Any] | None:
        """The plugin's ``minidl_leaf_grad`` itself, for the pass plan to call for each leaf
        with (grad, count, new_grad, new_count) and hand its answer to ``checked_leaf_grad``
        (0.2 us a leaf less than ``accumulate``); None while hook calls are monitored or when
        the plugin's implementation takes other arguments."""
        return None if self._pm.monitored else self._direct_fold

    def accumulate(self, leaf: Any, grad: np.ndarray | None, count: float,
                   new_grad: np.ndarray, new_count: float) -> np.ndarray:
        """The leaf's new normalized gradient (old plus new when the plugin does not say)."""
        value = self._leaf_grad(grad, count, new_grad, new_count, self.options)
        return self.checked_leaf_grad(value, leaf, grad, count, new_grad, new_count)

    def fold_failed(self, err: BaseException) -> BaseException:
        """What to raise when ``direct_fold`` raised ``err`` (a ``PluginError`` naming it)."""
        return plugin_failure(self.plugin_name, "minidl_leaf_grad", err)

    def checked_leaf_grad(self, value: Any, leaf: Any, grad: np.ndarray | None, count: float,
                          new_grad: np.ndarray, new_count: float) -> np.ndarray:
        """The plugin's answer for ``leaf``, checked (None: old plus new)."""
        if value is None:
            return new_grad if grad is None else grad + new_grad
        if self.built_in and type(value) is np.ndarray:  # its formulas are tested
            return value
        if isinstance(value, np.generic):  # numpy turns 0-d arithmetic into scalars
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.shape != leaf._data.shape:
            shown = getattr(value, "shape", type(value).__name__)
            raise PluginError(f"plugin {self.plugin_name!r} returned {shown} from hook "
                              f"minidl_leaf_grad; it must return an array of the leaf's shape "
                              f"{leaf._data.shape}")
        if not self.built_in and not np.isfinite(value).all() and np.isfinite(new_grad).all() \
                and (grad is None or np.isfinite(grad).all()):
            raise PluginError(f"plugin {self.plugin_name!r} returned NaN or inf from hook "
                              "minidl_leaf_grad for finite gradients (count "
                              f"{count:g}, new_count {new_count:g}): its formula is at fault, "
                              "not the learning rate; check it with mdl.testing.check_strategy")
        return value

    def combine_ranks(self, count: float, world_size: int) -> RankCombine:
        """How this rank's gradient of a leaf with ``count`` examples joins the other ranks'.

        The plugin's ``minidl_combine_ranks`` answer, or the sum over ranks when it has none.
        """
        if not self.combines_ranks:
            if self.folds_leaves:
                raise PluginError(
                    f"strategy {self.name!r} (plugin {self.plugin_name!r}) implements "
                    "minidl_leaf_grad but not minidl_combine_ranks, so minidl cannot tell how "
                    "its gradients combine over ranks; implement minidl_combine_ranks "
                    "(see minidl/hookspecs.py)")
            return SUM_OVER_RANKS
        value = self._combine_ranks(count=count, world_size=world_size, options=self.options)
        if value is None:
            return SUM_OVER_RANKS
        if not isinstance(value, RankCombine):
            raise PluginError(f"plugin {self.plugin_name!r} returned {value!r} from hook "
                              "minidl_combine_ranks; it must return a minidl.RankCombine")
        return value
