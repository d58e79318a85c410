"""Errors that say what went wrong: detect_anomaly, ShapeError, and mdl.gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
import minidl.nn.functional as F

# =================================== detect_anomaly =====================================
# numpy warns about the inf and nan these tests make on purpose; the tests want the error.
anomaly_warnings = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@anomaly_warnings
def test_anomaly_in_a_forward_names_the_op() -> None:
    x = mdl.tensor([1.0, 0.0], requires_grad=True)
    with mdl.detect_anomaly():
        with pytest.raises(mdl.AnomalyError, match=r"Log forward produced -inf"):
            mdl.log(x)


@anomaly_warnings
def test_anomaly_nan_in_a_forward() -> None:
    x = mdl.tensor([-1.0], requires_grad=True)
    with mdl.detect_anomaly(), pytest.raises(mdl.AnomalyError, match=r"Sqrt forward.*nan"):
        x.sqrt()


@anomaly_warnings
def test_anomaly_in_a_backward_at_sqrt_of_zero() -> None:
    """sqrt(0) = 0 is finite; its derivative 1 / (2 sqrt(0)) is not."""
    x = mdl.tensor([4.0, 0.0], requires_grad=True)
    with mdl.detect_anomaly():
        y = x.sqrt().sum()
        with pytest.raises(mdl.AnomalyError, match=r"Sqrt backward.*input 0.*inf"):
            y.backward()


@anomaly_warnings
def test_anomaly_in_a_float32_backward_that_overflows() -> None:
    """1 / x at x = 1e-30 is 1e30 (fine in float32); its derivative -1/x^2 = -1e60 is not."""
    x = mdl.tensor(np.array([1e-30, 1.0], dtype=np.float32), requires_grad=True)
    with mdl.detect_anomaly():
        y = 1.0 / x
        assert np.isfinite(y.data).all()
        with pytest.raises(mdl.AnomalyError, match=r"Div backward \(gradient of input 1\)"):
            y.sum().backward()


@anomaly_warnings
def test_anomaly_in_a_float32_product_backward() -> None:
    """A finite forward whose backward product overflows: d(x * y)/dx = y times a big seed."""
    x = mdl.tensor(np.array([1e-20], dtype=np.float32), requires_grad=True)
    with mdl.detect_anomaly():
        y = x * 1e30
        assert np.isfinite(y.data).all()
        with pytest.raises(mdl.AnomalyError, match=r"Mul backward.*inf"):
            y.backward(np.array([1e20], dtype=np.float32))


def test_no_anomaly_error_outside_the_context() -> None:
    x = mdl.tensor([4.0, 0.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert mdl.log(x).data[1] == -np.inf
        x.sqrt().sum().backward()
    assert np.isinf(x.grad[1])
    with mdl.detect_anomaly():
        pass
    with np.errstate(divide="ignore"):
        mdl.log(x)  # the context ended: no error


@anomaly_warnings
def test_detect_anomaly_as_a_decorator() -> None:
    @mdl.detect_anomaly()
    def bad() -> mdl.Tensor:
        return mdl.log(mdl.tensor([0.0]))

    with pytest.raises(mdl.AnomalyError, match="Log"):
        bad()


# ====================================== ShapeError ======================================


@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, "Add"),
    (lambda a, b: a * b, "Mul"),
    (lambda a, b: a / b, "Div"),
    (lambda a, b: a ** b, "Pow"),
    (lambda a, b: mdl.maximum(a, b), "Maximum"),
    (lambda a, b: a @ b, "MatMul"),
])
def test_shape_mismatch_names_the_op_and_both_shapes(op, name: str) -> None:  # noqa: ANN001
    a = mdl.tensor(np.ones((3, 4)), requires_grad=True)
    b = mdl.tensor(np.ones(5))
    with pytest.raises(mdl.ShapeError) as info:
        op(a, b)
    message = str(info.value)
    assert name in message and "(3, 4)" in message and "(5,)" in message
    assert isinstance(info.value, ValueError)  # catchable as numpy users expect


def test_shape_error_for_subtraction_names_both_shapes() -> None:
    with pytest.raises(mdl.ShapeError, match=r"\(3, 4\).*\(5,\)"):
        mdl.tensor(np.ones((3, 4))) - mdl.tensor(np.ones(5))


def test_loss_shape_mismatch_names_the_loss() -> None:
    with pytest.raises(mdl.ShapeError, match=r"mse_loss.*\(3, 1\).*\(3,\)"):
        F.mse_loss(mdl.tensor(np.ones((3, 1))), mdl.tensor(np.ones(3)))


# ====================================== gradcheck =======================================


def test_gradcheck_passes_on_correct_ops() -> None:
    rng = np.random.default_rng(0)
    a = mdl.tensor(rng.standard_normal((3, 4)))
    b = mdl.tensor(rng.standard_normal((4, 2)))
    assert mdl.gradcheck(lambda x, y: (x @ y).tanh(), [a, b]) is True
    assert mdl.gradcheck(lambda x: F.log_softmax(x * x, axis=0), [a]) is True
    labels = mdl.tensor(np.array([0, 3, 1]))
    assert mdl.gradcheck(lambda x, y: F.cross_entropy(x, y, reduction="none"), [a, labels])


class Cube(mdl.Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x ** 3

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * 3 * self.x ** 2


class WrongAtOneElement(mdl.Function):
    """a * b, with a backward for b that is off at element (1, 2) only."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad_b = grad * self.a
        grad_b[1, 2] += 0.5
        return grad * self.b, grad_b


def test_gradcheck_passes_on_a_correct_custom_function() -> None:
    assert mdl.gradcheck(lambda x: Cube.apply(x), [mdl.tensor([0.5, -1.2, 2.0])])


def test_gradcheck_raises_naming_op_input_and_worst_element() -> None:
    rng = np.random.default_rng(1)
    a = mdl.tensor(rng.standard_normal((2, 3)))
    b = mdl.tensor(rng.standard_normal((2, 3)))
    with pytest.raises(AssertionError) as info:
        mdl.gradcheck(lambda x, y: WrongAtOneElement.apply(x, y), [a, b])
    message = str(info.value)
    assert "WrongAtOneElement" in message
    assert "input 1" in message
    assert "(1, 2)" in message
    assert isinstance(info.value, mdl.MinidlError)


def test_gradcheck_leaves_the_callers_tensors_alone() -> None:
    a = mdl.tensor(np.array([0.5, 1.5], dtype=np.float32))
    before = a.data.copy()
    mdl.gradcheck(lambda x: x.exp(), [a])
    np.testing.assert_array_equal(a.data, before)
    assert a.dtype == np.float32 and a.grad is None


def test_detect_anomaly_names_minus_inf_as_such():
    with pytest.raises(mdl.AnomalyError, match="produced -inf"):
        with mdl.detect_anomaly():
            mdl.log(mdl.tensor([0.0, 2.0]))


def test_a_custom_op_valueerror_is_not_relabelled_as_a_shape_error():
    class Clip(mdl.Function):
        def forward(self, x):
            raise ValueError("lo must be >= 0")

    with pytest.raises(ValueError, match="Clip: lo must be >= 0") as info:
        Clip.apply(mdl.tensor([1.0]))
    assert not isinstance(info.value, mdl.ShapeError)


class _FailingBackward(mdl.Function):
    saved_inputs, saves_output = (), False

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        raise RuntimeError("this backward fails")


@pytest.mark.parametrize("failing_first", [False, True])
def test_a_failed_backward_writes_no_leaf(failing_first):
    """Leaves are written once the whole pass is through, so a pass that raises half way
    leaves every ``.grad`` as it was (here: None), whichever branch the walk takes first."""
    a, b = mdl.nn.Parameter(np.ones(3)), mdl.nn.Parameter(np.ones(3))
    plain, failing = (a * 2.0).sum(), _FailingBackward.apply(b * 3.0).sum()
    loss = failing + plain if failing_first else plain + failing
    with pytest.raises(RuntimeError, match="this backward fails"):
        loss.backward()
    assert a.grad is None and b.grad is None
