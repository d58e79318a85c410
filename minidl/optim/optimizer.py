"""``Optimizer``: owns ``zero_grad`` and ``step``; subclasses only write the update.

Parameters come in groups, as in torch: ``SGD(model.parameters(), lr=0.1)`` makes
one group; ``SGD([{"params": a, "lr": 0.1}, {"params": b}], lr=0.01)`` makes two,
each a dict in ``optimizer.param_groups`` holding its parameters and its own
hyperparameters (those a group leaves out take the constructor's values).

float16 parameters are updated through a float32 master copy kept in the
optimizer state (mixed-precision training): the update and every state buffer
are float32 and the result is rounded to float16 once, so an update smaller than
float16's resolution is not lost and ``eps = 1e-8`` does not round to 0.

The optimizer reads ``.grad`` as the normalization strategy left it and knows
nothing of strategies, with one guard: a step on gradients that no batch
reduction produced since they were last cleared raises, because a bare
``.sum()`` is not divided by anyone, whatever strategy the user believes is on.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

import numpy as np

from minidl.errors import GradientNotNormalizedError, HyperparameterError, InvalidTypeError
from minidl.tensor import Tensor

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)

_FLOAT16 = np.dtype(np.float16)


class Optimizer:
    """Base class: ``step()`` calls ``update(data, grad, state, group)`` for every
    parameter with a gradient; ``require_normalized=False`` allows plain-calculus
    gradients. A subclass passes its hyperparameter defaults to ``__init__`` and may
    override ``check_group`` to validate them.

    >>> import minidl as mdl
    >>> w = mdl.nn.Parameter([1.0])
    >>> opt = mdl.optim.SGD([w], lr=0.1)
    >>> mdl.nn.functional.mse_loss(w, mdl.tensor([0.0])).backward()
    >>> opt.step(); w
    Parameter containing:
    tensor([0.8], requires_grad=True)
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 defaults: dict[str, Any], require_normalized: bool = True) -> None:
        self.defaults = dict(defaults)
        self.require_normalized = require_normalized
        self.param_groups: list[dict[str, Any]] = []
        #: Per-parameter state, in the order of ``self.params`` (all groups, flattened).
        self.state: list[dict[str, Any]] = []
        self.steps = 0
        groups = list(params)
        if not groups:
            raise HyperparameterError("optimizer got an empty parameter list; pass "
                                      "model.parameters()")
        if not all(isinstance(group, dict) for group in groups):
            if any(isinstance(group, dict) for group in groups):
                raise InvalidTypeError("optimizer params mix tensors and parameter-group dicts; "
                                       "pass either tensors or dicts like "
                                       "{'params': [...], 'lr': 0.1}")
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- groups and hyperparameters ------------------------------------------------------
    @property
    def params(self) -> list[Tensor]:
        """Every parameter, group after group (the order of ``state``)."""
        return [param for group in self.param_groups for param in group["params"]]

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group (a dict with ``"params"`` and any hyperparameters), as torch.

        >>> import minidl as mdl
        >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=0.1)
        >>> opt.add_param_group({"params": [mdl.nn.Parameter([2.0])], "lr": 0.01})
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
        """
        if not isinstance(group, dict) or "params" not in group:
            raise InvalidTypeError("a parameter group is a dict with a 'params' key, got "
                                   f"{group!r}")
        number = len(self.param_groups)
        where = f"parameter group {number}: " if number or len(group) > 1 else ""
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise HyperparameterError(
                f"{where}unknown key(s) {unknown} for {type(self).__name__}; a group may "
                f"set: {', '.join(sorted(self.defaults))}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise HyperparameterError(f"{where}optimizer got an empty parameter list; pass "
                                      "model.parameters()")
        seen = {id(p) for p in self.params}
        offset = len(self.state)
        for index, param in enumerate(params, start=offset):
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise InvalidTypeError(f"optimizer parameter {index} is not a tensor that requires "
                                       "grad; pass model.parameters()")
            if id(param) in seen:
                raise HyperparameterError(f"optimizer parameter {index} appears twice (a "
                                          "parameter may be in one group only, once)")
            seen.add(id(param))
        full = {**self.defaults, **group, "params": params}
        try:
            self.check_group(full)
        except HyperparameterError as err:
            raise HyperparameterError(f"{where}{err}") from None
        self.param_groups.append(full)
        self.state += [{} for _ in params]

    def check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalize in place) a group's hyperparameters; the base checks lr."""
        if group.get("lr") is None:
            raise HyperparameterError(f"{type(self).__name__} needs a learning rate: pass "
                                      "lr=... or give every parameter group its own 'lr'")
        group["lr"] = check_hyper("lr", group["lr"], minimum=0.0)

    @property
    def lr(self) -> float:
        """The learning rate, when every group has the same one (else read param_groups)."""
        return self._shared("lr")

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_hyper("lr", value, minimum=0.0)
        for group in self.param_groups:
            group["lr"] = value

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: hyperparameters shared by all groups
        # (``adam.betas``), as the optimizers had before parameter groups.
        if name != "defaults" and name in self.__dict__.get("defaults", {}):
            return self._shared(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def _shared(self, name: str) -> Any:
        values = [group[name] for group in self.param_groups]
        if any(value != values[0] for value in values):
            raise HyperparameterError(f"the parameter groups have different {name} values "
                                      f"{values}; read optimizer.param_groups[i][{name!r}]")
        return values[0]

    # ---- the step ------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Clear every gradient (and the example counts behind them)."""
        recorder = _tensor_module._recorder  # a step being traced by mdl.compile records this
        if recorder is not None and recorder.optimizer_call(self, "zero_grad"):
            return
        for group in self.param_groups:
            for param in group["params"]:
                param._grad = None  # what ``param.grad = None`` does, without the property
                param._grad_record = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        recorder = _tensor_module._recorder  # a step being traced by mdl.compile records this
        if recorder is not None and recorder.optimizer_call(self, "step"):
            return
        if self.require_normalized:
            self._check_normalized()
        self.steps += 1
        update, states = self.update, iter(self.state)
        for group in self.param_groups:
            for param in group["params"]:
                state = next(states)
                grad = param._grad  # what the .grad property returns, read once
                if grad is None:
                    continue
                data = param.data  # the property: it snapshots an array a live graph saved
                if data.dtype is _FLOAT16 or data.dtype == _FLOAT16:
                    self._update_through_master(param, grad, state, group)
                else:
                    update(data, grad, state, group)

    def update(self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} must implement update(data, grad, state, group), changing "
            "the parameter's array `data` in place with the hyperparameters in `group`")

    def _update_through_master(self, param: Tensor, grad: np.ndarray, state: dict[str, Any],
                               group: dict[str, Any]) -> None:
        """A float16 parameter: update its float32 master copy, then round it to float16."""
        master = state.get("master")
        # Re-seeded when the weights changed outside the optimizer (loaded, re-initialized),
        # so a stale master copy never overwrites them.
        if master is None or not np.array_equal(master.astype(_FLOAT16), param.data):
            master = state["master"] = param.data.astype(np.float32)
        self.update(master, grad.astype(np.float32), state, group)
        param.data[...] = master

    def _check_normalized(self) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                record = param._grad_record  # grad_count is 0 without one or with count 0
                if param._grad is not None and (record is None or record.count == 0):
                    self._not_normalized(param)

    def _not_normalized(self, param: Tensor) -> None:
        index = next(i for i, p in enumerate(self.params) if p is param)
        raise GradientNotNormalizedError(
            f"parameter {index} (shape {param.shape}) has a gradient that no batch "
            "reduction produced since it was last cleared: the loss was reduced by "
            "plain calculus (e.g. a bare .sum()), so no normalization strategy divided "
            "it. Use a minidl loss with its default reduction or mdl.batch_reduce(...), "
            "or pass require_normalized=False to the optimizer if plain calculus is "
            "what you mean."
        )

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Step count, each group's hyperparameters (``params`` as indices into
        ``self.params``) and per-parameter state (arrays copied). Everything but
        ``state`` is JSON-serializable.
        """
        groups, start = [], 0
        for group in self.param_groups:
            count = len(group["params"])
            saved = {k: list(v) if isinstance(v, tuple) else v
                     for k, v in group.items() if k != "params"}
            groups.append({**saved, "params": list(range(start, start + count))})
            start += count
        return {"steps": self.steps, "param_groups": groups,
                "state": [{k: _copy(v) for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output (or one saved before parameter groups,
        with a single ``lr``) into an optimizer over the same parameters."""
        if len(state["state"]) != len(self.state):
            raise HyperparameterError(
                f"optimizer state has {len(state['state'])} parameters, this optimizer has "
                f"{len(self.state)}")
        groups = state.get("param_groups")
        if groups is None:  # saved before parameter groups: one lr for all
            groups = [{"lr": state["lr"]} for _ in self.param_groups]
        sizes = [len(g["params"]) for g in self.param_groups]
        if len(groups) != len(self.param_groups) or any(
                "params" in saved and len(saved["params"]) != size
                for saved, size in zip(groups, sizes)):
            raise HyperparameterError(
                f"optimizer state has parameter groups of sizes "
                f"{[len(g.get('params', ())) for g in groups]}, this optimizer has {sizes}")
        restored = []
        for group, saved in zip(self.param_groups, groups):
            new = {**group, **{k: v for k, v in saved.items() if k != "params"}}
            new["params"] = group["params"]
            self.check_group(new)
            restored.append(new)
        self.param_groups = restored
        self.steps = int(state["steps"])
        self.state = [{k: _copy(v) for k, v in s.items()} for s in state["state"]]


def _copy(value: Any) -> Any:
    """Arrays copied, Python scalars (Adam's step ``t``) kept as they are: a 0-d array
    there would change numpy's dtype promotion and so the float32 updates after a reload."""
    return np.array(value) if isinstance(value, np.ndarray) else value


def check_hyper(name: str, value: Any, minimum: float | None = None,
                below: float | None = None) -> float:
    """``value`` as a float, or ``HyperparameterError`` unless it is a finite number
    in [minimum, below)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise HyperparameterError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or (minimum is not None and value < minimum) or (
            below is not None and value >= below):
        bounds = f">= {minimum}" if below is None else f"in [{minimum}, {below})"
        raise HyperparameterError(f"invalid {name}: {value} (must be finite and {bounds})")
    return float(value)
