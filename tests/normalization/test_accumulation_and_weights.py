"""What N is: accumulated micro-batches, sample weights, masks, penalties."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.nets import MLP, batch

import minidl as mdl

SIZES = [3, 5, 1]
MICRO_BATCHES = [(0, 32), (32, 64), (64, 71)]


def _grads(net: MLP) -> list[np.ndarray]:
    return [p.grad.copy() for p in net.parameters()]


def _accumulated(strategy: str) -> tuple[list[np.ndarray], list[np.ndarray], list[list]]:
    """Gradients after three micro-batch backwards, after one full batch, and per micro-batch."""
    x, y = batch(71, SIZES[0], seed=5)
    net = MLP.random(SIZES, seed=4)
    with mdl.normalization(strategy):
        each = []
        for start, stop in MICRO_BATCHES:
            single = MLP.random(SIZES, seed=4)
            single.loss(x[start:stop], y[start:stop])[0].backward()
            each.append(_grads(single))
            net.loss(x[start:stop], y[start:stop])[0].backward()  # no clearing in between
        accumulated = _grads(net)
        full = MLP.random(SIZES, seed=4)
        full.loss(x, y)[0].backward()
    return accumulated, _grads(full), each


def test_deferred_accumulation_equals_one_full_batch():
    accumulated, full, _ = _accumulated("deferred")
    for got, want in zip(accumulated, full):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_absorbed_accumulation_sums_micro_batch_means_and_differs_from_full_batch():
    accumulated, full, each = _accumulated("absorbed")
    for i, got in enumerate(accumulated):
        np.testing.assert_allclose(got, sum(grads[i] for grads in each), rtol=1e-12)
    # The documented difference: not the mean over 71 examples, nor even 3 x it.
    assert not any(np.allclose(got, want, rtol=1e-3) for got, want in zip(accumulated, full))
    # The common PyTorch recipe divides by the number of micro-batches; with an uneven
    # last micro-batch that is still not the full-batch mean.
    assert not all(np.allclose(got / 3, want, rtol=1e-6) for got, want in zip(accumulated, full))


def test_sum_accumulation_equals_the_full_batch_sum():
    accumulated, full, _ = _accumulated("sum")
    for got, want in zip(accumulated, full):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_grad_count_totals_the_micro_batches():
    x, y = batch(71, SIZES[0], seed=5)
    net = MLP.random(SIZES, seed=4)
    for start, stop in MICRO_BATCHES:
        net.loss(x[start:stop], y[start:stop])[0].backward()
    assert {p.grad_count for p in net.parameters()} == {71.0}


@pytest.mark.parametrize("strategy", ["deferred", "absorbed"])
def test_weighted_mean_divides_by_the_sum_of_weights(strategy):
    x, y = batch(20, SIZES[0], seed=8)
    weights = np.random.default_rng(9).uniform(0.1, 3.0, size=20)
    net = MLP.random(SIZES, seed=3)
    with mdl.normalization(strategy):
        cost, zs, _ = net.loss(x, y, sample_weight=weights)
        cost.backward()
    per_example = MLP.random(SIZES, seed=3).loss(x, y, reduction="none")[0].data
    assert cost.item() == pytest.approx((weights * per_example).sum() / weights.sum(), rel=1e-12)
    # Reference: each example's plain-calculus gradient, weighted, over the weight total.
    reference = [np.zeros_like(p.data) for p in net.parameters()]
    for i in range(20):
        single = MLP.random(SIZES, seed=3)
        with mdl.normalization("sum"):
            single.loss(x[i:i + 1], y[i:i + 1])[0].backward()
        for ref, p in zip(reference, single.parameters()):
            ref += weights[i] * p.grad / weights.sum()
    for got, want in zip(_grads(net), reference):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    assert net.weights[0].grad_count == pytest.approx(weights.sum())
    # dJ/dZ at the output: w_i (sigmoid - y) under deferred, over sum(w) under absorbed.
    scale = 1.0 if strategy == "deferred" else 1.0 / weights.sum()
    from helpers.nets import sigmoid
    np.testing.assert_allclose(zs[-1].grad, scale * weights[:, None] * (sigmoid(zs[-1].data) - y),
                               rtol=1e-12)


@pytest.mark.parametrize("strategy", ["deferred", "absorbed", "sum"])
def test_mask_equals_dropping_the_masked_examples(strategy):
    x, y = batch(30, SIZES[0], seed=11)
    keep = np.random.default_rng(12).random(30) < 0.6
    masked, dropped = MLP.random(SIZES, seed=6), MLP.random(SIZES, seed=6)
    with mdl.normalization(strategy):
        cost_masked = masked.loss(x, y, mask=keep)[0]
        cost_masked.backward()
        cost_dropped = dropped.loss(x[keep], y[keep])[0]
        cost_dropped.backward()
    assert cost_masked.item() == pytest.approx(cost_dropped.item(), rel=1e-12)
    for got, want in zip(_grads(masked), _grads(dropped)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert masked.weights[0].grad_count == keep.sum()


def test_bad_weights_and_masks_are_clear_errors():
    losses = mdl.tensor([1.0, 2.0, 3.0])
    with pytest.raises(mdl.ShapeError, match="one value per example"):
        mdl.batch_reduce(losses, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        mdl.batch_reduce(losses, sample_weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="zero total weight"):
        mdl.batch_reduce(losses, mask=[False, False, False])
    with pytest.raises(TypeError, match="boolean"):
        mdl.batch_reduce(losses, mask=[1, 0, 1])


@pytest.mark.parametrize("strategy", ["deferred", "absorbed"])
def test_l2_penalty_is_scaled_like_the_data_term(strategy):
    """Ng's lambda/(2m) ||W||^2 gives dW += (lambda/m) W under deferred and absorbed."""
    m, lam = 40, 0.7
    x, y = batch(m, SIZES[0], seed=13)
    plain, penalized = MLP.random(SIZES, seed=14), MLP.random(SIZES, seed=14)
    with mdl.normalization(strategy):
        plain.loss(x, y)[0].backward()
        cost = penalized.loss(x, y)[0]
        penalty = sum((w * w).sum() for w in penalized.weights) * (lam / (2 * m))
        (cost + penalty).backward()
    for w_plain, w_pen in zip(plain.weights, penalized.weights):
        np.testing.assert_allclose(w_pen.grad, w_plain.grad + (lam / m) * w_pen.data,
                                   rtol=1e-12, atol=1e-15)


def test_sum_strategy_takes_the_penalty_as_written():
    m, lam = 40, 0.7
    x, y = batch(m, SIZES[0], seed=13)
    plain, penalized = MLP.random(SIZES, seed=14), MLP.random(SIZES, seed=14)
    with mdl.normalization("sum"):
        plain.loss(x, y)[0].backward()
        cost = penalized.loss(x, y)[0]
        (cost + sum((w * w).sum() for w in penalized.weights) * (lam / 2)).backward()
    for w_plain, w_pen in zip(plain.weights, penalized.weights):
        np.testing.assert_allclose(w_pen.grad, w_plain.grad + lam * w_pen.data, rtol=1e-12)


def test_a_bare_sum_is_plain_calculus_under_every_strategy():
    for strategy in ["deferred", "absorbed", "sum"]:
        w = mdl.tensor([1.0, -3.0], requires_grad=True, dtype="float64")
        with mdl.normalization(strategy):
            (w * w).sum().backward()
        np.testing.assert_array_equal(w.grad, [2.0, -6.0])
        assert w.grad_count == 0


def test_two_batch_sizes_in_one_deferred_pass_is_an_error_naming_the_counts():
    a = mdl.tensor(np.ones(3), requires_grad=True)
    b = mdl.tensor(np.ones(5), requires_grad=True)
    with pytest.raises(mdl.GraphError, match=r"\(3 and 5\)"):
        (mdl.batch_reduce(a) + mdl.batch_reduce(b)).backward()
    with mdl.normalization("absorbed"):  # plain calculus of two means: fine
        (mdl.batch_reduce(a) + mdl.batch_reduce(b)).backward()
    np.testing.assert_allclose(a.grad, np.full(3, 1 / 3))


def test_one_pass_may_not_mix_strategies():
    a = mdl.tensor(np.ones(3), requires_grad=True)
    cost = mdl.batch_reduce(a, strategy="sum") + mdl.batch_reduce(a, strategy="absorbed")
    with pytest.raises(mdl.GraphError, match="mixes normalization strategies"):
        cost.backward()


def test_float16_deferred_seed_does_not_overflow_for_huge_batches():
    m = 70_000  # beyond float16's largest finite value, 65504
    z = mdl.tensor(np.zeros((m, 1), dtype=np.float16), requires_grad=True)
    z.retain_grad()
    y = mdl.tensor(np.ones((m, 1), dtype=np.float16))
    with mdl.normalization("deferred"):
        mdl.nn.functional.binary_cross_entropy_with_logits(z, y).backward()
    assert np.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad.astype(np.float64), -0.5 / m, rtol=1e-2)
