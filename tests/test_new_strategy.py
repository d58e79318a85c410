"""``minidl new-strategy``: the package it writes passes its own tests, unmodified."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers.distributions import write_distribution

from minidl.cli import main
from minidl.config import tomllib


def _pytest(package_parent, name, pythonpath=None, python=sys.executable):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MINIDL_DISABLE_PLUGIN_AUTOLOAD", "PYTHONPATH")}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(python), "-m", "pytest", name, "-q", "-p", "no:cacheprovider"],
                          cwd=package_parent, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_package_has_the_entry_point_the_hooks_and_a_test(tmp_path, capsys):
    assert main(["new-strategy", "half-mean", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install -e half-mean && pytest half-mean" in out
    root = tmp_path / "half-mean"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["minidl"] == {"half-mean": "minidl_half_mean"}
    source = (root / "minidl_half_mean.py").read_text()
    for required in ("def minidl_strategy_info", "def minidl_cost_scale",
                     "class Options(BaseModel)"):
        assert required in source
    assert "mdl.testing.check_strategy(" in (root / "tests" / "test_minidl_half_mean.py"
                                              ).read_text()


def test_the_generated_tests_pass_as_installed(tmp_path):
    """The package laid out as pip installs it (module + dist-info with the entry point),
    its own test file run by pytest in a fresh process."""
    assert main(["new-strategy", "halfmean", "--dir", str(tmp_path)]) == 0
    site = tmp_path / "site-packages"
    site.mkdir()
    assert write_distribution(site, tmp_path / "halfmean") == "minidl-halfmean 0.1.0"
    run = _pytest(tmp_path, "halfmean", pythonpath=site)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout


def test_the_generated_tests_fail_when_the_strategy_breaks_its_formula(tmp_path):
    assert main(["new-strategy", "halfmean", "--dir", str(tmp_path)]) == 0
    module = tmp_path / "halfmean" / "minidl_halfmean.py"
    module.write_text(module.read_text().replace("return count ** -options.power",
                                                 "return 2 * count ** -options.power"))
    site = tmp_path / "site-packages"
    site.mkdir()
    write_distribution(site, tmp_path / "halfmean")
    run = _pytest(tmp_path, "halfmean", pythonpath=site)
    assert run.returncode == 1 and "3 failed, 2 passed" in run.stdout, run.stdout


@pytest.mark.parametrize("argv,message", [
    (["new-strategy", "Bad Name"], "lowercase letters, digits"),
    (["new-strategy", "sum"], "a strategy named 'sum' is already installed"),
])
def test_bad_names_exit_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    assert main(["new-strategy", "mine", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]
