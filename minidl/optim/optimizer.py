"""``Optimizer``: owns ``zero_grad`` and ``step``; subclasses only write the update.

The optimizer reads ``.grad`` as the normalization strategy left it and knows
nothing of strategies, with one guard: a step on gradients that no batch
reduction produced since they were last cleared raises, because a bare
``.sum()`` is not divided by anyone, whatever strategy the user believes is on.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from minidl.errors import GradientNotNormalizedError, InvalidTypeError, InvalidValueError
from minidl.tensor import Tensor


class Optimizer:
    """Base class: ``step()`` calls ``update(param, grad, state)`` for every parameter
    with a gradient. ``require_normalized=False`` allows plain-calculus gradients.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([1.0])
    >>> opt = mdl.optim.SGD([w], lr=0.1)
    >>> mdl.nn.functional.mse_loss(w, mdl.tensor([0.0])).backward()
    >>> opt.step(); w
    Parameter containing:
    tensor([0.8], requires_grad=True)
    """

    def __init__(self, params: Iterable[Tensor], lr: float,
                 require_normalized: bool = True) -> None:
        self.params = list(params)
        if not self.params:
            raise InvalidValueError("optimizer got an empty parameter list; pass "
                                    "model.parameters()")
        for index, param in enumerate(self.params):
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise InvalidTypeError(f"optimizer parameter {index} is not a tensor that requires "
                                       "grad; pass model.parameters()")
        _check_hyper("lr", lr, minimum=0.0)
        self.lr = float(lr)
        self.require_normalized = require_normalized
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        """Clear every gradient (and the example counts behind them)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        if self.require_normalized:
            self._check_normalized()
        self.steps += 1
        update = self.update
        for param, state in zip(self.params, self.state):
            grad = param._grad  # what the .grad property returns, read once
            if grad is not None:
                update(param, grad, state)

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement "
                                  "update(param, grad, state), changing param.data in place")

    def _check_normalized(self) -> None:
        for index, param in enumerate(self.params):
            if param._grad is not None and param.grad_count == 0:
                raise GradientNotNormalizedError(
                    f"parameter {index} (shape {param.shape}) has a gradient that no batch "
                    "reduction produced since it was last cleared: the loss was reduced by "
                    "plain calculus (e.g. a bare .sum()), so no normalization strategy divided "
                    "it. Use a minidl loss with its default reduction or mdl.batch_reduce(...), "
                    "or pass require_normalized=False to the optimizer if plain calculus is "
                    "what you mean."
                )

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and per-parameter state (arrays copied)."""
        return {"lr": self.lr, "steps": self.steps,
                "state": [{k: _copy(v) for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["state"]) != len(self.params):
            raise InvalidValueError(f"optimizer state has {len(state['state'])} parameters, this "
                                    f"optimizer has {len(self.params)}")
        self.lr, self.steps = float(state["lr"]), int(state["steps"])
        self.state = [{k: _copy(v) for k, v in s.items()} for s in state["state"]]


def _copy(value: Any) -> Any:
    """Arrays copied, Python scalars (Adam's step ``t``) kept as they are: a 0-d array
    there would change numpy's dtype promotion and so the float32 updates after a reload."""
    return np.array(value) if isinstance(value, np.ndarray) else value


def _check_hyper(name: str, value: Any, minimum: float | None = None,
                 below: float | None = None) -> None:
    """``ValueError`` unless value is a finite number in [minimum, below)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise InvalidValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or (minimum is not None and value < minimum) or (
            below is not None and value >= below):
        bounds = f">= {minimum}" if below is None else f"in [{minimum}, {below})"
        raise InvalidValueError(f"invalid {name}: {value} (must be finite and {bounds})")
