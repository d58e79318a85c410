"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: call ``step()`` once per
epoch, after that epoch's optimizer steps.

Each schedule is a closed form ``lr_at(base_lr, epoch)`` of the group's initial
learning rate, so a schedule restored from ``state_dict`` continues bit-exactly
(nothing compounds), and each ``step()`` overwrites the groups' ``lr``. As in
torch, the first schedule built on an optimizer records every group's
``initial_lr``, and later ones (``SequentialLR``'s children) start from it.

>>> import minidl as mdl
>>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=0.1)
>>> schedule = mdl.optim.lr_scheduler.InverseTimeLR(opt, decay_rate=1.0)
>>> for epoch in range(3):
...     # ... an epoch of optimizer.step() ...
...     schedule.step()
>>> schedule.get_last_lr()   # 0.1 / (1 + 1.0 * 3)
[0.025]
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Sequence

from minidl.errors import HyperparameterError, InvalidTypeError
from minidl.optim.optimizer import Optimizer, check_hyper

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)

__all__ = ["CosineAnnealingLR", "ExponentialLR", "InverseTimeLR", "LRScheduler", "LambdaLR",
           "LinearWarmup", "SequentialLR", "StepLR"]


class LRScheduler:
    """Base class: sets every group's ``lr`` to ``lr_at(initial_lr, epoch)``.

    Subclasses implement ``lr_at``; ``last_epoch`` counts the ``step()`` calls (0 once
    built: the constructor applies epoch 0's rate).
    """

    #: Attributes that are not state (not saved by ``state_dict``).
    _not_state: tuple[str, ...] = ("optimizer",)

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"{type(self).__name__} needs a minidl optimizer, got "
                                   f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self._last_lr: list[float] = []
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement "
                                  "lr_at(base_lr, epoch) -> the learning rate at that epoch")

    def step(self) -> None:
        """Move to the next epoch and set each group's learning rate for it."""
        recorder = _tensor_module._recorder
        if recorder is not None:  # Python state a replay of a compiled step would not change
            recorder.unsupported("an LR scheduler step inside the step")
        self.last_epoch += 1
        self._last_lr = [self.lr_at(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group, as the last ``step()`` set it."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions), JSON-serializable."""
        return {key: list(value) if isinstance(value, list) else value
                for key, value in vars(self).items() if key not in self._not_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        # Re-apply the restored epoch's rate, so the optimizer agrees with the schedule.
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch).

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> mdl.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch).get_last_lr()
    [1.0]
    """

    _not_state = ("optimizer", "lr_lambda")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]) -> None:
        if not callable(lr_lambda):
            raise InvalidTypeError(f"LambdaLR needs a function of the epoch, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * float(self.lr_lambda(epoch))


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size).

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> mdl.optim.lr_scheduler.StepLR(opt, step_size=10).lr_at(1.0, 25)
    0.010000000000000002
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = check_hyper("gamma", gamma, minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch (the course's exponential decay, 0.95 ** epoch).

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> mdl.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5).lr_at(1.0, 3)
    0.125
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_hyper("gamma", gamma, minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** epoch


class InverseTimeLR(LRScheduler):
    """lr = initial_lr / (1 + decay_rate * epoch), the course's learning-rate decay.

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=0.2)
    >>> mdl.optim.lr_scheduler.InverseTimeLR(opt, decay_rate=1.0).lr_at(0.2, 1)
    0.1
    """

    def __init__(self, optimizer: Optimizer, decay_rate: float) -> None:
        self.decay_rate = check_hyper("decay_rate", decay_rate, minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr / (1 + self.decay_rate * epoch)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
    (Loshchilov & Hutter 2017, arXiv:1608.03983, without restarts; torch's closed form).

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> mdl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10).lr_at(1.0, 5)
    0.5
    """

    def __init__(self, optimizer: Optimizer, T_max: int,  # noqa: N803 (torch's name)
                 eta_min: float = 0.0) -> None:
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = check_hyper("eta_min", eta_min, minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (base_lr - self.eta_min) * cosine


class LinearWarmup(LRScheduler):
    """lr rises linearly from initial_lr * start_factor to initial_lr over
    ``warmup_epochs``, then stays (torch's ``LinearLR`` with end_factor 1; Goyal et al.
    2017, arXiv:1706.02677). Follow it with another schedule through ``SequentialLR``.

    >>> import minidl as mdl
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> warmup = mdl.optim.lr_scheduler.LinearWarmup(opt, warmup_epochs=4, start_factor=0.2)
    >>> [round(warmup.lr_at(1.0, epoch), 6) for epoch in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """

    def __init__(self, optimizer: Optimizer, warmup_epochs: int,
                 start_factor: float = 0.1) -> None:
        self.warmup_epochs = _positive_int("warmup_epochs", warmup_epochs)
        self.start_factor = check_hyper("start_factor", start_factor, minimum=0.0)
        if self.start_factor > 1:
            raise HyperparameterError(f"invalid start_factor: {start_factor} (must be in "
                                      "[0, 1]: the warmup rises to the initial lr)")
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        progress = min(epoch, self.warmup_epochs) / self.warmup_epochs
        return base_lr * (self.start_factor + (1 - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from epoch ``milestones[i - 1]`` on, counting its epochs from 0
    there (torch's ``SequentialLR``): e.g. a warmup, then a cosine decay.

    >>> import minidl as mdl
    >>> from minidl.optim import lr_scheduler as S
    >>> opt = mdl.optim.SGD([mdl.nn.Parameter([1.0])], lr=1.0)
    >>> schedule = S.SequentialLR(opt, [S.LinearWarmup(opt, 2, start_factor=0.5),
    ...                                 S.CosineAnnealingLR(opt, T_max=2)], milestones=[2])
    >>> [schedule.lr_at(1.0, epoch) for epoch in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.0]
    """

    _not_state = ("optimizer", "schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int]) -> None:
        if len(schedulers) < 1 or len(milestones) != len(schedulers) - 1:
            raise HyperparameterError(f"SequentialLR needs one milestone between each two "
                                      f"schedulers: got {len(schedulers)} schedulers and "
                                      f"milestones {list(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise HyperparameterError("SequentialLR: every scheduler must drive its optimizer")
        if list(milestones) != sorted(set(milestones)) or any(m < 1 for m in milestones):
            raise HyperparameterError(f"SequentialLR milestones must be increasing positive "
                                      f"epochs, got {list(milestones)}")
        self.schedulers = list(schedulers)
        self.milestones = [int(m) for m in milestones]
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        starts = [0, *self.milestones]
        index = sum(epoch >= m for m in self.milestones)
        return self.schedulers[index].lr_at(base_lr, epoch - starts[index])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(),
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        for scheduler, saved in zip(self.schedulers, state.pop("schedulers", [])):
            scheduler.load_state_dict(saved)
        super().load_state_dict(state)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HyperparameterError(f"{name} must be a positive integer, got {value!r}")
    return value
