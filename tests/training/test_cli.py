"""The minidl command: outputs, and one clear message with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys


import pytest

from minidl.cli import main
from minidl.config import Config, load_config, tomllib


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_reports_the_final_numbers(capsys, tmp_path):
    code, out, _ = _run(capsys, "train", "--json", "--set", "train.epochs=300",
                        "--set", "data.val_fraction=0.2", "--set", f"output.dir={tmp_path}",
                        "--strategy", "absorbed-1/m")
    assert code == 0
    result = json.loads(out)
    assert result["strategy"] == "absorbed" and result["epochs"] == 300
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(result)
    assert 0.5 <= result["train_accuracy"] <= 1 and result["val_loss"] > 0


def test_train_prints_accuracy(capsys, tmp_path):
    code, out, _ = _run(capsys, "train", "--quiet", "--set", "train.epochs=50",
                        "--set", f"output.dir={tmp_path}")
    assert code == 0 and "train accuracy" in out and "strategy 'deferred'" in out


def test_config_prints_the_defaults_as_toml_that_reads_back(capsys):
    code, out, _ = _run(capsys, "config")
    assert code == 0
    assert Config.model_validate(tomllib.loads(out)) == Config()


def test_toml_yaml_and_json_files_load_the_same_config(tmp_path):
    (tmp_path / "c.toml").write_text('[train]\nepochs = 7\n[model]\nhidden = [8, 8]\n')
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 7\nmodel:\n  hidden: [8, 8]\n")
    (tmp_path / "c.json").write_text('{"train": {"epochs": 7}, "model": {"hidden": [8, 8]}}')
    configs = [load_config(tmp_path / name) for name in ("c.toml", "c.yaml", "c.json")]
    assert configs[0] == configs[1] == configs[2]
    assert configs[0].model.hidden == [8, 8] and configs[0].train.epochs == 7


BAD_INPUTS = [
    (["--set", "train.epoch=3"], "train.epoch: unknown key; allowed keys here: epochs"),
    (["--set", "train.epochs=many"], "train.epochs: Input should be a valid integer"),
    (["--set", "optimizer.lr=-0.1"], "optimizer.lr: Input should be greater than 0"),
    (["--set", "train.batch_size=0"], "train.batch_size: Input should be greater than or equal"),
    (["--set", "optimizer.name=lbfgs"],
     "optimizer.name: Input should be 'sgd', 'adam', 'adamw' or"),
    (["--set", "data.dataset=missing.csv"], "missing.csv: file not found"),
    (["--strategy", "median"], "unknown normalization strategy 'median'"),
    (["--set", "data.dataset=digits", "--set", "model.outputs=5"],
     "label 9 is out of range for model.outputs = 5"),
    (["--set", "nonsense"], "--set expects KEY=VALUE"),
    (["--set", "optimizer.nesterov=true"], "nesterov = true needs momentum > 0"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUTS)
def test_bad_config_is_one_clear_message_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, "train", "--quiet", *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("content,message", [
    ("1,2,0\n3,4\n", "row 2 has 2 columns, expected 3"),
    ("1,2,0\n3,x,1\n", "'x' is not a number"),
])
def test_bad_csv_files_are_one_clear_message_and_exit_2(capsys, tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    code, _, err = _run(capsys, "train", "--quiet", "--set", f"data.dataset={path}")
    assert code == 2 and message in err and "Traceback" not in err


def test_a_missing_config_file_and_a_bad_resume_path_exit_2(capsys, tmp_path):
    code, _, err = _run(capsys, "train", str(tmp_path / "nope.toml"))
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, "train", "--resume", str(tmp_path / "nope.npz"))
    assert code == 2 and "no checkpoint" in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # diverges on purpose
def test_a_diverging_run_exits_1_naming_epoch_and_step(capsys):
    # lr at the top of its allowed range (1e6), in float16: the weights overflow.
    code, _, err = _run(capsys, "train", "--quiet", "--set", "output.dir=",
                        "--set", "optimizer.lr=1e6", "--set", "train.dtype=float16",
                        "--set", "train.epochs=50")
    assert code == 1
    assert "loss became" in err and "epoch" in err and "step" in err
    assert "Traceback" not in err


def test_the_console_script_runs_and_exits_2_on_usage_errors():
    done = subprocess.run([sys.executable, "-m", "minidl", "train", "--bogus"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr
    assert "Traceback" not in done.stderr
