"""The CLI never shows a traceback: plugin failures while running exit 1 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from helpers.plugin_sources import strategy_source

import minidl as mdl
from minidl.cli import main
from minidl.trainer import Trainer

BROKEN_OBSERVER = textwrap.dedent('''
    import minidl as mdl

    @mdl.hookimpl
    def minidl_step_end(trainer, step, loss):
        raise RuntimeError("observer broke")
''')



def _fails_on_big_batches(name: str) -> str:
    """A strategy that works for small batches and fails once it sees 300 or more examples."""
    return strategy_source(name, "1.0 if count < 300 else -1.0")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_observer_failing_during_fit_exits_1_naming_it(capsys, tmp_path):
    path = tmp_path / "broken_observer.py"
    path.write_text(BROKEN_OBSERVER)
    code, out, err = _run(capsys, "train", "--quiet", "--set", "output.dir=",
                          "--set", "train.epochs=3", "--set", f'plugins=["{path}"]')
    assert code == 1 and out == ""
    assert err == (f"failed: plugin '{path.resolve()}' failed in hook minidl_step_end: "
                   "RuntimeError: observer broke\n")
    assert mdl.get_plugin_manager().get_plugin(str(path.resolve())) is None


def test_a_strategy_failing_during_fit_exits_1_naming_it(capsys, tmp_path):
    path = tmp_path / "big_batches.py"
    path.write_text(_fails_on_big_batches("bigbatch-review"))
    code, out, err = _run(capsys, "train", "--quiet", "--set", "output.dir=",
                          "--set", "train.epochs=2", "--strategy", str(path))
    assert code == 1 and out == "" and "Traceback" not in err
    assert "returned -1.0 from hook minidl_cost_scale" in err and str(path.resolve()) in err


def test_any_other_minidl_error_is_one_line_and_exit_1(capsys):
    class SumAgain:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="sum")

        @mdl.hookimpl
        def minidl_cost_scale(self, count):
            return 1.0

    # register() directly bypasses the name check that import_plugin makes
    mdl.get_plugin_manager().register(SumAgain(), name="sum-again")
    code, out, err = _run(capsys, "plugins")
    assert code == 1 and out == ""
    assert err.startswith("failed: strategy name 'sum' is claimed by both")
    assert err.count("\n") == 1


def test_compare_a_strategy_failing_while_measured_exits_1_an_unknown_one_2(
        capsys, tmp_path):
    path = tmp_path / "big_batches_compare.py"
    path.write_text(_fails_on_big_batches("bigbatch-compare"))
    small = ["--dtypes", "float64", "--batch-sizes", "64,512", "--steps", "1"]
    code, _, err = _run(capsys, "compare", "--strategies", f"deferred,{path}", *small)
    assert code == 1 and "returned -1.0 from hook minidl_cost_scale" in err
    code, _, err = _run(capsys, "compare", "--strategies", "deferred,median", *small)
    assert code == 2 and "unknown normalization strategy 'median'" in err


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_train_json_is_strict_json_with_null_for_nan(capsys, monkeypatch):
    final_metrics = Trainer.final_metrics

    def with_nan(self):
        return {**final_metrics(self), "val_loss": float("nan"), "val_accuracy": float("inf")}

    monkeypatch.setattr(Trainer, "final_metrics", with_nan)
    code, out, _ = _run(capsys, "train", "--json", "--set", "output.dir=",
                        "--set", "train.epochs=2")
    assert code == 0
    result = _strict(out)
    assert result["val_loss"] is None and result["val_accuracy"] is None
    assert result["epochs"] == 2


def test_an_unusable_output_dir_exits_2_before_training(capsys, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    target = tmp_path / "a_file" / "run"
    epochs = []
    monkeypatch.setattr(Trainer, "_run_epoch", lambda self: epochs.append(1) or {})
    code, out, err = _run(capsys, "train", "--quiet", "--set", f"output.dir={target}")
    assert code == 2 and out == "" and epochs == []
    assert f"output.dir '{target}' is not a writable directory" in err
    assert "Traceback" not in err


def test_python_dash_m_reports_usage_errors_with_exit_2():
    done = subprocess.run([sys.executable, "-m", "minidl", "config", "--strategy",
                           "nope.module"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown normalization strategy 'nope.module'" in done.stderr
    assert "Traceback" not in done.stderr
