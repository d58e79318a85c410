"""The contract table in docs/design.md: where each built-in strategy puts the 1/m."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.nets import MLP, batch, sigmoid

import minidl as mdl

SIZES = [[3, 5, 1], [4, 6, 3, 1], [2, 4, 1]]


def _run(strategy: str, sizes: list[int], m: int, seed: int):
    net = MLP.random(sizes, seed)
    x, y = batch(m, sizes[0], seed + 1)
    with mdl.normalization(strategy):
        cost, zs, activations = net.loss(x, y)
        cost.backward()
    return net, cost, zs, activations


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("m", [1, 7, 64, 400])
def test_deferred_and_absorbed_agree_on_leaves_and_differ_by_m_inside(sizes, m):
    deferred = _run("deferred", sizes, m, seed=m)
    absorbed = _run("absorbed", sizes, m, seed=m)
    for p_def, p_abs in zip(deferred[0].parameters(), absorbed[0].parameters()):
        np.testing.assert_allclose(p_def.grad, p_abs.grad, rtol=1e-12, atol=1e-15)
    # Reported cost: both the mean.
    assert deferred[1].item() == pytest.approx(absorbed[1].item(), rel=1e-14)
    # Intermediate gradients: dZ and dA under deferred are exactly m times absorbed's.
    for z_def, z_abs in zip(deferred[2], absorbed[2]):
        np.testing.assert_allclose(z_def.grad, m * z_abs.grad, rtol=1e-12, atol=1e-15)
    for a_def, a_abs in zip(deferred[3][1:], absorbed[3][1:]):
        np.testing.assert_allclose(a_def.grad, m * a_abs.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("m", [1, 9, 128])
def test_sum_is_m_times_absorbed(sizes, m):
    summed = _run("sum", sizes, m, seed=2 * m)
    absorbed = _run("absorbed", sizes, m, seed=2 * m)
    for p_sum, p_abs in zip(summed[0].parameters(), absorbed[0].parameters()):
        np.testing.assert_allclose(p_sum.grad, m * p_abs.grad, rtol=1e-12, atol=1e-15)
    assert summed[1].item() == pytest.approx(m * absorbed[1].item(), rel=1e-13)
    # dZ under sum carries no 1/m, like deferred.
    np.testing.assert_allclose(summed[2][-1].grad, m * absorbed[2][-1].grad, rtol=1e-12)


def test_aliases_select_the_same_strategies():
    for alias, name in [("deferred-1/m", "deferred"), ("absorbed-1/m", "absorbed"),
                        ("sum-reduction", "sum")]:
        with mdl.normalization(alias) as strategy:
            assert strategy.name == name
            assert mdl.active_strategy().name == name


def test_deferred_is_active_when_nothing_selects_a_strategy():
    assert mdl.active_strategy().name == "deferred"
    assert mdl.NormalizationConfig().strategy == "deferred"


def test_leaf_grad_count_records_the_examples():
    net, *_ = _run("deferred", [2, 3, 1], 25, seed=0)
    assert all(p.grad_count == 25 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None and p.grad_count == 0 for p in net.parameters())


class TestSeedNetwork:
    """The seed question's network: 2 -> 4 tanh -> 1 sigmoid, cross-entropy, 400 examples.

    Every expected value is computed by hand below, in the course's column layout
    (W2 has shape (1, 4), examples are columns), transposed to minidl's rows at the end.
    """

    @pytest.fixture(scope="class")
    @classmethod
    def course(cls):
        features, labels = mdl.data.planar()
        X = features.T  # (2, m): the course stores examples as columns
        Y = labels.reshape(1, -1).astype(np.float64)
        rng = np.random.default_rng(2)
        W1, b1 = rng.standard_normal((4, 2)) * 0.5, np.zeros((4, 1))
        W2, b2 = rng.standard_normal((1, 4)) * 0.5, np.zeros((1, 1))
        m = X.shape[1]
        A1 = np.tanh(W1 @ X + b1)
        A2 = sigmoid(W2 @ A1 + b2)
        cost = -np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))
        dZ2 = A2 - Y
        dW2 = (1 / m) * dZ2 @ A1.T
        db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
        dZ1 = (W2.T @ dZ2) * (1 - A1 ** 2)
        dW1 = (1 / m) * dZ1 @ X.T
        db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
        return dict(X=X, Y=Y, W1=W1, b1=b1, W2=W2, b2=b2, m=m, cost=cost, dZ2=dZ2, dW2=dW2,
                    db2=db2, dZ1=dZ1, dW1=dW1, db1=db1)

    def _minidl(self, course, strategy):
        W1 = mdl.tensor(course["W1"], requires_grad=True)
        b1 = mdl.tensor(course["b1"][:, 0], requires_grad=True)
        W2 = mdl.tensor(course["W2"], requires_grad=True)
        b2 = mdl.tensor(course["b2"][:, 0], requires_grad=True)
        x, y = mdl.tensor(course["X"].T), mdl.tensor(course["Y"].T)
        with mdl.normalization(strategy):
            Z1 = x @ W1.T + b1
            Z1.retain_grad()
            Z2 = Z1.tanh() @ W2.T + b2
            Z2.retain_grad()
            cost = mdl.nn.BCEWithLogitsLoss()(Z2, y)
            cost.backward()
        return cost, Z1, Z2, W1, b1, W2, b2

    def test_deferred_reproduces_the_course_formulas(self, course):
        cost, Z1, Z2, W1, b1, W2, b2 = self._minidl(course, "deferred")
        assert cost.item() == pytest.approx(course["cost"], rel=1e-12)
        np.testing.assert_allclose(Z2.grad, course["dZ2"].T, rtol=1e-12)  # dZ2 = A2 - Y
        np.testing.assert_allclose(W2.grad, course["dW2"], rtol=1e-12)
        np.testing.assert_allclose(b2.grad, course["db2"][:, 0], rtol=1e-12)
        np.testing.assert_allclose(Z1.grad, course["dZ1"].T, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(W1.grad, course["dW1"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b1.grad, course["db1"][:, 0], rtol=1e-12, atol=1e-15)

    def test_absorbed_puts_the_1_over_m_in_dz(self, course):
        cost, Z1, Z2, W1, b1, W2, b2 = self._minidl(course, "absorbed")
        m = course["m"]
        np.testing.assert_allclose(Z2.grad, course["dZ2"].T / m, rtol=1e-12)
        np.testing.assert_allclose(W2.grad, course["dW2"], rtol=1e-12)
        np.testing.assert_allclose(b2.grad, course["db2"][:, 0], rtol=1e-12)
        np.testing.assert_allclose(W1.grad, course["dW1"], rtol=1e-12, atol=1e-15)
