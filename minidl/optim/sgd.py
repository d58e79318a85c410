"""Stochastic gradient descent with momentum (Polyak 1964; Nesterov as in Sutskever
et al. 2013), with the same update rule as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minidl.errors import HyperparameterError
from minidl.optim.optimizer import Optimizer, check_hyper
from minidl.tensor import Tensor


class SGD(Optimizer):
    """p -= lr * g, where g is the gradient plus weight decay, through momentum.

    >>> import minidl as mdl
    >>> w, b = mdl.nn.Parameter([1.0]), mdl.nn.Parameter([0.0])
    >>> opt = mdl.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1,
    ...                     momentum=0.9, nesterov=True)
    >>> [group["lr"] for group in opt.param_groups]
    [0.1, 0.01]
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 lr: float | None = None, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, require_normalized: bool = True) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults, require_normalized)

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        group["momentum"] = check_hyper("momentum", group["momentum"], minimum=0.0, below=1.0)
        group["weight_decay"] = check_hyper("weight_decay", group["weight_decay"], minimum=0.0)
        group["nesterov"] = bool(group["nesterov"])
        if group["nesterov"] and group["momentum"] == 0:
            raise HyperparameterError("nesterov=True needs momentum > 0")

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay:
            grad = grad + weight_decay * data
        if momentum:
            buffer = state.get("momentum")
            if buffer is None:
                buffer = state["momentum"] = grad.copy()
            else:
                buffer *= momentum
                buffer += grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        data -= group["lr"] * grad
