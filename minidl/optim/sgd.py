"""Stochastic gradient descent with momentum (Polyak 1964; Nesterov as in Sutskever
et al. 2013), with the same update rule as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minidl.errors import InvalidValueError
from minidl.optim.optimizer import Optimizer, _check_hyper
from minidl.tensor import Tensor


class SGD(Optimizer):
    """p -= lr * g, where g is the gradient plus weight decay, through momentum.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([1.0])
    >>> mdl.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True).lr
    0.1
    """

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False,
                 require_normalized: bool = True) -> None:
        super().__init__(params, lr, require_normalized)
        _check_hyper("momentum", momentum, minimum=0.0, below=1.0)
        _check_hyper("weight_decay", weight_decay, minimum=0.0)
        if nesterov and momentum == 0:
            raise InvalidValueError("nesterov=True needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if self.momentum:
            buffer = state.get("momentum")
            if buffer is None:
                buffer = state["momentum"] = grad.copy()
            else:
                buffer *= self.momentum
                buffer += grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param.data -= self.lr * grad
