"""``minidl train`` and ``minidl config``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from minidl.cli.main import UsageError, reading_user_input
from minidl.config import apply_override, config_to_toml, load_config, read_config_file
from minidl.manifest import CHECKPOINT_NAME
from minidl.storage import json_safe
from minidl.trainer import Trainer


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.set or [])
    if getattr(args, "strategy", None):
        overrides.append(f"normalization.strategy={args.strategy}")
    return overrides


def load_args_config(args: argparse.Namespace) -> Any:
    """The config from CONFIG, --set and --strategy; a bad one is a UsageError."""
    with reading_user_input():  # a strategy plugin that cannot load fails while validating
        return load_config(args.config, _overrides(args))


def raw_args_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """CONFIG with --set and --strategy applied, as data (nothing validated or imported);
    None when none of them is given."""
    if not (args.config or args.set or args.strategy):
        return None
    raw = read_config_file(args.config) if args.config else {}
    for assignment in _overrides(args):
        apply_override(raw, assignment)
    return raw


def _train(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        return _launch(args)
    from minidl.distributed import DataParallel
    from minidl.distributed.faults import abort_on_failure, agreed

    ranks = DataParallel()  # every rank of an mpiexec launch, or this process alone
    quiet = args.quiet or args.json or not ranks.is_writer
    with agreed(ranks.group), reading_user_input():  # bad input: one message, on one rank
        if args.resume:  # the checkpoint's config is read as data: see minidl.resume
            trainer = Trainer.from_checkpoint(
                args.resume, quiet=quiet, config=raw_args_config(args),
                trust_plugins=args.trust_checkpoint_plugins, ranks=ranks)
            for note in trainer.resume_notes if ranks.is_writer else ():
                print(f"note: {note}", file=sys.stderr)
        else:
            if args.trust_checkpoint_plugins:
                raise UsageError("--trust-checkpoint-plugins goes with --resume PATH")
            trainer = Trainer(load_args_config(args), quiet=quiet, ranks=ranks)
        trainer.overwrite = trainer.overwrite or args.overwrite
    try:
        with abort_on_failure(ranks.group, debug=args.debug):  # any rank failing ends all
            final = trainer.fit()  # a MinidlError here (NaN loss, a plugin failing) exits 1
    except KeyboardInterrupt:
        if trainer.output_dir and trainer.epoch:
            print(f"interrupted; the last checkpoint is loadable: minidl train --resume "
                  f"{trainer.output_dir / CHECKPOINT_NAME}", file=sys.stderr)
        raise
    if not ranks.is_writer:
        return 0
    if args.json:
        final["output"] = str(trainer.output_dir) if trainer.output_dir else None
        print(json.dumps(json_safe(final), allow_nan=False))  # NaN is not JSON: null
        return 0
    _print_summary(final, trainer)
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: the same command, without --nproc, under mpiexec with N ranks."""
    from minidl.distributed.comm import launched_by_mpi
    from minidl.distributed.launch import launch

    if args.nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if launched_by_mpi():
        raise UsageError("--nproc starts mpiexec itself; under mpiexec, drop --nproc")
    argv, skip = [], False
    for arg in args.argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            argv.append(arg)
    return launch(args.nproc, argv)


def _print_summary(final: dict[str, Any], trainer: Trainer) -> None:
    parts = [f"train accuracy {final['train_accuracy']:.4f}" if "train_accuracy" in final
             else "", f"train loss {final['train_loss']:.4f}"]
    if "val_loss" in final:
        if "val_accuracy" in final:
            parts.append(f"val accuracy {final['val_accuracy']:.4f}")
        parts.append(f"val loss {final['val_loss']:.4f}")
    print(f"{', '.join(p for p in parts if p)}  "
          f"({final['epochs']} epochs, {final['steps']} steps, strategy {final['strategy']!r})")
    if trainer.output_dir:
        before = (f" (the run before is in {trainer.moved_aside}/)" if trainer.moved_aside
                  else "")
        print(f"model, config and metrics in {trainer.output_dir}/{before}")


def _config(args: argparse.Namespace) -> int:
    print(config_to_toml(load_args_config(args)), end="")
    return 0


def add_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train a model from a config (the planar net by default)",
        description="Train the model a config describes. With no CONFIG: Andrew Ng's planar "
        "2-4-1 network, full batch, 10,000 steps, strategy deferred.")
    train.add_argument("config", nargs="?", type=Path, metavar="CONFIG",
                       help="a .toml, .yaml or .json config (every field has a default)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a field, e.g. --set train.epochs=50 (repeatable)")
    train.add_argument("--strategy", metavar="NAME", help="normalization strategy "
                       "(same as --set normalization.strategy=NAME)")
    train.add_argument("--json", action="store_true", help="print one JSON object at the end")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--resume", type=Path, metavar="PATH",
                       help="continue from a run directory (its manifest.json names the set) "
                       "or its checkpoint.npz, to the same final weights; with CONFIG (and "
                       "--set), which must match the run's own, outputs go to its output.dir, "
                       "else to the checkpoint's directory")
    train.add_argument("--trust-checkpoint-plugins", action="store_true",
                       help="with --resume and no CONFIG: import the plugins, strategy file "
                       "or model factory the checkpoint names (code runs, as with import)")
    train.add_argument("--overwrite", action="store_true",
                       help="a new run may replace another run's checkpoint in output.dir "
                       "(same as --set output.overwrite=true)")
    train.add_argument("--nproc", type=int, metavar="N",
                       help="train data-parallel on N processes: starts mpiexec -n N (needs "
                       "pip install 'minidl[mpi]'); or run mpiexec -n N minidl train yourself")
    train.set_defaults(run=_train)

    config = commands.add_parser("config", help="print the full config (defaults) as TOML",
                                 description="Print the resolved config as TOML: the defaults, "
                                 "or CONFIG with --set overrides applied.")
    config.add_argument("config", nargs="?", type=Path, metavar="CONFIG")
    config.add_argument("--set", action="append", metavar="KEY=VALUE")
    config.add_argument("--strategy", metavar="NAME")
    config.set_defaults(run=_config)
