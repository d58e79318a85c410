"""Grad modes: ``no_grad``, ``enable_grad`` and ``detect_anomaly``, each a ContextVar switch.

ContextVars, not globals: each thread (and each asyncio task) has its own mode.
Each switch is a ``contextlib.ContextDecorator``, so it works as ``with`` block,
as ``@mdl.no_grad()`` and, as in torch, bare as ``@mdl.no_grad``.
"""

from __future__ import annotations

from contextlib import ContextDecorator
from contextvars import ContextVar, Token
from typing import Any

import numpy as np

from minidl.errors import AnomalyError

grad_enabled: ContextVar[bool] = ContextVar("minidl_grad_enabled", default=True)
anomaly_enabled: ContextVar[bool] = ContextVar("minidl_anomaly_enabled", default=False)


class _ModeSwitch(ContextDecorator):
    """Set one ContextVar for a block; the token stack makes one instance re-entrant."""

    _var: ContextVar[bool]
    _value: bool

    def __new__(cls, func: Any = None) -> Any:
        if func is not None:  # used bare, as @mdl.no_grad: decorate func directly
            return object.__new__(cls)(func)
        return object.__new__(cls)

    def __init__(self, func: Any = None) -> None:
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(self._var.set(self._value))

    def __exit__(self, *exc_info: object) -> None:
        self._var.reset(self._tokens.pop())

    def _recreate_cm(self) -> _ModeSwitch:
        # A fresh switch per decorated call: threads calling one decorated function
        # must not share a token stack.
        return type(self)()


class no_grad(_ModeSwitch):
    """Run a block without building a graph (inference, optimizer updates).

    >>> import minidl as mdl
    >>> w = mdl.tensor([1.0, 2.0], requires_grad=True)
    >>> with mdl.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    _var = grad_enabled
    _value = False


class enable_grad(_ModeSwitch):
    """Build graphs again inside a ``no_grad`` block."""

    _var = grad_enabled
    _value = True


class detect_anomaly(_ModeSwitch):
    """Raise ``AnomalyError`` at the first op whose forward or backward makes NaN or inf.

    Slower (every result is checked), so use it to find where a NaN starts.

    >>> import minidl as mdl
    >>> x = mdl.tensor([0.0], requires_grad=True)
    >>> with mdl.detect_anomaly():
    ...     mdl.log(x)
    Traceback (most recent call last):
    minidl.errors.AnomalyError: Log forward produced -inf ...
    """

    _var = anomaly_enabled
    _value = True


def is_grad_enabled() -> bool:
    """Whether ops record a graph here (False inside ``no_grad``)."""
    return grad_enabled.get()


def check_finite(array: np.ndarray, where: str) -> None:
    """Raise ``AnomalyError`` if a floating ``array`` holds NaN or inf (detect_anomaly)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = "nan" if np.isnan(array).any() else ("inf" if np.isposinf(array).any() else "-inf")
        raise AnomalyError(
            f"{where} produced {bad} (first under detect_anomaly); look at this op's inputs"
        )
