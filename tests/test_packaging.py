"""pyproject.toml lists every package, so a built wheel (not only an editable install,
which maps the whole minidl/ folder) contains all of minidl."""

from __future__ import annotations

from pathlib import Path

from minidl.config import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {}
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            folders[".".join((package, *relative))] = init.parent
    assert "minidl.ops" in folders and "minidl.plugins" in folders
    missing = sorted(set(folders) - set(setuptools["packages"]))
    assert not missing, f"packages missing from pyproject.toml (a wheel would lack them): {missing}"
