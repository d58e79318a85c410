"""``minidl plugins``: every loaded plugin, its kind, origin and hooks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from minidl.pluginmanager import PluginManager, get_plugin_manager
from minidl.strategy import strategy_index


def describe_plugins(pm: PluginManager | None = None) -> list[dict[str, Any]]:
    """One dict per registered plugin: name, kind, aliases, description, origin, hooks."""
    pm = pm or get_plugin_manager()
    infos = {id(plugin): info for plugin, info in strategy_index(pm).values()}
    rows = []
    for registered_name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        info = infos.get(id(plugin))
        doc = (getattr(plugin, "__doc__", None) or "").strip().splitlines()
        rows.append({
            "name": info.name if info else registered_name,
            "kind": "strategy" if info else "observer",
            "aliases": list(info.aliases) if info else [],
            "description": info.description if info else (doc[0] if doc else ""),
            "origin": pm.origin(plugin),
            "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
        })
    return rows


def _run(args: argparse.Namespace) -> int:
    rows = describe_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        aliases = f" (aliases: {', '.join(row['aliases'])})" if row["aliases"] else ""
        print(f"{row['name']}{aliases}  [{row['kind']}, {row['origin']}]")
        if row["description"]:
            print(f"    {row['description']}")
        print(f"    hooks: {', '.join(row['hooks'])}")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("plugins", help="list loaded plugins and their hooks",
                                 description="List every loaded plugin: name, kind, aliases, "
                                 "description, origin and the hooks it implements.")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(run=_run)
