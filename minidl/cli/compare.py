"""``minidl compare``: the strategies side by side on the same network and batch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from minidl.cli.main import UsageError, reading_user_input
from minidl.cli.train import load_args_config
from minidl.strategy import resolve_strategy

DTYPES = ("float16", "float32", "float64")


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse(args: argparse.Namespace) -> dict[str, Any]:
    dtypes = _list(args.dtypes)
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown or not dtypes:
        raise UsageError(f"--dtypes: unknown {unknown}; allowed: {', '.join(DTYPES)}")
    try:
        sizes = [int(size) for size in _list(args.batch_sizes)]
    except ValueError:
        raise UsageError(f"--batch-sizes takes integers, e.g. 64,1024; got {args.batch_sizes!r}")
    if not sizes or min(sizes) < 2:
        raise UsageError("--batch-sizes must be integers >= 2")
    if args.steps < 1:
        raise UsageError("--steps must be at least 1")
    return {"dtypes": dtypes, "batch_sizes": sizes, "steps": args.steps,
            "strategies": _list(args.strategies) if args.strategies else None}


def _strategy_options(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` (VALUE parsed as in --set) to {strategy name: {key: value}}."""
    options: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        left, sep, text = assignment.partition("=")
        name, dot, key = left.strip().rpartition(".")
        if not (sep and dot and name and key):
            raise UsageError(f"--strategy-option expects STRATEGY.OPTION=VALUE (e.g. "
                             f"rms.power=0.5), got {assignment!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        options.setdefault(resolve_strategy(name).name, {})[key] = value
    return options


def _run(args: argparse.Namespace) -> int:
    from minidl.compare import compare
    from minidl.compare.plot import plot_format, save_plot
    from minidl.compare.report import render

    if args.ranks is not None:
        return _run_ranks(args)
    options = _parse(args)
    if args.plot:  # fail before the work, not after it
        with reading_user_input():
            plot_format(args.plot)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'minidl[plot]'") from None
    config = load_args_config(args)
    with reading_user_input():  # naming a strategy that cannot be loaded is bad usage ...
        for name in options["strategies"] or []:
            resolve_strategy(name)
        strategy_options = _strategy_options(args.strategy_option or [])
        names = [resolve_strategy(n).name for n in options["strategies"] or []]
        for name, values in strategy_options.items():
            if names and name not in names:
                raise UsageError(f"--strategy-option for {name!r}, which is not in "
                                 f"--strategies {','.join(names)}")
            resolve_strategy(name, values)  # the strategy validates its options
    # ... a strategy's hook failing while measured is not
    result = compare(config, strategy_options=strategy_options, **options)
    if args.plot:
        save_plot(result, args.plot)
        result["plot"] = str(args.plot)
    print(json.dumps(result) if args.json else render(result))
    if args.plot:
        print(f"plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _run_ranks(args: argparse.Namespace) -> int:
    """``--ranks 1,2,3``: the split of one batch over ranks, per strategy (only this table)."""
    from minidl.compare.ranks import compare_ranks, render_ranks
    from minidl.compare.runner import installed_strategies

    try:
        ranks = [int(r) for r in _list(args.ranks)]
    except ValueError:
        raise UsageError(f"--ranks takes integers, e.g. 1,2,3; got {args.ranks!r}") from None
    if not ranks or min(ranks) < 1 or max(ranks) > 64:
        raise UsageError("--ranks must be integers from 1 to 64, e.g. 1,2,3")
    config = load_args_config(args)
    with reading_user_input():
        names = _list(args.strategies) if args.strategies else installed_strategies()
        for name in names:
            resolve_strategy(name)
    result = compare_ranks(config, ranks, names)
    if max(ranks) > min(result["m"], 64):
        raise UsageError(f"--ranks: at most {result['m']} ranks for {result['m']} examples")
    print(json.dumps(result) if args.json else render_ranks(result))
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "compare", help="every strategy on the same network and batch, measured",
        description="Run the same network and batch under each strategy and report where "
        "the 1/m went, whether dW and db agree, numerical stability per dtype and batch "
        "size, gradient accumulation, and training curves.")
    parser.add_argument("config", nargs="?", type=Path, metavar="CONFIG")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE")
    parser.add_argument("--strategies", metavar="A,B", help="default: every installed one")
    parser.add_argument("--strategy-option", action="append", metavar="NAME.OPTION=VALUE",
                        help="an option for one strategy, e.g. rms.power=0.5 (repeatable)")
    parser.add_argument("--dtypes", default="float16,float32,float64", metavar="D,D")
    parser.add_argument("--batch-sizes", default="64,1024,16384,65536", metavar="M,M")
    parser.add_argument("--steps", type=int, default=200, help="training steps for the "
                        "equivalence check and the curves")
    parser.add_argument("--ranks", metavar="R,R", help="only this: one batch split unevenly "
                        "over R ranks (simulated), per strategy, against one process")
    parser.add_argument("--json", action="store_true", help="every number as one JSON object")
    parser.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="the comparison as one figure of five panels, .png or .svg "
                        "(needs the plot extra: matplotlib)")
    parser.set_defaults(run=_run, strategy=None)
