"""minidl.distributed in one process: the hook, the packing, sharding, the CLI's checks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import numpy as np
import pytest

import minidl as mdl
from helpers.cli import assert_one_message, run_cli
from helpers.mpi_problem import data, raw_gradient
from minidl.distributed import shard_bounds, simulate_ranks
from minidl.errors import PluginError

D = data()


def _leaves(rows: slice | None, strategy: str) -> list[mdl.Tensor]:
    """w1, b1, w2, b2 after one backward on ``rows`` (none when None) under ``strategy``."""
    leaves = [mdl.tensor(D[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")]
    if rows is not None:
        w1, b1, w2, b2 = leaves
        z2 = mdl.tanh(mdl.tensor(D["x"][rows]) @ w1.T + b1) @ w2.T + b2
        mdl.nn.functional.binary_cross_entropy_with_logits(
            z2, mdl.tensor(D["y"][rows]), strategy=strategy).backward()
    return leaves


def test_hook_minidl_combine_ranks(plugin_manager):
    """A strategy's own rule is what the ranks' gradients are combined by."""
    seen = []

    class Twice:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="twice")

        @mdl.hookimpl
        def minidl_cost_scale(self):
            return 1.0

        @mdl.hookimpl
        def minidl_combine_ranks(self, count, world_size):
            seen.append((count, world_size))
            return mdl.RankCombine(weight=2.0 * count, mean=False)

    plugin_manager.register(Twice(), name="twice")
    shards = [_leaves(slice(0, 5), "twice"), _leaves(slice(5, 23), "twice")]
    combined = simulate_ranks(shards, mdl.resolve_strategy("twice"))
    # sum-cost gradients are raw sums; the rule weighs rank r by 2 N_r and adds
    want = [2 * 5 * a + 2 * 18 * b for a, b in zip(
        raw_gradient(D, slice(0, 5), np.ones(5)).values(),
        raw_gradient(D, slice(5, 23), np.ones(18)).values())]
    for got, expected in zip(combined, want):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert sorted(set(seen)) == [(5.0, 2), (18.0, 2)]
    assert shards[0][0].grad_count == 23.0  # the leaf now counts every rank's examples


def test_a_strategy_with_leaf_grad_must_say_how_ranks_combine(plugin_manager):
    module = types.ModuleType("runningmean")
    exec("import minidl as mdl\n"
         "@mdl.hookimpl\ndef minidl_strategy_info(): return mdl.StrategyInfo(name='rm')\n"
         "@mdl.hookimpl\ndef minidl_cost_scale(count): return 1.0 / count\n"
         "@mdl.hookimpl\ndef minidl_leaf_grad(grad, new_grad): return new_grad\n",
         module.__dict__)
    plugin_manager.register(module, name="runningmean")
    with pytest.raises(PluginError, match="implement minidl_combine_ranks"):
        mdl.resolve_strategy("rm").combine_ranks(3.0, 2)


def test_a_bad_rule_is_a_plugin_error_naming_the_plugin(plugin_manager):
    class Bad:
        @mdl.hookimpl
        def minidl_strategy_info(self):
            return mdl.StrategyInfo(name="bad")

        @mdl.hookimpl
        def minidl_cost_scale(self):
            return 1.0

        @mdl.hookimpl
        def minidl_combine_ranks(self):
            return 0.5

    plugin_manager.register(Bad(), name="bad-plugin")
    with pytest.raises(PluginError, match="'bad-plugin'.*RankCombine"):
        mdl.resolve_strategy("bad").combine_ranks(3.0, 2)
    with pytest.raises(mdl.errors.InvalidTypeError):
        mdl.RankCombine(weight=float("nan"))


def test_the_simulated_split_uses_the_same_rule_as_the_trainer():
    """deferred over 3 uneven simulated ranks: the global mean, to rounding."""
    bounds = [0, 2, 9, 23]
    shards = [_leaves(slice(a, b), "deferred") for a, b in zip(bounds, bounds[1:])]
    combined = simulate_ranks(shards, mdl.resolve_strategy("deferred"))
    want = raw_gradient(D, slice(0, 23), np.full(23, 1 / 23)).values()
    for got, expected in zip(combined, want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_a_leaf_no_rank_reached_keeps_no_gradient():
    shards = [_leaves(None, "deferred"), _leaves(None, "deferred")]
    assert simulate_ranks(shards, mdl.resolve_strategy("deferred")) == [None] * 4


def test_shards_cover_every_example_once_with_sizes_differing_by_at_most_one():
    for size in range(0, 40):
        for world in range(1, 6):
            bounds = [shard_bounds(size, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            lengths = [b - a for a, b in bounds]
            assert max(lengths) - min(lengths) <= 1


def test_one_process_calls_change_nothing():
    w = mdl.tensor([1.0, 2.0], requires_grad=True)
    mdl.nn.functional.mse_loss(w, mdl.tensor([0.0, 0.0])).backward()
    before = w.grad.copy()
    assert mdl.distributed.allreduce_gradients([w]) == 0
    np.testing.assert_array_equal(w.grad, before)
    mdl.distributed.broadcast_parameters([w])
    assert (mdl.distributed.world_size(), mdl.distributed.rank()) == (1, 0)


def test_import_minidl_never_imports_mpi4py(tmp_path):
    code = ("import sys, minidl as mdl, minidl.distributed, minidl.trainer, minidl.cli\n"
            "from minidl.cli import main\n"
            "assert main(['train', '--set', 'train.epochs=3', '--set', 'output.dir=']) == 0\n"
            "print('mpi4py' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_nproc_without_mpi4py_names_the_install_command(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    code, _, err = run_cli(capsys, "train", "--nproc", "2", "--set", "train.epochs=1")
    assert_one_message(code, err, 2, "--nproc needs mpi4py", "pip install 'minidl[mpi]'")


def test_nproc_must_be_positive(capsys):
    code, _, err = run_cli(capsys, "train", "--nproc", "0")
    assert_one_message(code, err, 2, "--nproc must be at least 1")


def test_compare_ranks_prints_each_strategys_difference_from_one_process(capsys):
    code, out, err = run_cli(capsys, "compare", "--ranks", "1,2,3", "--json")
    assert code == 0, err
    import json

    result = json.loads(out)
    rows = {(r["ranks"], r["split"]): r for r in result["rows"]}
    assert rows[(3, "uneven")]["shards"] == [67, 133, 200]
    for row in result["rows"]:
        assert row["rel_diff"]["deferred"] < 1e-13 and row["rel_diff"]["sum"] < 1e-13
    assert rows[(2, "uneven")]["rel_diff"]["absorbed"] > 0.01  # the mean of means' bias
    assert rows[(2, "even")]["rel_diff"]["absorbed"] < 1e-13   # even shards: no bias
    code, out, _ = run_cli(capsys, "compare", "--ranks", "2")
    assert code == 0 and "absorbed" in out and "133 + 267" in out


def test_compare_ranks_refuses_bad_counts(capsys):
    code, _, err = run_cli(capsys, "compare", "--ranks", "two")
    assert_one_message(code, err, 2, "--ranks takes integers")
