"""The backward pass: deep graphs, freed graphs, seeds, accumulation, retain_grad, no_grad."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import minidl as mdl

# ===================================== deep graphs ======================================


def test_a_10000_op_chain_backpropagates_without_recursion() -> None:
    x = mdl.tensor(np.array([0.5, -2.0]), requires_grad=True)
    y = x
    for _ in range(5000):  # 10,000 ops: y <- y * 1.0001 + 0.5
        y = y * 1.0001 + 0.5
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the default: a recursive walk would need ~10,000 frames
    try:
        y.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_allclose(x.grad, [1.0001 ** 5000] * 2, rtol=1e-10)
    # the forward agrees with the closed form of the affine recurrence, too
    a = 1.0001
    closed = a ** 5000 * x.data + 0.5 * (a ** 5000 - 1) / (a - 1)
    np.testing.assert_allclose(y.data, closed, rtol=1e-9)
    del y  # freeing a long chain must not recurse either


def test_a_10000_op_chain_with_retain_graph_backpropagates_twice() -> None:
    x = mdl.tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0])


def test_a_deep_chain_with_reuse_at_every_step() -> None:
    """Each step uses the previous node twice: gradients must merge at every level."""
    x = mdl.tensor(np.array(0.3), requires_grad=True)
    y = x
    for _ in range(3000):
        y = (y + y) * 0.5  # value and derivative stay exactly 0.3 and 1
    y.backward()
    assert float(x.grad) == pytest.approx(1.0, rel=1e-12)


def test_a_wide_diamond_gets_every_branch() -> None:
    x = mdl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    branches = [x * float(k) for k in range(1, 101)]
    total = branches[0]
    for b in branches[1:]:
        total = total + b
    total.sum().backward()
    np.testing.assert_allclose(x.grad, [5050.0, 5050.0])


def test_a_node_reached_through_paths_of_different_lengths() -> None:
    """The order bug this guards against: x is reached directly and through a long path."""
    x = mdl.tensor(np.array([1.5, -0.5]), requires_grad=True)

    def long_path() -> mdl.Tensor:
        y = x
        for _ in range(10):
            y = y * 1.0
        return y

    (x - long_path() * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [-1.0, -1.0])
    x.grad = None
    (long_path() * 2.0 - x).sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 1.0])
    x.grad = None
    mdl.maximum(x, -x).sum().backward()  # |x|: both inputs of one op lead back to x
    np.testing.assert_allclose(x.grad, [1.0, -1.0])


# ==================================== freed graphs ======================================


def test_second_backward_through_a_freed_graph_raises() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(mdl.GraphError, match="retain_graph"):
        loss.backward()


def test_a_new_op_on_a_freed_intermediate_raises() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.sum().backward()
    with pytest.raises(mdl.GraphError, match="retain_graph"):
        (y * 2.0).sum().backward()


def test_retain_graph_allows_a_second_backward_and_accumulates() -> None:
    x = mdl.tensor([1.0, -3.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, [2.0, -6.0])
    loss.backward()
    np.testing.assert_allclose(x.grad, [4.0, -12.0])  # twice the value
    with pytest.raises(mdl.GraphError, match="retain_graph"):
        loss.backward()  # the second call did not retain it


# ============================== roots and seed gradients ================================


def test_backward_on_a_non_scalar_needs_a_gradient() -> None:
    x = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 3.0
    with pytest.raises(mdl.GraphError, match=r"scalar.*\(2, 3\)"):
        y.backward()


def test_backward_with_a_gradient_on_a_non_scalar() -> None:
    x = mdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * x
    seed = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 3.0]])
    y.backward(seed)
    np.testing.assert_allclose(x.grad, 2 * x.data * seed)
    x.grad = None
    (x * x).backward(mdl.tensor(seed))  # a Tensor seed works too
    np.testing.assert_allclose(x.grad, 2 * x.data * seed)


def test_backward_gradient_of_the_wrong_shape_is_a_shape_error() -> None:
    y = mdl.tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(mdl.ShapeError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_raises() -> None:
    with pytest.raises(mdl.GraphError, match="requires_grad"):
        (mdl.tensor([1.0, 2.0]) * 2.0).sum().backward()


def test_backward_on_a_one_element_non_scalar_needs_no_gradient() -> None:
    x = mdl.tensor([[2.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad, [[4.0]])


# ===================================== accumulation =====================================


def test_gradients_accumulate_until_cleared() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0 + 2.0, 3.0 + 4.0])
    x.grad = None
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_leaf_grad_owns_its_memory() -> None:
    """Two leaves fed by one Add get separate arrays: changing one leaves the other alone."""
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    b = mdl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0]))
    a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    assert a.grad.flags.writeable and b.grad.flags.writeable


def test_backward_returning_none_for_a_needed_input_means_zero() -> None:
    class LeftOnly(mdl.Function):
        def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return a + b

        def backward(self, grad: np.ndarray) -> tuple[np.ndarray, None]:
            return grad, None

    a = mdl.tensor([1.0], requires_grad=True)
    b = mdl.tensor([2.0], requires_grad=True)
    LeftOnly.apply(a, b * 2.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0])
    assert b.grad is None


def test_backward_returning_too_few_gradients_is_a_readable_error() -> None:
    class Forgetful(mdl.Function):
        def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return a * b

        def backward(self, grad: np.ndarray) -> np.ndarray:
            return grad

    a = mdl.tensor([1.0], requires_grad=True)
    with pytest.raises(mdl.GraphError, match=r"Forgetful.*1 gradient.*2 input"):
        Forgetful.apply(a, a * 1.0).sum().backward()


def test_backward_returning_a_transposed_gradient_is_a_shape_error() -> None:
    class Transposer(mdl.Function):
        def forward(self, a: np.ndarray) -> np.ndarray:
            return a * 2

        def backward(self, grad: np.ndarray) -> np.ndarray:
            return (grad * 2).T

    x = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(mdl.ShapeError, match=r"Transposer.*\(3, 2\).*\(2, 3\)"):
        Transposer.apply(x).sum().backward()


# ===================================== retain_grad ======================================


def test_retain_grad_keeps_a_non_leaf_gradient() -> None:
    x = mdl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    z = y.tanh()
    (z * z).sum().backward()
    t = np.tanh(3.0 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(y.grad, 2 * t * (1 - t ** 2), rtol=1e-6)
    assert z.grad is None  # not retained
    np.testing.assert_allclose(x.grad, 3.0 * y.grad, rtol=1e-6)


def test_retain_grad_on_a_reused_non_leaf_sums_both_uses() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.retain_grad()
    (y * y + y).sum().backward()
    np.testing.assert_allclose(y.grad, 2 * y.data + 1)


def test_retain_grad_without_grad_raises() -> None:
    with pytest.raises(mdl.GraphError):
        mdl.tensor([1.0]).retain_grad()


# ======================================= no_grad ========================================


def test_no_grad_builds_no_graph() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    with mdl.no_grad():
        assert not mdl.is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with mdl.enable_grad():
            z = x * 2.0
    assert mdl.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad and z._ctx is not None
    with pytest.raises(mdl.GraphError):
        y.backward()


def test_no_grad_as_a_decorator() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)

    @mdl.no_grad()
    def double(t: mdl.Tensor) -> mdl.Tensor:
        """Doubles."""
        assert not mdl.is_grad_enabled()
        return t * 2.0

    y = double(x)
    assert not y.requires_grad and y._ctx is None
    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    assert mdl.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_grad_is_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError):
        with mdl.no_grad():
            raise RuntimeError("boom")
    assert mdl.is_grad_enabled()


def test_no_grad_does_not_leak_to_other_threads() -> None:
    seen: list[bool] = []
    with mdl.no_grad():
        thread = threading.Thread(target=lambda: seen.append(mdl.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_detach_cuts_the_graph() -> None:
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (y.detach() * x).sum().backward()
    np.testing.assert_allclose(x.grad, y.data)


def test_gradients_and_results_of_full_reductions_are_arrays_not_scalars():
    x = mdl.tensor(3.0, requires_grad=True)
    y = (x * x).sum()
    assert type(y.data) is np.ndarray and y.data.shape == ()
    y.backward()
    assert type(x.grad) is np.ndarray
    x.grad[...] = 0.0  # users may change .grad in place
    assert x.grad == 0.0


def test_one_no_grad_instance_can_be_entered_twice():
    guard = mdl.no_grad()
    with guard:
        with guard:
            assert not mdl.is_grad_enabled()
        assert not mdl.is_grad_enabled()
    assert mdl.is_grad_enabled()


def test_truth_value_is_defined_for_one_element_only():
    assert bool(mdl.tensor([2.0])) and not bool(mdl.tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mdl.tensor([1.0, 2.0]))


def test_mse_loss_keeps_the_prediction_dtype_for_a_float64_target():
    prediction = mdl.tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True)
    loss = mdl.nn.functional.mse_loss(prediction, np.zeros((4, 2)))
    assert loss.dtype == np.float32


def test_no_grad_decorates_with_and_without_parentheses():
    @mdl.no_grad
    def bare(x):
        return x * 2

    @mdl.no_grad()
    def called(x):
        return x * 2

    x = mdl.tensor([1.0], requires_grad=True)
    assert not bare(x).requires_grad and not called(x).requires_grad
    assert bare.__name__ == "bare"
    assert (x * 2).requires_grad
