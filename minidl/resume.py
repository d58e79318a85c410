"""Resuming ``minidl train`` from a checkpoint without running what the checkpoint names.

A checkpoint's metadata holds its run's config, and a config names code: observer
``plugins``, a ``normalization.strategy`` that is a dotted path, a ``.py`` file or any
name no installed strategy answers to, and a ``model.factory``. Resuming reads that
config as data (``inert_config``: validated without resolving the strategy) and imports
what it names only when the user passes the same config (CONFIG and ``--set``, compared
field by field, ``output.*`` excepted) or trusts the checkpoint
(``--trust-checkpoint-plugins``). Outputs go to the ``output.dir`` the user gives (in
CONFIG or with ``--set``), else to the run directory that holds the checkpoint, never to
a directory the file names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from minidl.config import Config, format_validation_error, validate_config
from minidl.errors import CheckpointError, ConfigError
from minidl.manifest import run_directory
from minidl.strategy import NormalizationConfig
from minidl.strategy.registry import DEFAULT_STRATEGY, strategy_index

#: Sections and fields that do not shape the run's numbers: a config given to ``--resume``
#: may differ there (``train.compile`` replays are bit-identical to eager).
FREE_SECTIONS = ("output",)
FREE_FIELDS = ("train.compile",)


def inert_config(raw: Mapping[str, Any]) -> Config:
    """``raw`` validated as ``validate_config`` does, but importing nothing it names: the
    ``[normalization]`` section is checked as data (a name and a mapping of options) and
    kept unresolved.

    >>> inert_config({"normalization": {"strategy": "no_such_plugin.py"}}).normalization.strategy
    'no_such_plugin.py'
    """
    section = raw.get("normalization", {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"invalid config:\n  normalization: must be a section (strategy, "
                          f"options), got {type(section).__name__}")
    unknown = sorted(map(str, set(section) - {"strategy", "options"}))
    if unknown:
        raise ConfigError(f"invalid config:\n  normalization.{unknown[0]}: unknown key; allowed "
                          "keys here: strategy, options")
    strategy = section.get("strategy", DEFAULT_STRATEGY)
    options = section.get("options", {})
    if not isinstance(strategy, str) or not isinstance(options, Mapping):
        raise ConfigError("invalid config:\n  normalization: strategy must be a string and "
                          "options a mapping")
    try:  # the default strategy stands in while the rest is validated
        config = Config.model_validate({**raw, "normalization": {}})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    unresolved = NormalizationConfig.model_construct(strategy=strategy, options=dict(options))
    return config.model_copy(update={"normalization": unresolved})


def code_named(config: Config) -> list[str]:
    """What ``config`` would import to run: ``field: value`` for each plugin, a strategy
    that is no installed strategy's name, and a model factory."""
    wanted = [f"plugins: {spec}" for spec in config.plugins]
    if config.normalization.strategy not in strategy_index():
        wanted.append(f"normalization.strategy: {config.normalization.strategy}")
    if config.model.factory is not None:
        wanted.append(f"model.factory: {config.model.factory}")
    return wanted


def differences(saved: Any, given: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Every dotted field where two config dumps differ, ``FREE_SECTIONS`` aside:
    ``(field, saved, given)``.

    >>> differences({"train": {"epochs": 3, "seed": 3}}, {"train": {"epochs": 3, "seed": 4}})
    [('train.seed', 3, 4)]
    """
    if not (isinstance(saved, dict) and isinstance(given, dict)):
        return [] if saved == given else [(where or "config", saved, given)]
    found = []
    for key in [*saved, *(k for k in given if k not in saved)]:
        field = f"{where}.{key}" if where else key
        if (not where and key in FREE_SECTIONS) or field in FREE_FIELDS:
            continue
        found += differences(saved.get(key), given.get(key), field)
    return found


def resume_config(saved_raw: dict[str, Any] | None, path: Path,
                  given: Config | Mapping[str, Any] | None = None,
                  trust_plugins: bool = False) -> Config:
    """The config to resume the checkpoint at ``path`` with (its metadata's config is
    ``saved_raw``): ``given`` once it agrees with it, else the saved config with its
    output directory set to the checkpoint's run directory (also for a ``given`` mapping
    that sets no ``output.dir``). Nothing the saved config
    names is imported unless ``given`` agrees with it or ``trust_plugins``."""
    if saved_raw is None:
        raise CheckpointError(f"{path} was written by mdl.Trainer from Python, without a "
                              "config; resume it there: build the same trainer and call "
                              "trainer.fit(resume=path)")
    try:
        saved = inert_config(saved_raw)
    except ConfigError as err:
        raise CheckpointError(f"{path}: the config it holds does not validate now: {err}"
                              ) from None
    if given is not None:
        mine = given if isinstance(given, Config) else inert_config(given)
        found = differences(saved.model_dump(mode="json"), mine.model_dump(mode="json"))
        if found:
            listing = "; ".join(f"{field} is {was!r} in the checkpoint, {now!r} in the config"
                                for field, was, now in found)
            raise ConfigError(
                f"the config given does not match the run in {path}: {listing}. Resume with "
                "the config the run started with (only output.* and train.compile may "
                "differ), or without CONFIG and --set to use the checkpoint's own")
        if isinstance(given, Config):
            return given
        output = given.get("output")
        if not (isinstance(output, Mapping) and "dir" in output):  # not chosen: its own folder
            given = {**given, "output": {**(output or {}), "dir": str(run_directory(path))}}
        return validate_config(dict(given))
    wanted = code_named(saved)
    if wanted and not trust_plugins:
        raise CheckpointError(
            f"{path} names code for its run to import ({'; '.join(wanted)}), and resuming "
            "never imports what a checkpoint names by itself. Pass the config the run "
            "started with (minidl train CONFIG --resume PATH; from Python, config=...), or, "
            "if you trust where this checkpoint came from, --trust-checkpoint-plugins "
            "(trust_plugins=True)")
    try:
        config = validate_config(saved_raw)
    except ConfigError as err:
        raise CheckpointError(f"{path}: the config it holds does not validate now: {err}"
                              ) from None
    output = config.output.model_copy(update={"dir": str(run_directory(path))})
    return config.model_copy(update={"output": output})
