"""examples/benchmark_checks.py catches implementations that compute something else: a wrong
gradient or update against hand numpy, a compiled step that fell back to eager or drifted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minidl as mdl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def checks_module():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import benchmark_checks
        import benchmark_nets
        yield benchmark_checks, benchmark_nets
    finally:
        sys.path.remove(str(EXAMPLES))


def test_the_functional_path_agrees_with_hand_numpy_and_a_wrong_one_does_not(
        checks_module) -> None:
    checks, nets = checks_module
    spec = nets.make_specs(0)[0]
    weights = nets.MinidlNet(spec, 0).weights()
    good = checks.compare_to_numpy(spec, lambda w: nets.FunctionalNet(spec, w), weights)
    assert good["ok"], good["problems"]
    assert 0 <= good["max_rel_grad_diff"] < checks.RTOL

    def shifted(w: Any) -> Any:  # the second layer's bias off by 0.1: cost and grads differ
        return nets.FunctionalNet(spec, [w[0], (w[1][0], w[1][1] + np.float32(0.1))])

    bad = checks.compare_to_numpy(spec, shifted, weights)
    assert not bad["ok"] and any(p.startswith("cost:") for p in bad["problems"])
    assert any("weights differ after one SGD step" in p for p in bad["problems"])


def test_a_compiled_step_that_falls_back_to_eager_fails_the_check(checks_module,
                                                                  monkeypatch) -> None:
    checks, nets = checks_module

    class ReadsTheLoss(nets.CompiledNet):
        def __init__(self, spec: Any, seed: int) -> None:
            super().__init__(spec, seed)
            net = self.net

            def train_step(x: Any, y: Any) -> None:
                net.optimizer.zero_grad()
                loss = net.loss_fn(net.model(x), y)
                loss.backward()
                net.optimizer.step()
                float(loss.item())  # reads a value: mdl.compile must fall back

            self.compiled = mdl.compile(train_step)

    spec = nets.make_specs(0)[0]
    assert checks.check_compiled(spec, 0)["ok"]
    monkeypatch.setattr(checks, "CompiledNet", ReadsTheLoss)
    result = checks.check_compiled(spec, 0)
    assert not result["ok"] and "fell back to eager" in result["problems"][0]


def test_a_compiled_step_that_drifts_from_eager_fails_the_check(checks_module,
                                                                monkeypatch) -> None:
    checks, nets = checks_module

    class OtherRate(nets.CompiledNet):
        def __init__(self, spec: Any, seed: int) -> None:
            super().__init__(spec, seed)
            for group in self.net.optimizer.param_groups:
                group["lr"] *= 1.0001  # a tiny drift: allclose would pass, bit-equality not

    monkeypatch.setattr(checks, "CompiledNet", OtherRate)
    result = checks.check_compiled(nets.make_specs(0)[0], 0)
    assert not result["ok"]
    assert all("weights differ from eager's after 5 steps" in p for p in result["problems"])
