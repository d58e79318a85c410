"""How a leaf's gradient is kept: plain and normalized parts, strategy, count, dtype."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl

F = mdl.nn.functional


def _deferred_pass(w: mdl.Tensor, m: int) -> None:
    """A batch of m examples whose per-example loss is sum(w), so the mean gradient is 1."""
    mdl.batch_reduce((mdl.tensor(np.ones((m, w.size))) * w).sum(axis=1)).backward()


def test_plain_calculus_is_never_rescaled_by_deferred_running_means():
    w = mdl.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    (w * 3.0).sum().backward()  # plain: +3
    _deferred_pass(w, 4)
    _deferred_pass(w, 6)
    np.testing.assert_allclose(w.grad, [4.0, 4.0])  # 3 + the mean, 1
    assert w.grad_count == 10
    _deferred_pass(w, 5)
    (w * 2.0).sum().backward()  # plain again, between normalized passes
    _deferred_pass(w, 5)
    np.testing.assert_allclose(w.grad, [6.0, 6.0])


def test_switching_strategy_on_an_uncleared_leaf_is_an_error():
    w = mdl.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    with mdl.normalization("sum"):
        _deferred_pass(w, 3)
    with pytest.raises(mdl.GraphError, match="another strategy"):
        _deferred_pass(w, 3)
    w.grad = None
    _deferred_pass(w, 3)
    np.testing.assert_allclose(w.grad, [1.0, 1.0])


def test_assigning_grad_keeps_its_example_count_and_none_clears_it():
    w = mdl.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    _deferred_pass(w, 2)
    w.grad = w.grad * 0.5  # e.g. clipping: still the mean over the same 2 examples
    assert w.grad_count == 2
    _deferred_pass(w, 2)
    np.testing.assert_allclose(w.grad, [0.75, 0.75])  # (0.5 * 2 + 1 * 2) / 4
    w.grad = None
    assert w.grad_count == 0


def test_n_counts_the_examples_that_reached_each_leaf():
    """Documented: a leaf absent from a micro-batch's graph does not count its examples."""
    head_a = mdl.tensor([1.0], requires_grad=True, dtype="float64")
    head_b = mdl.tensor([1.0], requires_grad=True, dtype="float64")
    _deferred_pass(head_a, 4)
    _deferred_pass(head_b, 6)
    assert (head_a.grad_count, head_b.grad_count) == (4, 6)
    np.testing.assert_allclose([head_a.grad[0], head_b.grad[0]], [1.0, 1.0])


@pytest.mark.parametrize("strategy", ["deferred", "absorbed"])
def test_float16_weight_gradients_do_not_overflow_before_the_mean(strategy):
    m = 70_000
    x = mdl.tensor(np.full((m, 2), 2.0, dtype=np.float16))
    w = mdl.tensor(np.ones((1, 2), dtype=np.float16), requires_grad=True)
    b = mdl.tensor(np.zeros(1, dtype=np.float16), requires_grad=True)
    y = mdl.tensor(np.zeros((m, 1), dtype=np.float16))
    with mdl.normalization(strategy):
        F.binary_cross_entropy_with_logits(F.linear(x, w, b), y).backward()
    expected = 1 / (1 + np.exp(-4.0))  # sigmoid(z) - y at z = 4, the same for every example
    assert w.grad.dtype == np.float16 and np.isfinite(w.grad).all()
    np.testing.assert_allclose(w.grad.astype(np.float64), [[2 * expected] * 2], rtol=1e-2)
    np.testing.assert_allclose(b.grad.astype(np.float64), [expected], rtol=1e-2)


def test_float16_mean_scales_before_casting_back():
    ones = mdl.tensor(np.ones(100_000, dtype=np.float16), requires_grad=True)
    mean = ones.mean()
    assert mean.dtype == np.float16 and mean.item() == 1.0
    mean.backward()
    np.testing.assert_allclose(ones.grad.astype(np.float64), 1e-5, rtol=1e-2)


def test_float16_weights_and_masks_count_in_float64():
    losses = mdl.tensor(np.ones(70_000, dtype=np.float16))
    masked = mdl.batch_reduce(losses, mask=np.ones(70_000, dtype=bool))
    assert masked.item() == 1.0
    weights = np.full(5001, 0.3)
    cost = mdl.batch_reduce(mdl.tensor(np.ones(5001, dtype=np.float16), requires_grad=True),
                            sample_weight=weights)
    assert cost._ctx.count == pytest.approx(0.3 * 5001, rel=1e-12)


def test_unknown_strategy_options_are_rejected(rms_plugin):
    with pytest.raises(ValueError, match="has no option 'pwer'; its options: power"):
        mdl.NormalizationConfig(strategy="rms", options={"pwer": 0.25})


@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
def test_a_0d_parameter_gets_an_array_gradient_under_every_strategy(strategy):
    a = mdl.tensor(2.0, requires_grad=True, dtype="float64")
    with mdl.normalization(strategy):
        for _ in range(2):
            mdl.batch_reduce(a * mdl.tensor(np.arange(1.0, 6.0))).backward()
    expected = {"deferred": 3.0, "absorbed": 6.0, "sum": 30.0}[strategy]
    assert type(a.grad) is np.ndarray and a.grad.shape == ()
    assert a.grad == pytest.approx(expected)


def test_assigning_grad_its_own_value_changes_nothing():
    w = mdl.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    (w * 3.0).sum().backward()
    _deferred_pass(w, 4)
    w.grad = w.grad  # a no-op must stay a no-op, plain part included
    _deferred_pass(w, 4)
    np.testing.assert_allclose(w.grad, [4.0, 4.0])


def test_zeroing_a_plain_gradient_in_place_sticks():
    w = mdl.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    (w * 2.0).sum().backward()
    w.grad[:] = 0  # torch's zero_() idiom
    _deferred_pass(w, 4)
    np.testing.assert_allclose(w.grad, [1.0, 1.0])


def test_float16_deferred_survives_non_scalar_nodes_above_the_reduction():
    m = 70_000
    x = mdl.tensor(np.full((m, 2), 2.0, dtype=np.float16))
    y = mdl.tensor(np.zeros((m, 1), dtype=np.float16))
    for finish in (lambda c: c.reshape(1).sum().backward(),
                   lambda c: c.reshape(1).backward(np.ones(1))):
        w = mdl.tensor(np.ones((1, 2), dtype=np.float16), requires_grad=True)
        cost = F.binary_cross_entropy_with_logits(F.linear(x, w), y)
        finish(cost)
        np.testing.assert_allclose(w.grad.astype(np.float64), [[1.964, 1.964]], rtol=1e-2)


def test_a_refused_backward_writes_no_leaf():
    x = mdl.tensor(np.ones((4, 2)))
    w = mdl.tensor(np.ones((1, 2)), requires_grad=True)
    b = mdl.tensor(np.zeros(1), requires_grad=True)
    with mdl.normalization("sum"):
        mdl.batch_reduce(b * mdl.tensor(np.ones(3))).backward()
    with pytest.raises(mdl.GraphError, match="another strategy"):
        F.mse_loss(F.linear(x, w, b), mdl.tensor(np.zeros((4, 1)))).backward()
    assert w.grad is None and w.grad_count == 0  # nothing half-written
