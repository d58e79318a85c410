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
"""

from minidl.hookspecs import hookimpl
from minidl.strategy import StrategyInfo  # before plugins import it from here

from minidl import data, metrics, nn, optim  # noqa: E402,I001
from minidl.autograd import Function, detect_anomaly, enable_grad, is_grad_enabled, no_grad
from minidl.dtypes import get_default_dtype, set_default_dtype
from minidl.errors import (AnomalyError, GradientNotNormalizedError, GraphError, MinidlError,
                           PluginError, ShapeError)
from minidl.gradcheck import gradcheck
from minidl.ops import (abs, batch_reduce, concatenate, exp, log, matmul, max, maximum, mean,
                        relu, reshape, sigmoid, sqrt, stack, sum, tanh, transpose, where)
from minidl.pluginmanager import get_plugin_manager
from minidl.strategy import (NormalizationConfig, Strategy, UnknownStrategyError,
                             active_strategy, normalization, resolve_strategy)
from minidl.tensor import Tensor, from_numpy, tensor

__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "Function", "GradientNotNormalizedError", "GraphError", "MinidlError",
    "NormalizationConfig", "PluginError", "ShapeError", "Strategy", "StrategyInfo", "Tensor",
    "UnknownStrategyError", "abs", "active_strategy", "batch_reduce", "concatenate", "data",
    "detect_anomaly", "enable_grad", "exp", "from_numpy", "get_default_dtype",
    "get_plugin_manager", "gradcheck", "hookimpl", "is_grad_enabled", "log", "matmul", "max",
    "maximum", "mean", "metrics", "nn", "no_grad", "normalization", "optim", "relu", "reshape",
    "resolve_strategy", "set_default_dtype", "sigmoid", "sqrt", "stack", "sum", "tanh", "tensor",
    "transpose", "where",
]
