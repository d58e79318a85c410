"""Exceptions minidl raises: each says what was wrong and what to do about it."""

from __future__ import annotations


class MinidlError(Exception):
    """Base class of every error minidl raises on purpose."""


class ShapeError(MinidlError, ValueError):
    """Shapes that do not fit together; the message names the op and every shape."""


class GraphError(MinidlError, RuntimeError):
    """A misuse of the autograd graph (freed graph, non-scalar root, no grad)."""


class AnomalyError(MinidlError, FloatingPointError):
    """Raised under ``mdl.detect_anomaly()`` by the first op producing NaN or inf."""


class PluginError(MinidlError, RuntimeError):
    """A plugin's hook raised or returned something the engine cannot use."""


class GradientNotNormalizedError(MinidlError, RuntimeError):
    """An optimizer step on gradients that no batch reduction produced."""


class HyperparameterError(MinidlError, ValueError):
    """An optimizer, parameter group or scheduler given an invalid setting; the message
    names the setting, the value and the allowed range."""
