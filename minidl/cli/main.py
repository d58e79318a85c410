"""Argument parsing and the one place that turns errors into messages and exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from minidl.errors import MinidlError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(MinidlError):
    """Bad usage or config: reported as one message with exit code 2."""


class RunFailure(MinidlError):
    """A failure while running (NaN loss, ...): reported with exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    from minidl.cli import compare as compare_cmd
    from minidl.cli import plugins as plugins_cmd
    from minidl.cli import train as train_cmd

    parser = _Parser(prog="minidl", description="minidl: where does the 1/m go?")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    train_cmd.add_parser(commands)
    compare_cmd.add_parser(commands)
    plugins_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    try:
        args = _build_parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailure as err:
        print(f"failed: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except MinidlError as err:
        # Last resort: minidl raises these on purpose with a message meant for the user
        # (a plugin failing mid-run, ...), so show that message, never a traceback.
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

