"""Argument parsing and the one place that turns errors into messages and exit codes.

A ``MinidlError`` is reported as one line: exit 2 when it is the user's mistake
(``UsageError`` and its kind: config, data, strategy names), exit 1 when a run
failed. Anything else is a bug in minidl: one line saying so, exit 1, and the
full traceback with ``--debug`` or ``MINIDL_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from minidl.errors import MinidlError, ReportedByAnotherRank, RunFailure, UsageError

__all__ = ["RunFailure", "UsageError", "main"]


@contextmanager
def reading_user_input() -> Iterator[None]:
    """Wrap the reading of what the user asked for (config, data, plugins, checkpoints):
    any minidl error there is the user's to fix, so it exits 2 whatever its kind."""
    try:
        yield
    except UsageError:
        raise
    except MinidlError as err:
        raise UsageError(str(err)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    from minidl.cli import compare as compare_cmd
    from minidl.cli import new_strategy as new_strategy_cmd
    from minidl.cli import plugins as plugins_cmd
    from minidl.cli import predict as predict_cmd
    from minidl.cli import train as train_cmd

    parser = _Parser(prog="minidl", description="minidl: where does the 1/m go?")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of any error (also MINIDL_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    train_cmd.add_parser(commands)
    compare_cmd.add_parser(commands)
    plugins_cmd.add_parser(commands)
    predict_cmd.add_parser(commands)
    new_strategy_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("MINIDL_DEBUG"))
    try:
        args = _build_parser().parse_args(argv)
        args.argv = argv  # for commands that restart themselves (train --nproc)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except ReportedByAnotherRank as err:  # another rank printed the one message
        return err.exit_code
    except MinidlError as err:
        if debug:
            traceback.print_exc()
        print(f"{'error' if err.exit_code == 2 else 'failed'}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:
        where = f" ({err})" if str(err) else ""  # a plugin's hook, if one raised it
        print(f"interrupted{where}", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            traceback.print_exc()
        print(f"internal error (a bug in minidl; please report it): {type(err).__name__}: "
              f"{err}. Rerun with --debug or MINIDL_DEBUG=1 for the traceback.",
              file=sys.stderr)
        return 1
