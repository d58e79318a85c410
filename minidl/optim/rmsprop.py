"""RMSprop (Hinton, *Neural Networks for Machine Learning*, lecture 6e, 2012; the
centered form from Graves 2013, arXiv:1308.0850), with ``torch.optim.RMSprop``'s rule.

The course's RMSprop, ``S = beta S + (1 - beta) dW**2; W -= lr dW / (sqrt(S) + eps)``,
is this with ``alpha = beta``.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minidl.optim.optimizer import Optimizer, check_hyper
from minidl.tensor import Tensor


class RMSprop(Optimizer):
    """Divide the gradient by a running root mean square of its recent values.

    ``centered`` subtracts the square of the running mean gradient (a variance
    estimate); ``momentum`` keeps a buffer of the scaled steps.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([1.0])
    >>> w.grad = [2.0]
    >>> mdl.optim.RMSprop([w], lr=0.01, require_normalized=False).step()
    >>> round(float(w.data[0]), 4)   # 1 - 0.01 * 2 / sqrt(0.01 * 4)
    0.9
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False,
                 require_normalized: bool = True) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered)
        super().__init__(params, defaults, require_normalized)

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        group["alpha"] = check_hyper("alpha", group["alpha"], minimum=0.0, below=1.0)
        group["eps"] = check_hyper("eps", group["eps"], minimum=0.0)
        group["weight_decay"] = check_hyper("weight_decay", group["weight_decay"], minimum=0.0)
        group["momentum"] = check_hyper("momentum", group["momentum"], minimum=0.0, below=1.0)
        group["centered"] = bool(group["centered"])

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * data
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(grad)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(grad))
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            denominator = np.sqrt(square_avg) + group["eps"]
        if momentum:
            buffer = state.setdefault("momentum", np.zeros_like(grad))
            buffer *= momentum
            buffer += grad / denominator
            data -= group["lr"] * buffer
        else:
            data -= group["lr"] * grad / denominator
