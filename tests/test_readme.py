"""The README's commands and code blocks are the ones that work."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import minidl as mdl

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in README
    assert "pytest" in ci_command


def test_the_python_api_example_runs(capsys):
    exec(compile(_python_blocks()[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.strip().startswith("[")


def test_the_cnn_example_prints_what_its_comment_says(capsys):
    block = next(b for b in _python_blocks() if "nn.Conv2d" in b)
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "(4, 10) (8, 1, 3, 3)"


def test_the_custom_strategy_example_works_as_printed(tmp_path, capsys):
    block = next(b for b in _python_blocks() if "minidl_cost_scale" in b)
    path = tmp_path / "readme_strategy.py"
    path.write_text(block)
    spec = importlib.util.spec_from_file_location("readme_strategy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_strategy"] = module
    try:
        spec.loader.exec_module(module)
        expected = re.search(r"print\(cost\)\s+# (.*)", block).group(1)
        assert capsys.readouterr().out.strip() == expected
    finally:
        mdl.get_plugin_manager().unregister(module)
        del sys.modules["readme_strategy"]
