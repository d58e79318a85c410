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


def test_the_test_command_installs_the_project_alone():
    """It installs the project and its test and mpi extras (the MPI tests need mpiexec),
    and leaves the user's environment otherwise as found: no example plugin installed."""
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    installs = ci_command.split("&&")[0].split()
    assert installs[installs.index("install"):] == ["install", "-q", "-e", '".[test,mpi]"']


def test_the_python_api_example_runs(capsys):
    exec(compile(_python_blocks()[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.strip().startswith("[")


def test_the_cnn_example_prints_what_its_comment_says(capsys):
    block = next(b for b in _python_blocks() if "nn.Conv2d" in b)
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "(4, 10) (8, 1, 3, 3)"


def test_the_custom_strategy_example_works_as_printed(tmp_path, capsys):
    block = next(b for b in _python_blocks() if "sqrt-m" in b)
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


def test_the_optimizer_example_trains(capsys):
    block = next(b for b in _python_blocks() if "lr_scheduler" in b)
    exec(compile(block, "README.md", "exec"), {})
    assert float(capsys.readouterr().out) > 0.85


def test_the_scheduler_config_example_is_valid(tmp_path):
    from minidl.config import load_config

    block = next(b for b in re.findall(r"```toml\n(.*?)```", README, flags=re.DOTALL)
                 if "[scheduler]" in b)
    (tmp_path / "c.toml").write_text(block)
    config = load_config(tmp_path / "c.toml")
    assert config.scheduler.name == "inverse_time" and config.optimizer.name == "rmsprop"


def test_the_layers_example_runs_as_printed(capsys):
    block = next(b for b in _python_blocks() if "nn.LSTM" in b)
    exec(compile(block, "README.md", "exec"), {})
    expected = re.search(r"print\(output.shape.*\)\s+# (.*)", block).group(1)
    assert capsys.readouterr().out.strip() == expected


def test_the_pytorch_users_blocks_run_as_printed(tmp_path, capsys):
    """The custom Module, the loop by hand, mdl.Trainer and save/load, run as one script
    (a module with a file, as a user's script is, so mdl.save can record the class)."""
    import types

    blocks = [b for b in _python_blocks() if "class Net(mdl.nn.Module)" in b or
              "mdl.Trainer(" in b]
    assert len(blocks) == 2
    source = "\n".join(blocks)
    path = tmp_path / "readme_pytorch.py"
    path.write_text(source)
    module = types.ModuleType("readme_pytorch")
    module.__file__ = str(path)
    sys.modules["readme_pytorch"] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    finally:
        del sys.modules["readme_pytorch"]
    by_hand, trainer, loaded = capsys.readouterr().out.strip().splitlines()
    assert float(by_hand) > 0.85
    assert trainer == "True True" and loaded == "True"


def test_the_model_factory_config_example_is_valid(tmp_path):
    from minidl.config import load_config

    block = next(b for b in re.findall(r"```toml\n(.*?)```", README, flags=re.DOTALL)
                 if "factory =" in b)
    (tmp_path / "c.toml").write_text(block)
    config = load_config(tmp_path / "c.toml")
    assert config.model.factory == "mypkg.models:build" and config.model.options == {
        "width": 128}


def test_every_python_block_is_run_by_a_test():
    selectors = ["minidl_cost_scale", "lr_scheduler", "nn.LSTM", "class Net(mdl.nn.Module)",
                 "mdl.Trainer(", "nn.Conv2d", "@mdl.compile",
                 "steplog"]  # the example observer: tests/test_readme_plugins.py runs it
    blocks = _python_blocks()
    unrun = [b.splitlines()[0] for b in blocks[1:] if not any(s in b for s in selectors)]
    assert not unrun, f"README python blocks no test runs: {unrun}"


def test_the_compile_example_replays_and_prints_what_it_says(capsys):
    block = next(b for b in _python_blocks() if "@mdl.compile" in b)
    exec(compile(block, "README.md", "exec"), {})
    expected = re.search(r"print\(step.eager_reason.*\)\s+# (.*)", block).group(1)
    assert capsys.readouterr().out.strip() == expected
