"""The README's plugin section is complete and true: each block runs as printed."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.scaffold import write_strategy_package
from minidl.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Writing a strategy"):README.index("## Where does the 1/m go?")]


def _block(language: str, marker: str) -> str:
    return next(b for b in re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.DOTALL)
                if marker in b)


def _run_as_module(block: str, path: Path, name: str):
    path.write_text(block)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def test_the_module_shown_is_the_one_new_strategy_writes(tmp_path):
    write_strategy_package("halfmean", tmp_path)
    written = (tmp_path / "halfmean" / "minidl_halfmean.py").read_text()
    shown = _block("python", "class Options(BaseModel)")
    assert [line for line in shown.splitlines() if line.strip()
            and line not in written] == []


def test_the_options_example_is_a_valid_config(tmp_path, plugin_manager):
    write_strategy_package("halfmean", tmp_path)
    plugin_manager.import_plugin(str(tmp_path / "halfmean" / "minidl_halfmean.py"))
    (tmp_path / "c.toml").write_text(_block("toml", 'strategy = "halfmean"'))
    strategy = load_config(tmp_path / "c.toml").normalization.resolve()
    assert strategy.options.power == 0.5 and strategy.cost_scale(16.0) == 0.25


def test_the_leaf_grad_variant_runs_and_passes_check_strategy(tmp_path, capsys,
                                                               plugin_manager):
    block = _block("python", "def minidl_leaf_grad(")
    module = _run_as_module(block, tmp_path / "running_mean.py", "readme_running_mean")
    assert capsys.readouterr().out.strip() == "True"
    # The same module is the built-in deferred, to the last bit of every leaf.
    for strategy in (module, "deferred"):
        w = mdl.tensor([[0.5, -1.0]], requires_grad=True, dtype="float64")
        for rows in ([[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]):
            with mdl.normalization(strategy):
                mdl.batch_reduce(((mdl.tensor(rows) @ w.T) ** 2).reshape(-1)).backward()
        if strategy is module:
            running = w.grad.copy()
    assert running.tolist() == w.grad.tolist()


def test_the_leaf_grad_contract_is_in_the_readme():
    for phrase in ("None when `count` is 0", "counted per leaf", "`new_grad` is what this pass",
                   "`new_count` is this pass's N"):
        assert phrase in SECTION


def test_the_example_observer_prints_and_stops_training(tmp_path, capsys):
    path = tmp_path / "steplog.py"
    path.write_text(_block("python", "minidl_step_end"))
    trainer = Trainer(load_config(overrides=[f"plugins=['{path}']", "output.dir="]))
    final = trainer.fit()
    printed = capsys.readouterr().out.splitlines()
    assert final["train_loss"] < 0.3 and final["epochs"] < 10_000  # stopped by the observer
    assert printed[0].startswith("step 100: loss ")
    assert len(printed) == final["steps"] // 100


def test_loading_from_the_current_directory_is_documented():
    assert "from the current\n  directory first**" in SECTION
    assert "`mdl.normalization(module)`" in SECTION


@pytest.mark.parametrize("folder", ["minidl", "plugins"])
def test_the_package_points_to_no_document_users_lack(folder):
    """docs/ is in the repository, not in the installed package."""
    for path in (ROOT / folder).rglob("*.py"):
        text = path.read_text()
        assert "docs/" not in text and "design.md" not in text.lower(), path
