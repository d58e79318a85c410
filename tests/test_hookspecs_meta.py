"""Meta-tests, as datasette keeps them: every hook is specified, documented and tested."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

import pytest

from minidl import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if name.startswith("minidl_") and callable(fn))


def test_every_hook_name_has_the_project_prefix():
    assert HOOKS, "no hookspecs found"
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "minidl_spec"):
            assert name.startswith("minidl_")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_documents_each_parameter_and_its_return(hook):
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{hook} has no docstring"
    for parameter in inspect.signature(fn).parameters:
        assert f":param {parameter}:" in doc, f"{hook} does not document {parameter!r}"
    assert ":return:" in doc, f"{hook} does not state its return contract"
    firstresult = fn.minidl_spec["firstresult"]
    assert ("Stops at first non-None result" in doc) == firstresult, hook


@functools.cache
def _test_function_names() -> frozenset[str]:
    """Every function defined in a test file under tests/ (module level, in classes too)."""
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names.update(node.name for node in ast.walk(tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return frozenset(names)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    """As datasette does: a test named after the hook, not the hook's name in any text."""
    assert f"test_hook_{hook}" in _test_function_names(), (
        f"no test named test_hook_{hook} under tests/; write one that exercises the hook")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_readme(hook):
    assert hook in (ROOT / "README.md").read_text(), f"README.md does not document {hook}"
