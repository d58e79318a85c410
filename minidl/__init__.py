"""minidl: a small, readable deep-learning framework on numpy in which *where the
1/m of a batch mean goes* is a plugin.

>>> import minidl as mdl
>>> w = mdl.tensor([[0.5, -0.5]], requires_grad=True)
>>> x = mdl.tensor([[1.0, 2.0], [3.0, 4.0]])
>>> y = mdl.tensor([[1.0], [0.0]])
>>> loss = mdl.nn.functional.mse_loss(x @ w.T, y)   # deferred-1/m unless told otherwise
>>> loss.backward()
>>> w.grad
array([[-3., -5.]], dtype=float32)

``import minidl`` loads the engine (tensors, ops, autograd) only. The plugin
machinery and everything built on it (normalization, nn, optim, data) load on
first use, so plain calculus never depends on which plugins are installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from minidl.dtypes import get_default_dtype, set_default_dtype
from minidl.errors import (
    AnomalyError,
    ConfigError,
    DataError,
    GradientNotNormalizedError,
    GraphError,
    MinidlError,
    PluginError,
    ShapeError,
    UnknownStrategyError,
)
from minidl.gradcheck import gradcheck
from minidl.gradmode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from minidl.hookspecs import RankCombine, StrategyInfo, hookimpl
from minidl.ops import (
    abs,
    concatenate,
    exp,
    log,
    matmul,
    max,
    maximum,
    mean,
    relu,
    reshape,
    sigmoid,
    sqrt,
    stack,
    sum,
    tanh,
    transpose,
    where,
)
from minidl.tensor import Function, Tensor, from_numpy, tensor

if TYPE_CHECKING:
    from minidl import data, distributed, metrics, models, nn, optim, testing
    from minidl.models import load, save
    from minidl.pluginmanager import get_plugin_manager
    from minidl.strategy import (
        NormalizationConfig,
        Strategy,
        active_strategy,
        batch_reduce,
        normalization,
        resolve_strategy,
    )
    from minidl.training import Trainer

__version__ = "0.1.0"

#: Public names loaded on first use: name -> the module that defines it.
_LAZY = {
    "data": "minidl.data", "metrics": "minidl.metrics", "nn": "minidl.nn",
    "optim": "minidl.optim", "testing": "minidl.testing",
    "NormalizationConfig": "minidl.strategy", "Strategy": "minidl.strategy",
    "active_strategy": "minidl.strategy", "batch_reduce": "minidl.strategy",
    "normalization": "minidl.strategy", "resolve_strategy": "minidl.strategy",
    "get_plugin_manager": "minidl.pluginmanager",
    "models": "minidl.models", "save": "minidl.models", "load": "minidl.models",
    "Trainer": "minidl.training", "compile": "minidl.capture",
    "distributed": "minidl.distributed",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'minidl' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"minidl.{name}" else getattr(module, name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AnomalyError", "ConfigError", "DataError", "Function", "GradientNotNormalizedError",
    "GraphError", "MinidlError", "NormalizationConfig", "PluginError", "RankCombine", "ShapeError",
    "Strategy", "StrategyInfo", "Tensor", "Trainer", "UnknownStrategyError", "abs",
    "active_strategy", "batch_reduce", "compile", "concatenate", "data", "detect_anomaly",
    "distributed", "enable_grad", "exp", "from_numpy", "get_default_dtype", "get_plugin_manager",
    "gradcheck", "hookimpl", "is_grad_enabled", "load", "log", "matmul", "max", "maximum", "mean",
    "metrics", "models", "nn", "no_grad", "normalization", "optim", "relu", "reshape",
    "resolve_strategy", "save", "set_default_dtype", "sigmoid", "sqrt", "stack", "sum", "tanh",
    "tensor", "testing", "transpose", "where",
]
