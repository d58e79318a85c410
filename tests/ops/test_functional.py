"""mdl.nn.functional: softmax, log_softmax and the losses, per example and batch-reduced.

The batch-reduced losses are checked under strategies whose backward is the
plain calculus of their reported cost: ``absorbed`` (the mean) and ``sum``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import OP_SETTINGS, float_dtypes, make, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st

import minidl as mdl
import minidl.nn.functional as F

# ============================== independent numpy references ============================


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x)  # no shift: the test values are small, and this is the textbook formula
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def np_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    onehot = np.eye(logits.shape[1])[labels]
    return -(onehot * np_log_softmax(logits, axis=1)).sum(axis=1)


def _per_example_mean(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def np_bce_with_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-z))
    return _per_example_mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def np_mse(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    return _per_example_mean((prediction - target) ** 2)


# ================================== softmax, log_softmax ================================

@st.composite
def shape_and_softmax_axis(draw: Any) -> tuple[tuple[int, ...], int]:
    shape = draw(shapes(min_dims=1, max_dims=3))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@OP_SETTINGS
@given(shape_axis=shape_and_softmax_axis(), dtype=float_dtypes, seed=seeds)
def test_softmax(name: str, shape_axis: tuple[tuple[int, ...], int], dtype: Any,
                 seed: int) -> None:
    shape, axis = shape_axis
    fn, ref = (F.softmax, np_softmax) if name == "softmax" else (F.log_softmax, np_log_softmax)
    x = make("normal", shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: fn(t, axis=axis), lambda a: ref(a, axis), [x], seed=seed)


def test_softmax_default_axis_is_last_and_reuse() -> None:
    x = make("normal", (3, 4), np.float32, np.random.default_rng(0))
    check_op(F.softmax, lambda a: np_softmax(a, -1), [x])
    check_op(F.log_softmax, lambda a: np_log_softmax(a, -1), [x])
    check_op(lambda t: F.softmax(t) * t, lambda a: np_softmax(a, -1) * a, [x])
    check_op(lambda t: F.log_softmax(t * t, axis=0) + t,
             lambda a: np_log_softmax(a * a, 0) + a, [x])


# ======================================= losses =========================================

def _ce_inputs(m: int, classes: int, dtype: Any, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make("normal", (m, classes), dtype, rng), rng.integers(0, classes, m)]


def _target_inputs(shape: tuple[int, ...], dtype: Any, seed: int,
                   soft: bool = True) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(0, 1, shape) if soft else rng.integers(0, 2, shape)
    return [make("normal", shape, dtype, rng), np.asarray(target, dtype=dtype)]


LOSSES: dict[str, tuple[Callable[..., Any], Callable[..., np.ndarray]]] = {
    "cross_entropy": (F.cross_entropy, np_cross_entropy),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits,
                                         np_bce_with_logits),
    "mse_loss": (F.mse_loss, np_mse),
}


@st.composite
def loss_inputs(draw: Any, name: str, dtype: Any) -> list[np.ndarray]:
    seed = draw(seeds)
    if name == "cross_entropy":
        return _ce_inputs(draw(st.integers(1, 5)), draw(st.integers(1, 5)), dtype, seed)
    shape = draw(shapes(min_dims=1, max_dims=3))
    return _target_inputs(shape, dtype, seed, soft=draw(st.booleans()))


@pytest.mark.parametrize("name", sorted(LOSSES))
@OP_SETTINGS
@given(data=st.data(), dtype=float_dtypes)
def test_loss_per_example(name: str, data: Any, dtype: Any) -> None:
    """reduction="none": one loss per example; gradients for logits and float targets."""
    fn, ref = LOSSES[name]
    inputs = data.draw(loss_inputs(name, dtype))
    result = check_op(lambda *ts: fn(*ts, reduction="none"), ref, inputs)
    assert result.out.shape == (inputs[0].shape[0],)


@pytest.mark.parametrize("strategy, reduce", [("absorbed", np.mean), ("sum", np.sum)])
@pytest.mark.parametrize("name", sorted(LOSSES))
@OP_SETTINGS
@given(data=st.data(), dtype=float_dtypes)
def test_loss_batch_reduction(strategy: str, reduce: Callable[[np.ndarray], Any], name: str,
                              data: Any, dtype: Any) -> None:
    """The default reduction="batch", under strategies that are plain calculus of the cost."""
    fn, ref = LOSSES[name]
    inputs = data.draw(loss_inputs(name, dtype))
    with mdl.normalization(strategy):
        result = check_op(fn, lambda *arrs: reduce(ref(*arrs)), inputs)
    assert result.out.shape == ()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_batch_reduction_with_sample_weight_and_mask(name: str) -> None:
    """Under absorbed, the cost is sum_i w_i l_i / sum_i w_i: plain calculus again."""
    fn, ref = LOSSES[name]
    inputs = (_ce_inputs(5, 3, np.float64, 1) if name == "cross_entropy"
              else _target_inputs((5, 2), np.float64, 1))
    weight = np.array([0.5, 2.0, 0.0, 1.0, 3.0])
    mask = np.array([True, True, False, True, True])
    with mdl.normalization("absorbed"):
        check_op(lambda *ts: fn(*ts, sample_weight=weight),
                 lambda *arrs: (ref(*arrs) * weight).sum() / weight.sum(), inputs)
        check_op(lambda *ts: fn(*ts, mask=mask),
                 lambda *arrs: ref(*arrs)[mask].mean(), inputs)


def test_losses_with_reused_inputs() -> None:
    x = make("normal", (4, 3), np.float64, np.random.default_rng(2))
    labels = np.array([0, 2, 2, 1])
    check_op(lambda t, y: F.cross_entropy(t * t, y, reduction="none"),
             lambda a, y: np_cross_entropy(a * a, y), [x, labels])
    check_op(lambda t: F.mse_loss(t, t.tanh(), reduction="none"),
             lambda a: np_mse(a, np.tanh(a)), [x])
    check_op(lambda t: F.binary_cross_entropy_with_logits(t, t.sigmoid(), reduction="none"),
             lambda a: np_bce_with_logits(a, 1 / (1 + np.exp(-a))), [x])


def test_cross_entropy_accepts_integral_float_labels() -> None:
    x = make("normal", (3, 4), np.float64, np.random.default_rng(8))
    check_op(lambda t: F.cross_entropy(t, mdl.tensor([3.0, 0.0, 3.0]), reduction="none"),
             lambda a: np_cross_entropy(a, np.array([3, 0, 3])), [x])


def test_loss_rejects_reduction_mean_with_a_hint() -> None:
    with pytest.raises(ValueError, match="strategy"):
        F.mse_loss(mdl.tensor([1.0]), mdl.tensor([0.0]), reduction="mean")


# ============================= extreme logits stay finite ===============================

BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [-1000.0, 0.0, 1000.0]],
               dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_softmax_and_log_softmax_of_huge_logits(dtype: Any) -> None:
    big = BIG.astype(dtype)
    x = mdl.tensor(big, requires_grad=True)
    probs = F.softmax(x, axis=1)
    assert probs.dtype == dtype and np.isfinite(probs.data).all()
    np.testing.assert_allclose(probs.data.sum(axis=1), 1.0, rtol=1e-3)
    log_probs = F.log_softmax(x, axis=1)
    assert log_probs.dtype == dtype and np.isfinite(log_probs.data).all()
    w = np.random.default_rng(0).standard_normal(big.shape).astype(dtype)
    (probs * w).sum().backward()
    assert x.grad.dtype == dtype and np.isfinite(x.grad).all()
    x.grad = None
    (log_probs * w).sum().backward()
    assert np.isfinite(x.grad).all()


def test_huge_logits_exact_values_float32() -> None:
    x = mdl.tensor(BIG, requires_grad=True)
    np.testing.assert_array_equal(F.softmax(x, axis=1).data, [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(F.log_softmax(x, axis=1).data,
                                  [[0, -2000, -1000], [-2000, -2000, 0], [-2000, -1000, 0]])
    # log_softmax backward: grad - softmax * sum(grad)
    w = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, 1.0, -1.0]], dtype=np.float32)
    (F.log_softmax(x, axis=1) * w).sum().backward()
    expected = w - np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1]]) * w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad, expected, atol=1e-6)


def test_cross_entropy_of_huge_logits_float32() -> None:
    x = mdl.tensor(BIG, requires_grad=True)
    labels = mdl.tensor(np.array([1, 0, 2]))  # wrong, very wrong, right
    losses = F.cross_entropy(x, labels, reduction="none")
    assert losses.dtype == np.float32
    np.testing.assert_allclose(losses.data, [2000.0, 2000.0, 0.0])
    losses.sum().backward()
    np.testing.assert_allclose(x.grad, [[1, -1, 0], [-1, 0, 1], [0, 0, 0]], atol=1e-6)
    x.grad = None
    with mdl.normalization("absorbed"):
        cost = F.cross_entropy(x, labels)
    assert np.isfinite(cost.item()) and abs(cost.item() - 4000 / 3) < 1e-2
    cost.backward()
    assert np.isfinite(x.grad).all() and x.grad.dtype == np.float32


def test_bce_with_logits_of_huge_logits_float32() -> None:
    z = mdl.tensor(np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]], dtype=np.float32),
                   requires_grad=True)
    y = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=np.float32)
    losses = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    assert losses.dtype == np.float32
    np.testing.assert_allclose(losses.data, [0.0, 0.0, 1000.0, 1000.0])
    losses.sum().backward()
    np.testing.assert_allclose(z.grad, [[0.0], [0.0], [1.0], [-1.0]], atol=1e-6)
    z.grad = None
    with mdl.normalization("absorbed"):
        cost = F.binary_cross_entropy_with_logits(z, y)
    assert cost.item() == pytest.approx(500.0)
    cost.backward()
    np.testing.assert_allclose(z.grad, [[0.0], [0.0], [0.25], [-0.25]], atol=1e-6)


def test_sigmoid_of_huge_inputs_is_finite() -> None:
    x = mdl.tensor(np.array([1000.0, -1000.0, 0.0], dtype=np.float32), requires_grad=True)
    y = mdl.sigmoid(x)
    np.testing.assert_array_equal(y.data, [1.0, 0.0, 0.5])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.25])
