"""Reading config text safely: bounded size, bounded nesting, UTF-8, YAML without aliases.

A config file or a ``--set`` value comes from a user (or a script, or a stranger's
repository), so parsing it must never hang, exhaust memory or show a traceback:

* files over ``MAX_CONFIG_BYTES`` are refused before they are read whole;
* the text must be UTF-8 (a byte-order mark is allowed); anything else is named;
* YAML anchors and aliases are refused, so the "billion laughs" bomb cannot expand;
* values nested deeper than ``MAX_DEPTH`` are refused (a config is three levels deep);
* integers too long to convert (Python's 4,300-digit limit) are a clear error.

Every problem is a ``ValueError`` whose message names the source; ``config.py`` turns it
into a ``ConfigError``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from minidl.errors import ConfigTextError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Largest config file read; real configs are a few hundred bytes.
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of mappings and lists (the config tree itself is 3 levels deep).
MAX_DEPTH = 16
SUFFIXES = (".toml", ".yaml", ".yml", ".json")


class NoAliasSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases and deep nesting.

    Aliases are what make the "billion laughs" bomb expand a few hundred bytes into
    gigabytes; a config never needs them, so the first anchor is an error.

    >>> yaml.load("a: [1, 2]", Loader=NoAliasSafeLoader)
    {'a': [1, 2]}
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError(f"YAML anchors and aliases (&, *) are not allowed in a config "
                                 f"(line {event.start_mark.line + 1}); write the values out")
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise _TooDeep()
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


# YAML 1.1 reads 1e-3 as text (its floats need a dot); a config means the number.
NoAliasSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


class _TooDeep(ConfigTextError):
    """Raised inside a parser when nesting passes ``MAX_DEPTH``."""


def read_config_text(path: Path) -> str:
    """The text of a config file: size-checked, UTF-8 decoded, with clear errors."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigTextError(f"config file {path} is {size:,} bytes; the limit is "
                                  f"{MAX_CONFIG_BYTES:,} (is it really a config?)")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigTextError(f"cannot read config file {path}: {err.strerror or err}") from None
    if len(data) > MAX_CONFIG_BYTES:  # it grew while we looked
        raise ConfigTextError(f"config file {path} is over the limit of "
                              f"{MAX_CONFIG_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigTextError(
            f"config file {path} is not UTF-8 text: byte 0x{data[err.start]:02x} at offset "
            f"{err.start}{hint}; save it as UTF-8") from None


def parse_config_text(text: str, suffix: str, source: str) -> Any:
    """Parse TOML, YAML or JSON ``text`` (by ``suffix``) within the depth limit.

    >>> parse_config_text('{"train": {"epochs": 5}}', ".json", "x.json")
    {'train': {'epochs': 5}}
    """
    if suffix not in SUFFIXES:
        raise ConfigTextError(f"config file {source} must end in .toml, .yaml, .yml or .json")
    if "\x00" in text:
        raise ConfigTextError(f"cannot parse {source}: it holds NUL bytes (a binary file?)")
    try:
        if suffix == ".toml":
            value = tomllib.loads(text)
        elif suffix == ".json":
            value = json.loads(text)
        else:
            value = yaml.load(text, Loader=NoAliasSafeLoader)  # noqa: S506 (a SafeLoader)
    except (_TooDeep, RecursionError):
        raise ConfigTextError(f"cannot parse {source}: values are nested more than "
                              f"{MAX_DEPTH} levels deep") from None
    except (yaml.YAMLError, ValueError, OverflowError) as err:
        # ValueError covers TOML and JSON decode errors, and integers past Python's
        # 4,300-digit conversion limit in any of the three formats.
        raise ConfigTextError(f"cannot parse {source}: {_short(err)}") from None
    check_depth(value, source)
    return value


def parse_set_value(text: str, key: str) -> Any:
    """A ``--set`` value parsed as YAML (``3``, ``0.1``, ``true``, ``[8, 8]``) or kept as text.

    The same limits as a config file apply: size, depth, no aliases.

    >>> parse_set_value("[8, 8]", "model.hidden"), parse_set_value("runs/a", "output.dir")
    ([8, 8], 'runs/a')
    """
    source = f"--set {key}"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigTextError(f"{source}: the value is over {MAX_CONFIG_BYTES:,} bytes")
    if not text.strip():
        return ""
    try:
        value = yaml.load(text, Loader=NoAliasSafeLoader)  # noqa: S506 (a SafeLoader)
    except (_TooDeep, RecursionError):
        raise ConfigTextError(f"{source}: the value is nested more than {MAX_DEPTH} levels "
                              "deep") from None
    except ValueError as err:  # e.g. an integer too long to convert
        raise ConfigTextError(f"{source}: {_short(err)}") from None
    except yaml.YAMLError as err:
        if "anchors and aliases" in str(err):
            raise ConfigTextError(f"{source}: {err}") from None
        return text  # not YAML: plain text, e.g. a path with a colon
    check_depth(value, source)
    return value


def check_depth(value: Any, source: str) -> None:
    """Refuse ``value`` if its mappings and lists nest deeper than ``MAX_DEPTH``."""
    stack = [(value, 0)]
    while stack:  # iterative: a recursive walk could itself hit the recursion limit
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                raise ConfigTextError(f"{source}: values are nested more than {MAX_DEPTH} "
                                      "levels deep")
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)


def _short(err: BaseException, limit: int = 300) -> str:
    text = str(err)
    if "integer string conversion" in text:  # Python's advice (set_int_max_str_digits)
        return "an integer has more than 4,300 digits"  # is not the user's to take
    return text if len(text) <= limit else text[:limit] + " ..."
