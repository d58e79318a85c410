"""Adam (Kingma & Ba, 2015, arXiv:1412.6980) and AdamW (Loshchilov & Hutter, 2019,
arXiv:1711.05101, decoupled weight decay), as in torch.optim."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minidl.errors import HyperparameterError
from minidl.optim.optimizer import Optimizer, check_hyper
from minidl.tensor import Tensor


class Adam(Optimizer):
    """Adaptive moments; ``weight_decay`` adds an L2 term to the gradient.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([1.0])
    >>> mdl.optim.Adam([w], lr=1e-3).betas
    (0.9, 0.999)
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, require_normalized: bool = True) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, require_normalized)

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise HyperparameterError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = (check_hyper("beta1", betas[0], minimum=0.0, below=1.0),
                          check_hyper("beta2", betas[1], minimum=0.0, below=1.0))
        group["eps"] = check_hyper("eps", group["eps"], minimum=0.0)
        group["weight_decay"] = check_hyper("weight_decay", group["weight_decay"], minimum=0.0)

    def decay(self, data: np.ndarray, grad: np.ndarray, group: dict[str, Any]) -> np.ndarray:
        """L2 regularization: weight decay enters the gradient (coupled)."""
        weight_decay = group["weight_decay"]
        return grad + weight_decay * data if weight_decay else grad

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        grad = self.decay(data, grad, group)
        beta1, beta2 = group["betas"]
        if "m" not in state:
            state["m"], state["v"], state["t"] = np.zeros_like(grad), np.zeros_like(grad), 0
        state["t"] = int(state["t"]) + 1  # a Python int even if reloaded as a 0-d array
        m, v, t = state["m"], state["v"], state["t"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        data -= group["lr"] * m_hat / (np.sqrt(v_hat) + group["eps"])


class AdamW(Adam):
    """Adam with decoupled weight decay: p -= lr * weight_decay * p before the step.

    >>> import minidl as mdl
    >>> mdl.optim.AdamW([mdl.nn.Parameter([1.0])]).weight_decay
    0.01
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, require_normalized: bool = True) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, require_normalized)

    def decay(self, data: np.ndarray, grad: np.ndarray, group: dict[str, Any]) -> np.ndarray:
        if group["weight_decay"]:
            data *= 1 - group["lr"] * group["weight_decay"]
        return grad
