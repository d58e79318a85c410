"""Issue 15: nothing runs that the user did not ask for, and a failed plugin leaves no trace.

Every broken plugin below is tried every way a user can name one (as a strategy by
``resolve_strategy``, ``mdl.normalization`` and a trainer's config, as an observer by
``import_plugin`` and a config's ``plugins``); each is one minidl error, and afterwards
the plugin manager and ``sys.modules`` are as before and built-in training gives the
same bits as a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl.cli import main
from minidl.config import load_config
from minidl.trainer import Trainer

HOOKS = "import minidl as mdl\n"

BROKEN = {
    "syntax_error": HOOKS + "@mdl.hookimpl\ndef minidl_train_start(trainer:\n    pass\n",
    "raises_at_import": HOOKS + "# minidl_train_start\nraise RuntimeError('at import')\n",
    "registers_then_raises": HOOKS + textwrap.dedent("""
        import sys

        @mdl.hookimpl
        def minidl_after_backward(root, leaves, grads, strategy):
            raise RuntimeError("a leftover observer fired")

        mdl.get_plugin_manager().register(sys.modules[__name__], name="self-registered")
        raise RuntimeError("after registering itself")
    """),
    "exits_at_import": HOOKS + "# minidl_train_start\nraise SystemExit(3)\n",
    "misspelt_hook": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_epoch_ended(trainer, epoch, metrics):
            return True
    """),
    "bad_signature": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_step_end(trainer, bogus_argument):
            pass
    """),
    "observer_as_strategy": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_after_backward(root, leaves, grads, strategy):
            raise RuntimeError("an observer refused as a strategy fired")
    """),
    "name_clash": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_strategy_info():
            return mdl.StrategyInfo(name="sum")

        @mdl.hookimpl
        def minidl_cost_scale(count):
            return 1.0
    """),
    "bad_info_name": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_strategy_info():
            return mdl.StrategyInfo(name=5)

        @mdl.hookimpl
        def minidl_cost_scale(count):
            return 1.0
    """),
    "options_not_a_model": HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_strategy_info():
            return mdl.StrategyInfo(name="dict-options", options=dict)

        @mdl.hookimpl
        def minidl_cost_scale(count):
            return 1.0
    """),
}

# Plugins whose fault is in being a strategy: as observers they would load.
STRATEGY_FAULTS = {"observer_as_strategy", "name_clash", "bad_info_name", "options_not_a_model"}

# A plain script, no plugin: naming it must not run it (it would write the marker).
NOT_A_PLUGIN = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n"

TRAIN = ["train.epochs=3", "output.dir=", "train.dtype=float64", "data.options={n: 80}"]


def _state(pm) -> tuple:
    hooks = {name: len(getattr(pm.hook, name).get_hookimpls())
             for name in dir(pm.hook) if name.startswith("minidl_")}
    user_modules = sorted(m for m in sys.modules if m.startswith("minidl_user_plugin_"))
    return sorted(n for n, _ in pm.list_name_plugin()), hooks, user_modules


def _attempts(path: Path, as_observer: bool) -> list:
    spec = str(path)
    as_strategy = [
        lambda: mdl.resolve_strategy(spec),
        lambda: mdl.normalization(spec).__enter__(),
        lambda: Trainer(load_config(overrides=[*TRAIN, f"normalization.strategy={spec}"])),
    ]
    return as_strategy + ([
        lambda: mdl.get_plugin_manager().import_plugin(spec),
        lambda: Trainer(load_config(overrides=[*TRAIN, f'plugins=["{spec}"]'])),
    ] if as_observer else [])


def _weights(trainer: Trainer) -> dict[str, np.ndarray]:
    trainer.fit()
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def test_every_broken_plugin_leaves_the_process_as_it_was(tmp_path, plugin_manager):
    before = _state(plugin_manager)
    marker = tmp_path / "marker.txt"
    sources = {**BROKEN, "not_a_plugin": NOT_A_PLUGIN.format(marker=str(marker))}
    for name, source in sources.items():
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        for attempt in _attempts(path, as_observer=name not in STRATEGY_FAULTS):
            with pytest.raises(mdl.MinidlError):
                attempt()
            assert _state(plugin_manager) == before, (name, attempt)
    assert not marker.exists()  # the script was refused unread by Python, not run

    # Built-in training in this process now gives the same bits as in a fresh one.
    here = _weights(Trainer(load_config(overrides=TRAIN)))
    fresh = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import json
            from minidl.config import load_config
            from minidl.trainer import Trainer
            trainer = Trainer(load_config(overrides={TRAIN!r}))
            trainer.fit()
            print(json.dumps({{k: v.tolist() for k, v in trainer.model.state_dict().items()}}))
        """)], capture_output=True, text=True, check=True)
    for key, values in json.loads(fresh.stdout).items():
        np.testing.assert_array_equal(here[key], np.asarray(values), err_msg=key)


COUNTING_STRATEGY = HOOKS + textwrap.dedent("""
    STEPS = []

    @mdl.hookimpl
    def minidl_strategy_info():
        return mdl.StrategyInfo(name="counting-mean")

    @mdl.hookimpl
    def minidl_cost_scale(count):
        return 1.0 / count

    @mdl.hookimpl
    def minidl_step_end(trainer, step, loss):
        STEPS.append(step)
""")


def test_a_strategy_plugins_observer_hooks_fire_only_for_its_own_trainer(tmp_path,
                                                                        plugin_manager):
    path = tmp_path / "counting.py"
    path.write_text(COUNTING_STRATEGY)
    own = Trainer(load_config(overrides=[*TRAIN, f"normalization.strategy={path}"]))
    assert plugin_manager.get_plugin(str(path)) is None  # not active until fit runs
    own.fit()
    module = sys.modules[next(m for m in sys.modules if m.startswith("minidl_user_plugin_"
                                                                    "counting"))]
    assert module.STEPS == [1, 2, 3]
    assert plugin_manager.get_plugin(str(path)) is None  # and not after
    Trainer(load_config(overrides=TRAIN)).fit()  # a built-in strategy: the hook stays quiet
    assert module.STEPS == [1, 2, 3]


@pytest.mark.parametrize("answer", ['"no"', "float('nan')", "np.array([True, False])",
                                    "Ambiguous()"])
def test_epoch_end_must_answer_true_false_or_none(tmp_path, answer):
    path = tmp_path / "answers.py"
    path.write_text(HOOKS + textwrap.dedent(f"""
        import numpy as np

        class Ambiguous:
            def __bool__(self):
                raise ValueError("no truth value")

        @mdl.hookimpl
        def minidl_epoch_end(trainer, epoch, metrics):
            return {answer}
    """))
    trainer = Trainer(load_config(overrides=[*TRAIN, f'plugins=["{path}"]']))
    with pytest.raises(mdl.PluginError, match=f"plugin '{path}' returned .* from hook "
                                              "minidl_epoch_end; it must return True"):
        trainer.fit()


def test_system_exit_from_an_observer_is_reported_with_the_plugins_name(tmp_path, capsys):
    path = tmp_path / "exits.py"
    path.write_text(HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_step_end(trainer, step, loss):
            raise SystemExit(4)
    """))
    code = main(["train", "--quiet", "--set", "output.dir=", "--set", "train.epochs=2",
                 "--set", f'plugins=["{path}"]'])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"failed: plugin '{path}' failed in hook minidl_step_end: SystemExit: 4\n"


def test_keyboard_interrupt_from_an_observer_stays_an_interrupt_naming_the_plugin(
        tmp_path, capsys):
    path = tmp_path / "interrupts.py"
    path.write_text(HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_step_end(trainer, step, loss):
            raise KeyboardInterrupt
    """))
    code = main(["train", "--quiet", "--set", "output.dir=", "--set", "train.epochs=2",
                 "--set", f'plugins=["{path}"]'])
    assert code == 130
    assert capsys.readouterr().err == (f"interrupted (in plugin '{path}', hook "
                                       "minidl_step_end)\n")


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the plugin's fault
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_nan_from_a_strategys_leaf_hook_is_blamed_on_the_plugin(tmp_path):
    path = tmp_path / "nan_mean.py"
    path.write_text(HOOKS + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_strategy_info():
            return mdl.StrategyInfo(name="nan-mean")

        @mdl.hookimpl
        def minidl_cost_scale(count):
            return 1.0 / count

        @mdl.hookimpl
        def minidl_leaf_grad(grad, count, new_grad, new_count):
            return new_grad / (new_count - new_count)   # 0/0 and x/0
    """))
    trainer = Trainer(load_config(overrides=[*TRAIN, f"normalization.strategy={path}"]))
    with pytest.raises(mdl.PluginError, match=f"plugin '{path}' returned NaN or inf from "
                                              "hook minidl_leaf_grad .* not the learning rate"):
        trainer.fit()


def test_a_dotted_name_that_is_no_plugin_is_refused_unrun(capsys):
    code = main(["train", "--quiet", "--set", "normalization.strategy=unittest.__main__"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "usage" not in err.lower()
    assert "refusing to import 'unittest.__main__'" in err
    assert "does not define minidl_strategy_info" in err


def test_minidl_config_prints_a_config_without_importing_its_plugins(tmp_path, capsys):
    marker = tmp_path / "imported.txt"
    body = f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
    strategy, observer = tmp_path / "marked_strategy.py", tmp_path / "marked_observer.py"
    strategy.write_text(COUNTING_STRATEGY + body)
    observer.write_text(HOOKS + body + textwrap.dedent("""
        @mdl.hookimpl
        def minidl_train_start(trainer):
            pass
    """))
    code = main(["config", "--strategy", str(strategy), "--set", f'plugins=["{observer}"]'])
    out = capsys.readouterr().out
    assert code == 0 and str(strategy) in out and str(observer) in out
    assert not marker.exists()


def test_a_misspelt_hook_is_refused_naming_the_closest_hook(tmp_path, plugin_manager):
    path = tmp_path / "misspelt.py"
    path.write_text(BROKEN["misspelt_hook"])
    with pytest.raises(mdl.PluginError, match="defines 'minidl_epoch_ended', which is not a "
                                              "minidl hook; did you mean 'minidl_epoch_end'"):
        plugin_manager.import_plugin(str(path))
    assert plugin_manager.get_plugin(str(path)) is None
