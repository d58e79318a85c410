"""Every runnable example in a public docstring runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import minidl


def _modules() -> list[str]:
    names = ["minidl"]
    for info in pkgutil.walk_packages(minidl.__path__, prefix="minidl."):
        if not info.name.endswith("__main__"):  # importing it runs the CLI
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                             | doctest.IGNORE_EXCEPTION_DETAIL)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
