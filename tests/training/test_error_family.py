"""One error family (issue 8): every error minidl raises on purpose is a MinidlError, and
the CLI tells the user's mistakes (exit 2), run failures (exit 1) and bugs (exit 1,
traceback only under --debug or MINIDL_DEBUG=1) apart."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import minidl
import minidl.errors as errors
from minidl.cli import main

ERROR_CLASSES = sorted((cls for cls in vars(errors).values()
                        if inspect.isclass(cls) and issubclass(cls, BaseException)
                        and cls.__module__ == errors.__name__), key=lambda cls: cls.__name__)


def test_errors_module_defines_the_family():
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"MinidlError", "ConfigError", "DataError", "UnknownStrategyError", "ShapeError",
            "InvalidValueError", "PluginError", "GraphError"} <= names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_a_minidl_error_with_an_exit_code(cls):
    assert issubclass(cls, errors.MinidlError)
    assert cls.exit_code == (2 if issubclass(cls, errors.UsageError) else 1)


@pytest.mark.parametrize("cls", [errors.ConfigError, errors.DataError,
                                 errors.UnknownStrategyError, errors.ShapeError,
                                 errors.InvalidValueError], ids=lambda cls: cls.__name__)
def test_value_errors_stay_value_errors(cls):
    assert issubclass(cls, ValueError)
    with pytest.raises(ValueError, match="what was wrong"):  # callers catching ValueError
        raise cls("what was wrong")


def test_every_exception_class_in_minidl_is_a_minidl_error():
    """Not only errors.py: no module of minidl defines an exception outside the family."""
    found = []
    modules = pkgutil.walk_packages(minidl.__path__, prefix="minidl.")
    for info in modules:
        if info.name == "minidl.__main__":  # running it runs the CLI
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if (inspect.isclass(cls) and issubclass(cls, BaseException)
                    and cls.__module__ == module.__name__):
                found.append(cls)
                assert issubclass(cls, errors.MinidlError), f"{info.name}.{cls.__name__}"
    assert errors.MinidlError in found and len(found) >= len(ERROR_CLASSES)


# ---- the CLI -------------------------------------------------------------------------------

def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _config_raises(monkeypatch, error: BaseException) -> None:
    """Make ``minidl config`` raise ``error`` (the parser looks the command up per call)."""
    def run(args):
        raise error
    monkeypatch.setattr("minidl.cli.train._config", run)


@pytest.mark.parametrize("argv,message", [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["config", "--set", "nonsense"], "--set expects KEY=VALUE"),
])
def test_a_usage_error_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("error,code,prefix", [
    (errors.RunFailure("disk full while writing metrics"), 1, "failed: "),
    (errors.TrainingDiverged("the loss became nan at epoch 3"), 1, "failed: "),
    (errors.PluginError("plugin 'x' failed in hook minidl_step_end"), 1, "failed: "),
    (errors.ConfigError("train.epochs: must be positive"), 2, "error: "),
], ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None)
def test_a_minidl_error_is_one_line_with_its_exit_code(capsys, monkeypatch, error, code,
                                                        prefix):
    _config_raises(monkeypatch, error)
    exit_code, out, err = _run(capsys, "config")
    assert exit_code == code and out == ""
    assert err == f"{prefix}{error}\n"


def test_a_bug_is_one_line_saying_so_exit_1_without_traceback(capsys, monkeypatch):
    _config_raises(monkeypatch, ZeroDivisionError("division by zero"))
    code, out, err = _run(capsys, "config")
    assert code == 1 and out == ""
    assert err.startswith("internal error") and err.count("\n") == 1
    assert "ZeroDivisionError: division by zero" in err and "--debug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("how", ["--debug", "MINIDL_DEBUG=1"])
def test_debug_shows_the_traceback_of_a_bug(capsys, monkeypatch, how):
    _config_raises(monkeypatch, ZeroDivisionError("division by zero"))
    argv = ["config"]
    if how == "--debug":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("MINIDL_DEBUG", "1")
    code, out, err = _run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("Traceback (most recent call last):")
    assert "raise error" in err  # the frame that raised, from this file
    assert "ZeroDivisionError: division by zero" in err
    assert err.splitlines()[-1].startswith("internal error")


def test_debug_shows_the_traceback_of_a_minidl_error_too(capsys, monkeypatch):
    _config_raises(monkeypatch, errors.RunFailure("disk full"))
    code, _, err = _run(capsys, "--debug", "config")
    assert code == 1 and "Traceback" in err and err.splitlines()[-1] == "failed: disk full"
