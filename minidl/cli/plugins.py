"""``minidl plugins [CONFIG]``: every plugin loaded (or that CONFIG would load), its kind,
origin and hooks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from minidl.cli.main import reading_user_input
from minidl.pluginloading import implemented_hooks, plugin_name
from minidl.pluginmanager import PluginManager, get_plugin_manager
from minidl.strategy import strategy_index


def describe_plugins(pm: PluginManager | None = None, observers: list[tuple[str, object]] = (),
                     selected: str | None = None) -> list[dict[str, Any]]:
    """One dict per registered plugin: name, kind, aliases, description, origin, hooks; then
    one per plugin of ``observers`` (a config's, which a trainer registers while it runs).
    ``selected`` names the strategy a config selects."""
    pm = pm or get_plugin_manager()
    infos = {id(plugin): info for plugin, info in strategy_index(pm).values()}
    from_config = {id(plugin) for _, plugin in observers}
    listed = [(name, plugin) for name, plugin in pm.list_name_plugin() if plugin is not None]
    listed += [(name, plugin) for name, plugin in observers if not pm.is_registered(plugin)]
    rows = []
    for registered_name, plugin in listed:
        info = infos.get(id(plugin))
        doc = (getattr(plugin, "__doc__", None) or "").strip().splitlines()
        rows.append({
            "name": info.name if info else registered_name,
            "kind": "strategy" if info else "observer",
            "aliases": list(info.aliases) if info else [],
            "description": info.description if info else (doc[0] if doc else ""),
            "origin": pm.origin(plugin),
            "hooks": implemented_hooks(plugin),
            "selected": info is not None and info.name == selected,
            "from_config": id(plugin) in from_config,
        })
    return rows


def _config_plugins(args: argparse.Namespace, pm: PluginManager) -> tuple[str, list[Any]]:
    """Load the config (which loads its strategy) and import its observers, as
    ``minidl train`` would; returns the selected strategy's name and the observers."""
    from minidl.cli.train import load_args_config

    config = load_args_config(args)
    observers = []
    with reading_user_input():
        for spec in config.plugins:
            plugin = pm.import_plugin(spec, register=False)
            observers.append((pm.get_name(plugin) or plugin_name(spec), plugin))
        return config.normalization.resolve().name, observers


def _run(args: argparse.Namespace) -> int:
    pm = get_plugin_manager()
    selected, observers = _config_plugins(args, pm) if args.config else (None, [])
    rows = describe_plugins(pm, observers, selected)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.config:
        print(f"{args.config} would load these plugins (strategy {selected!r}):")
    for row in rows:
        aliases = f" (aliases: {', '.join(row['aliases'])})" if row["aliases"] else ""
        marks = [row["kind"], row["origin"]]
        marks += ["selected by the config"] if row["selected"] else []
        marks += ["listed under plugins"] if row["from_config"] else []
        print(f"{row['name']}{aliases}  [{', '.join(marks)}]")
        if row["description"]:
            print(f"    {row['description']}")
        print(f"    hooks: {', '.join(row['hooks'])}")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plugins", help="list loaded plugins (or those a config would load) and their hooks",
        description="List every loaded plugin: name, kind, aliases, description, origin and "
        "the hooks it implements. With CONFIG: also the strategy and the observer plugins "
        "that config would load.")
    parser.add_argument("config", nargs="?", type=Path, metavar="CONFIG",
                        help="a config whose strategy and observer plugins to load and list")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(run=_run, strategy=None)
