"""compare on datasets it cannot resize (digits, files) and on regression targets."""

from __future__ import annotations

import numpy as np
import pytest

from minidl.compare import compare
from minidl.config import load_config


def _verdicts_ok(result: dict) -> bool:
    return result["mismatches"] == [] and all(all(row["ok"].values()) for row in result["where"])


def test_compare_runs_on_digits_with_batches_drawn_from_the_dataset():
    config = load_config(overrides=["data.dataset=digits", "model.hidden=[16]",
                                    "optimizer.name=adam", "optimizer.lr=0.001"])
    result = compare(config, strategies=["deferred", "absorbed"], dtypes=("float32",),
                     batch_sizes=(64, 4096), steps=2)
    assert _verdicts_ok(result)
    rows = result["stability"]
    assert sorted({row["batch_size"] for row in rows}) == [64, 4096]
    assert all(np.isfinite(row["rel_error"]) and row["rel_error"] < 1e-4 for row in rows)
    assert result["m"] == 1797


def test_compare_on_a_csv_file_keeps_its_features_and_binary_targets(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    table = np.column_stack([x, (x[:, 0] > 0).astype(int)])
    path = tmp_path / "data.csv"
    np.savetxt(path, table, delimiter=",", fmt="%.6f")
    result = compare(load_config(overrides=[f"data.dataset={path}"]),
                     strategies=["deferred", "sum"], dtypes=("float64",),
                     batch_sizes=(8, 200), steps=2)
    assert _verdicts_ok(result)
    assert [row["batch_size"] for row in result["stability"]] == [8, 8, 200, 200]


@pytest.mark.parametrize("overrides", [["loss.name=mse"], ["data.standardize=true"]])
def test_compare_with_resized_built_in_batches(overrides):
    result = compare(load_config(overrides=overrides), strategies=["deferred", "absorbed"],
                     dtypes=("float32",), batch_sizes=(64, 512), steps=2)
    assert _verdicts_ok(result)
    assert all(row["rel_error"] < 1e-4 for row in result["stability"])
