"""``minidl new-strategy NAME``: a strategy package that installs, loads and tests as is.

The package is a folder ``NAME/`` with ``pyproject.toml`` (the ``minidl`` entry point),
the module ``minidl_NAME.py`` (the two required hooks and an options model) and
``tests/test_minidl_NAME.py``, which checks the strategy with
``mdl.testing.check_strategy``. ``pip install -e NAME && pytest NAME`` passes as written.
"""

from __future__ import annotations

import re
from pathlib import Path

from minidl.errors import InvalidValueError, UsageError
from minidl.storage import atomic_write_text

#: A strategy name that is also a valid entry-point name and, with - as _, a module name.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]*\Z")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "minidl-{name}"
version = "0.1.0"
description = "A minidl normalization strategy: {name}"
requires-python = ">=3.10"
dependencies = ["minidl", "pydantic>=2.5"]

[project.optional-dependencies]
test = ["pytest"]

# The line that makes minidl find the strategy: an entry point in the group "minidl".
[project.entry-points.minidl]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

MODULE = '''\
"""{name}: a minidl normalization strategy.

It starts as a mean raised to a power: the reported cost is J = sum(l_i) / count ** power
(power 1: the mean, as `absorbed`; power 0: the sum). Change the formula in
minidl_cost_scale, and say the same in tests/test_{module}.py.

Select it with `strategy = "{name}"` in config, `minidl train --strategy {name}`, or
`mdl.normalization("{name}", power=0.5)` in Python.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import minidl as mdl


class Options(BaseModel):
    """Validated with the rest of the config: [normalization] options = {{ power = 0.5 }}."""

    power: float = Field(1.0, ge=0.0, description="divide the summed cost by count ** power")


@mdl.hookimpl
def minidl_strategy_info() -> mdl.StrategyInfo:
    return mdl.StrategyInfo(name="{name}", options=Options,
                            description="summed cost divided by count ** power")


@mdl.hookimpl
def minidl_cost_scale(count: float, options: Options) -> float:
    """c in J = c * sum_i w_i l_i; count is N, the batch's examples (or their weights)."""
    return count ** -options.power


# Optional hooks (see the docstrings in minidl.hookspecs):
#
# @mdl.hookimpl
# def minidl_loss_grad_scale(count, options):
#     """s in dJ/dl_i = s * w_i, if not c: what flows into every dZ and dA."""
#
# @mdl.hookimpl
# def minidl_leaf_grad(grad, count, new_grad, new_count, options):
#     """The leaf's new .grad from what it held (None when count is 0) and this pass's."""
'''

TEST = '''\
"""{name}'s gradients against finite differences and against its own formula."""

import pytest

import minidl as mdl


def test_minidl_finds_the_strategy_through_its_entry_point():
    strategy = mdl.resolve_strategy("{name}")
    pm = mdl.get_plugin_manager()
    assert pm.origin(pm.get_plugin(strategy.plugin_name)).startswith("minidl-{name} ")


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_gradients_match_the_formula_and_finite_differences(power):
    mdl.testing.check_strategy("{name}", options={{"power": power}},
                               expected_cost_scale=lambda count: count ** -power)


def test_bad_options_are_refused():
    with pytest.raises(mdl.ConfigError, match="power"):
        mdl.resolve_strategy("{name}", {{"power": -1}})
'''


def module_name(name: str) -> str:
    """The module a strategy package holds: ``minidl_`` and the name, - as _."""
    return f"minidl_{name.replace('-', '_')}"


def write_strategy_package(name: str, parent: str | Path = ".") -> list[Path]:
    """Write the package ``parent/name``; returns the files written.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     [p.name for p in write_strategy_package("halfmean", parent)]
    ['pyproject.toml', 'minidl_halfmean.py', 'test_minidl_halfmean.py', 'README.md']
    """
    if not NAME_PATTERN.match(name):
        raise InvalidValueError(f"strategy name {name!r}: use lowercase letters, digits, - and "
                                "_, starting with a letter (e.g. sqrt-mean)")
    root = Path(parent) / name
    if root.exists():
        raise UsageError(f"{root} already exists; choose another name or folder (--dir)")
    module = module_name(name)
    files = {
        root / "pyproject.toml": PYPROJECT.format(name=name, module=module),
        root / f"{module}.py": MODULE.format(name=name, module=module),
        root / "tests" / f"test_{module}.py": TEST.format(name=name, module=module),
        root / "README.md": f"# minidl-{name}\n\nA minidl normalization strategy. Install and "
                            f"test:\n\n```bash\npip install -e {name} && pytest {name}\n```\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return list(files)
