"""Every error minidl raises on purpose: one family, each saying what was wrong and what to do.

Each class keeps the built-in base callers already catch (``ValueError`` for bad
values, ``RuntimeError`` for misuse at run time). ``exit_code`` says how the CLI
reports it: 2 for the user's mistake (bad usage, config, data, a plugin that cannot
load), 1 for a failure while running. Anything that is not a ``MinidlError`` is a
bug in minidl, and the CLI says so.

>>> issubclass(ConfigError, ValueError), ConfigError.exit_code, TrainingDiverged.exit_code
(True, 2, 1)
"""

from __future__ import annotations


class MinidlError(Exception):
    """Base class of every error minidl raises on purpose."""

    #: How the CLI exits on it: 2 the user's mistake, 1 a failure while running.
    exit_code = 1


class UsageError(MinidlError):
    """Bad usage of a command or an API: the user can fix it by changing what they asked."""

    exit_code = 2


class InvalidValueError(UsageError, ValueError):
    """An argument whose value minidl cannot use; the message says which, and what is allowed."""


class InvalidTypeError(UsageError, TypeError):
    """An argument of a type minidl cannot use; the message says what to pass instead."""


class ConfigError(UsageError, ValueError):
    """A config file, ``--set`` value or config field that cannot be used; names the field."""


class DataError(UsageError, ValueError):
    """A dataset that cannot be loaded or a data file that is malformed; names the file."""


class UnknownStrategyError(UsageError, ValueError):
    """A normalization strategy name that no installed plugin answers to."""


class CheckpointError(UsageError, ValueError):
    """A checkpoint or model file that cannot be loaded; names the file and what is wrong."""


class ConfigTextError(ConfigError):
    """A config file or ``--set`` text that cannot be read safely (size, nesting, encoding,
    YAML aliases, huge integers); the message names the file and the problem."""


class ArchiveError(UsageError, ValueError):
    """An ``.npz`` archive that is damaged, lies about its contents or would unpack too
    large; the message names the file and the member."""


class MemoryEstimateError(DataError):
    """A run whose arrays would not fit in the available memory; says the estimate."""


class ShapeError(UsageError, ValueError):
    """Shapes that do not fit together; the message names the op and every shape."""


class PluginError(MinidlError, RuntimeError):
    """A plugin that cannot load, or whose hook raised or returned something unusable.

    Exit 1 when a plugin fails while running; the CLI reports one that cannot load,
    while it reads the config, as a usage error (exit 2).
    """


class GraphError(MinidlError, RuntimeError):
    """A misuse of the autograd graph (freed graph, non-scalar root, no grad)."""


class AnomalyError(MinidlError, FloatingPointError):
    """Raised under ``mdl.detect_anomaly()`` by the first op producing NaN or inf."""


class GradientNotNormalizedError(MinidlError, RuntimeError):
    """An optimizer step on gradients that no batch reduction produced."""


class RunFailure(MinidlError):
    """A failure while running that is not the user's input (an unwritable output, ...)."""


class OutputWriteError(RunFailure, OSError):
    """Writing an output failed mid-run (disk full, directory gone or read-only)."""


class NonFiniteGradientError(RunFailure):
    """Gradient clipping met NaN or inf: the total norm is not a number to clip by."""


class GradcheckError(MinidlError, AssertionError):
    """Analytical and numerical gradients disagree; the message says where."""


class TrainingDiverged(RunFailure, FloatingPointError):
    """The loss became NaN or infinite; the message says when."""


class OutputDirError(UsageError, ValueError):
    """``output.dir`` cannot be created or written to; found before training starts."""


class HyperparameterError(UsageError, ValueError):
    """An optimizer, parameter group or scheduler given an invalid setting; the message
    names the setting, the value and the allowed range."""


class StateDictError(CheckpointError, KeyError):
    """A state dict or weights file whose names do not match the model's (also a
    ``KeyError``, as torch raises); the message names the missing and unexpected keys."""

    __str__ = BaseException.__str__  # KeyError's would quote the whole message


class MissingExtraError(UsageError, ImportError):
    """A feature whose optional extra is not installed; the message names the install command."""


class ReportedByAnotherRank(MinidlError):
    """This rank stops because another rank of a data-parallel job failed and reported it.

    The CLI prints nothing for it (the failing rank printed the one message) and exits
    with ``exit_code``, the failing rank's.
    """

    def __init__(self, exit_code: int) -> None:
        super().__init__("")
        self.exit_code = exit_code
