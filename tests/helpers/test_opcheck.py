"""The op checker checks: it fails on a wrong forward, backward, dtype or in-place write."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from helpers.opcheck import check_op

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)


class ScaledBackward(mdl.Function):
    """3x, whose backward is off by a factor ``self.factor`` (1.0 is correct)."""

    factor = 1.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x * 3

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * 3 * self.factor


class SlightlyWrong(ScaledBackward):
    factor = 1.001


class InPlace(mdl.Function):
    def forward(self, x: np.ndarray) -> np.ndarray:
        x += 1  # modifies its input: forbidden
        return x * 1

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad


def test_passes_a_correct_op_and_reports_what_it_computed() -> None:
    result = check_op(lambda x: ScaledBackward.apply(x), lambda a: a * 3, [X])
    assert result.op == "ScaledBackward"
    np.testing.assert_allclose(result.grads[0], result.numeric[0], rtol=1e-6)
    assert result.out.dtype == np.float32


def test_catches_a_backward_off_by_a_tenth_of_a_percent() -> None:
    with pytest.raises(AssertionError, match=r"SlightlyWrong: backward of input 0"):
        check_op(lambda x: SlightlyWrong.apply(x), lambda a: a * 3, [X])


def test_catches_a_wrong_forward() -> None:
    with pytest.raises(AssertionError, match="forward differs"):
        check_op(lambda x: x * 3.0, lambda a: a * 3.001, [X])


def test_catches_an_upcast() -> None:
    with pytest.raises(AssertionError, match="float64 for float32 inputs"):
        check_op(lambda x: x.astype("float64"), lambda a: a, [X])


def test_catches_a_wrong_shape() -> None:
    with pytest.raises(AssertionError, match="shape"):
        check_op(lambda x: x.sum(axis=0), lambda a: a.sum(axis=0, keepdims=True), [X])


def test_catches_an_in_place_write() -> None:
    with pytest.raises(AssertionError, match="in place"):
        check_op(lambda x: InPlace.apply(x), lambda a: a + 1, [X], wrt=[])


def test_passes_integer_inputs_through_undifferentiated() -> None:
    labels = np.array([2, 0])
    result = check_op(lambda x, i: x[mdl.tensor(np.arange(2)), i],
                      lambda a, i: a[np.arange(2), i], [X, labels])
    assert result.grads[1] is None
    np.testing.assert_array_equal(result.grads[0] != 0, [[0, 0, 1], [1, 0, 0]])


def test_refuses_to_differentiate_an_integer_input() -> None:
    with pytest.raises(TypeError, match="only floating"):
        check_op(lambda i: i * 1.0, lambda i: i * 1.0, [np.array([1, 2])], wrt=[0])
