"""Memory (issue 14, item 3): backward lets go of each intermediate array once processed,
relu keeps no mask, and one step's traced peak stays near hand numpy's."""

from __future__ import annotations

import sys
import weakref
from pathlib import Path

import numpy as np

import minidl as mdl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class _Probe(mdl.Function):
    """Identity whose backward records whether a watched tensor is still alive."""

    saved_inputs, saves_output = (), False
    watched: weakref.ref | None = None
    alive_in_backward: list[bool] = []

    def forward(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def backward(self, grad: np.ndarray) -> np.ndarray:
        assert _Probe.watched is not None
        _Probe.alive_in_backward.append(_Probe.watched() is not None)
        return grad


def test_an_intermediate_is_freed_during_backward_once_processed() -> None:
    w = mdl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    h1 = _Probe.apply(w)
    h2 = mdl.tanh(h1 * 2.0)  # processed (and dropped) before the probe's backward runs
    _Probe.watched, _Probe.alive_in_backward = weakref.ref(h2), []
    loss = (h2 * h2).sum()
    del h1, h2
    loss.backward()
    assert _Probe.alive_in_backward == [False]
    np.testing.assert_allclose(w.grad, 2 * np.tanh(2.0) * (1 - np.tanh(2.0) ** 2) * 2,
                               rtol=1e-6)


def test_a_tensor_the_user_holds_survives_backward() -> None:
    w = mdl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    h = mdl.tanh(w * 2.0)
    loss = (h * h).sum()
    loss.backward()
    np.testing.assert_allclose(h.data, np.tanh(2.0), rtol=1e-6)  # still usable after


def test_relu_keeps_its_output_not_a_mask() -> None:
    x = mdl.tensor(np.array([-1.0, 0.0, 2.0, np.nan, -0.0], dtype=np.float32),
                   requires_grad=True)
    out = mdl.relu(x)
    arrays = [v for v in vars(out._ctx).values() if isinstance(v, np.ndarray)]
    assert len(arrays) == 1 and arrays[0] is out.data
    out.backward(np.ones(5, dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 0.0, 0.0])  # as the old mask a > 0


def test_one_steps_peak_memory_is_within_1_2x_of_hand_numpy() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from benchmark_memory import measure
    finally:
        sys.path.remove(str(EXAMPLES))
    result = measure(8192)  # 784-256-128-10, float32: 8 MB per (b, 256) array
    assert result["nn_over_numpy"] <= 1.2, result
    assert result["functional_over_numpy"] <= 1.2, result
