"""Installed distributions without installing: a module and its ``.dist-info`` on a path.

``importlib.metadata`` finds a distribution by its ``*.dist-info`` folder on ``sys.path``,
so a folder holding the plugin's module and a dist-info with its ``entry_points.txt`` is,
to minidl, exactly what ``pip install`` would leave behind, and nothing is installed
into the environment running the tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from minidl.config import tomllib


def write_distribution(site: Path, project: Path) -> str:
    """Lay out the package at ``project`` (a pyproject.toml with ``py-modules`` and the
    ``minidl`` entry points) in ``site`` as an install would; returns ``name version``.

    >>> import tempfile
    >>> root = Path(__file__).resolve().parents[2]
    >>> with tempfile.TemporaryDirectory() as site:
    ...     write_distribution(Path(site), root / "examples" / "minidl-rms")
    'minidl-rms 0.1.0'
    """
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    name, version = meta["project"]["name"], meta["project"]["version"]
    for module in meta["tool"]["setuptools"]["py-modules"]:
        shutil.copy(project / f"{module}.py", site / f"{module}.py")
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\n"
                                        f"Version: {version}\n")
    groups = meta["project"].get("entry-points", {})
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
        for group, points in groups.items()))
    return f"{name} {version}"
