"""The engine knows no plugins (issue 8): what plain calculus imports, and its import graph.

The engine is minidl/tensor.py, autograd.py, gradmode.py, inplace.py and minidl/ops/ (the batch
reduction, which does know strategies, lives in minidl/strategy/). A plain backward
must run without the plugin manager, the strategies or any plugin, and the only
import cycle among engine modules is tensor <-> ops, closed by the one import at the
bottom of tensor.py.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

MINIDL = Path(__file__).resolve().parents[2] / "minidl"
ENGINE_FILES = [MINIDL / "autograd.py", MINIDL / "tensor.py", MINIDL / "gradmode.py",
                MINIDL / "inplace.py",
                *sorted((MINIDL / "ops").glob("*.py"))]
FORBIDDEN = ("minidl.pluginmanager", "minidl.strategy", "minidl.hookspecs", "minidl.plugins")
# Modules the engine may import that import nothing of minidl but errors (checked below).
ENGINE_LEAVES = ("minidl.dtypes", "minidl.errors")


def _module_name(path: Path) -> str:
    parts = path.relative_to(MINIDL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, *, runtime_only: bool) -> list[tuple[str, ast.stmt]]:
    """(module, statement) for every import in ``path``: top level, in functions, in
    classes; ``runtime_only`` leaves out ``if TYPE_CHECKING:`` blocks. ``from a import b``
    counts as importing ``a.b`` when that is a module, else ``a``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (MINIDL.parent / Path(*candidate.split("."))).with_suffix(".py")
                is_package = MINIDL.parent / Path(*candidate.split(".")) / "__init__.py"
                found.append((candidate if is_module.exists() or is_package.exists()
                              else base, node))
    return found


def test_engine_modules_import_nothing_of_plugins_strategies_or_hookspecs():
    for path in ENGINE_FILES:
        imports = _imports(path, runtime_only=False)
        assert imports, f"found no imports in {path}: is the parser looking at the right file?"
        for module, node in imports:
            bad = [f for f in FORBIDDEN if module == f or module.startswith(f"{f}.")]
            assert not bad, (f"{path.relative_to(MINIDL.parent)}:{node.lineno} imports "
                             f"{module}; the engine must not know plugins or strategies")
        source = path.read_text()
        assert "import_module" not in source and "__import__" not in source, path


def _engine_graph() -> dict[str, set[str]]:
    """Runtime imports between engine modules (and the leaves they may use)."""
    files = {_module_name(p): p for p in ENGINE_FILES}
    files.update({m: MINIDL.parent / Path(*m.split(".")).with_suffix(".py")
                  for m in ENGINE_LEAVES})
    graph = {}
    for module, path in files.items():
        targets = {m for m, _ in _imports(path, runtime_only=True) if m.startswith("minidl")}
        outside = targets - set(files)
        assert not outside, f"{module} imports {sorted(outside)}, outside the engine"
        graph[module] = targets
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_the_only_engine_import_cycle_is_tensor_and_ops_closed_at_the_bottom_of_tensor():
    graph = _engine_graph()
    for leaf in ENGINE_LEAVES:
        assert graph[leaf] <= {"minidl.errors"}, f"{leaf} imports {graph[leaf]}"
    cycle = _find_cycle(graph)
    assert cycle is not None and "minidl.tensor" in cycle and "minidl.ops" in cycle, (
        f"expected the tensor <-> ops cycle every autograd has; found {cycle}")

    tensor_py = MINIDL / "tensor.py"
    tree = ast.parse(tensor_py.read_text())
    ops_imports = [node for module, node in _imports(tensor_py, runtime_only=True)
                   if module == "minidl.ops" or module.startswith("minidl.ops.")]
    assert len(ops_imports) == 1, "tensor.py must import the ops exactly once"
    last = tree.body[-1]
    assert isinstance(last, ast.ImportFrom) and ops_imports[0].lineno == last.lineno, (
        "the ops import must be tensor.py's last statement")

    graph["minidl.tensor"].discard("minidl.ops")  # without that one late import...
    assert _find_cycle(graph) is None, f"another import cycle: {_find_cycle(graph)}"


def test_a_plain_backward_in_a_fresh_process_imports_no_plugin_machinery():
    code = ("import sys, json, numpy as np; from minidl.tensor import Tensor; "
            "w = Tensor(np.ones(3), requires_grad=True); (w * w).sum().backward(); "
            "assert 'minidl.pluginmanager' not in sys.modules "
            "and 'minidl.strategy' not in sys.modules; "
            "print(json.dumps({'grad': w.grad.tolist(), 'loaded': sorted("
            "m for m in sys.modules if m.startswith(('minidl.plugins', 'minidl.strategy', "
            "'minidl.pluginmanager')))}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"grad": [2.0, 2.0, 2.0], "loaded": []}
