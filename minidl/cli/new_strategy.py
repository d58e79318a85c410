"""``minidl new-strategy NAME``: write a strategy package ready to install and test."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from minidl.errors import UsageError


def _run(args: argparse.Namespace) -> int:
    from minidl.scaffold import write_strategy_package
    from minidl.strategy import strategy_index

    if args.name in strategy_index():
        raise UsageError(f"a strategy named {args.name!r} is already installed; choose "
                         "another name")
    files = write_strategy_package(args.name, args.dir)
    root = Path(args.dir) / args.name
    print(f"wrote the strategy package {root}/:")
    for path in files:
        print(f"  {path.relative_to(root)}")
    where = "" if Path(args.dir) == Path(".") else f"cd {args.dir} && "
    print(f"next: {where}pip install -e {args.name} && pytest {args.name}")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "new-strategy", help="write a new strategy plugin package, ready to install and test",
        description="Write the package NAME/: pyproject.toml with the minidl entry point, "
        "the module with the two required hooks and an options model, and a test that "
        "checks its gradients (mdl.testing.check_strategy). Then: pip install -e NAME && "
        "pytest NAME.")
    parser.add_argument("name", metavar="NAME", help="the strategy's name, e.g. sqrt-mean")
    parser.add_argument("--dir", default=".", metavar="DIR",
                        help="where to create NAME/ (default: the current directory)")
    parser.set_defaults(run=_run)
