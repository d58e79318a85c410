"""minidl compare: computed verdicts, every number in the JSON, float16 that overflows."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import minidl as mdl
from minidl.cli import main
from minidl.compare import compare
from minidl.compare.report import render
from minidl.config import load_config

SMALL = dict(dtypes=("float32", "float64"), batch_sizes=(64, 256), steps=5)


class TwiceOneOverM:
    """A deliberately wrong strategy: reports the mean, but applies 1/m twice in backward."""

    @mdl.hookimpl
    def minidl_strategy_info(self):
        return mdl.StrategyInfo(name="twice", description="1/m twice (a bug on purpose)")

    @mdl.hookimpl
    def minidl_cost_scale(self, count):
        return 1.0 / count

    @mdl.hookimpl
    def minidl_loss_grad_scale(self, count):
        return 1.0 / count ** 2


@pytest.fixture(scope="module")
def result():
    return compare(load_config(), strategies=["deferred", "absorbed", "sum"], **SMALL)


def test_the_where_table_finds_each_factor(result):
    rows = {row["row"]: row for row in result["where"]}
    assert list(rows) == ["dZ1", "dA1", "dZ2", "dW1", "db1", "dW2", "db2"]
    for name in ("dW1", "db1", "dW2", "db2"):
        assert rows[name]["verdicts"]["deferred"].startswith("equal to")
        assert rows[name]["verdicts"]["sum"] == "differs by exactly m = 400"
        assert rows[name]["ratio"]["sum"] == pytest.approx(400, rel=1e-9)
    for name in ("dZ1", "dA1", "dZ2"):
        assert rows[name]["factor"]["deferred"] == "m = 400"
        assert rows[name]["ratio"]["deferred"] == pytest.approx(400, rel=1e-9)
    assert result["mismatches"] == []
    assert result["cost"]["sum"] == pytest.approx(400 * result["cost"]["absorbed"], rel=1e-12)


def test_a_strategy_that_applies_1_over_m_twice_is_reported_as_a_mismatch():
    plugin = TwiceOneOverM()
    pm = mdl.get_plugin_manager()
    pm.register(plugin, name="twice-plugin")
    try:
        report = compare(load_config(), strategies=["deferred", "twice"], **SMALL)
    finally:
        pm.unregister(plugin)
    rows = {row["row"]: row for row in report["where"]}
    assert not rows["dW1"]["ok"]["twice"] and rows["dW1"]["ok"]["deferred"]
    assert "MISMATCH" in rows["dW1"]["verdicts"]["twice"]
    assert "1/m = 1/400" in rows["dW1"]["verdicts"]["twice"]
    assert rows["dZ2"]["factor"]["twice"] == "1/m = 1/400"
    assert any("dW2 under twice" in item for item in report["mismatches"])
    assert report["equivalence"]["one_batch"]["twice"] == pytest.approx(1 - 1 / 400, rel=1e-6)
    assert "MISMATCHES:" in render(report)


def test_equivalence_and_accumulation_numbers(result):
    for name in ("deferred", "sum"):
        assert result["equivalence"]["one_batch"][name] < 1e-12
        assert result["equivalence"]["after_steps"][name] < 1e-10
        assert result["accumulation"][name]["rel_diff"] < 1e-12
    assert result["accumulation"]["micro_batches"] == [32] * 12 + [16]
    # absorbed sums 13 micro-batch means: about 13 x the full-batch gradient, never equal.
    assert result["accumulation"]["absorbed"]["rel_diff"] > 1.0


def test_the_json_has_every_cell_of_the_tables(capsys):
    code = main(["compare", "--json", "--strategies", "deferred,absorbed", "--dtypes",
                 "float32,float64", "--batch-sizes", "64,128", "--steps", "3"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    names = ["deferred", "absorbed"]
    for row in data["where"]:
        for key in ("norm", "ratio", "factor", "residual", "ok", "verdicts"):
            assert set(row[key]) == set(names)
    cells = {(r["strategy"], r["dtype"], r["batch_size"]) for r in data["stability"]}
    assert cells == {(s, d, m) for s in names for d in ("float32", "float64") for m in (64, 128)}
    for row in data["stability"]:
        assert set(row["leaves"]) == set(row["intermediates"]) == {"inf", "nan", "underflow",
                                                                    "total"}
    assert all(len(data["curves"][n]) == 3 for n in names)
    assert set(data["equivalence"]["one_batch"]) == set(names)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the point
def test_float16_completes_where_values_overflow():
    report = compare(load_config(), strategies=["sum", "absorbed"], dtypes=("float16",),
                     batch_sizes=(131_072,), steps=2)
    by_strategy = {row["strategy"]: row for row in report["stability"]}
    assert by_strategy["sum"]["cost_finite"] is False  # a summed cost beyond 65504 is inf
    assert by_strategy["absorbed"]["cost_finite"] is True
    assert by_strategy["absorbed"]["intermediates"]["underflow"] > 0  # dZ / m underflows
    text = render(report)
    assert "float16" in text and "131,072" in text and "cost inf" in text


def test_bad_arguments_exit_2(capsys, monkeypatch):
    assert main(["compare", "--dtypes", "float8"]) == 2
    assert "allowed: float16, float32, float64" in capsys.readouterr().err
    assert main(["compare", "--strategies", "median", "--steps", "1"]) == 2
    assert "unknown normalization strategy 'median'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were missing
    assert main(["compare", "--plot", "curves.png"]) == 2
    assert "pip install 'minidl[plot]'" in capsys.readouterr().err


def test_stability_reference_is_the_same_strategy_in_float64(result):
    rows = [r for r in result["stability"] if r["dtype"] == "float64"]
    assert rows and all(r["rel_error"] == 0.0 for r in rows)
    assert all(np.isfinite(r["rel_error"]) for r in result["stability"])
