"""gradcheck: non-finite derivatives fail, and non-contiguous inputs are really nudged."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.gradcheck import GradcheckError


class LogWithWrongGrad(mdl.Function):
    """log(x) whose backward is wrong by a factor 5 (a bug on purpose)."""

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad):
        return grad * 5.0 / self.x


class InfiniteGrad(mdl.Function):
    def forward(self, x):
        return x * 2.0

    def backward(self, grad):
        return grad * np.inf


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_a_nan_numeric_derivative_is_a_failure_not_agreement():
    with pytest.raises(GradcheckError, match=r"the numeric derivative is not finite at element "
                                             r"\(0,\).*numeric nan.*eps=1e-06"):
        mdl.gradcheck(lambda x: x.log(), [mdl.tensor(np.array([1e-7]))])
    with pytest.raises(GradcheckError, match="numeric derivative is not finite"):
        mdl.gradcheck(lambda x: LogWithWrongGrad.apply(x), [mdl.tensor(np.array([1e-7]))])


def test_a_non_finite_analytic_derivative_says_so():
    with pytest.raises(GradcheckError, match=r"InfiniteGrad: input 0 \(shape \(2,\)\): the "
                                             r"analytic derivative is not finite.*inf"):
        mdl.gradcheck(lambda x: InfiniteGrad.apply(x), [mdl.tensor(np.array([1.0, 2.0]))])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_transposed_input_is_checked_correctly(dtype):
    a = np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)).astype(dtype)
    assert not a.T.flags.c_contiguous
    assert mdl.gradcheck(lambda x: x * x, [mdl.tensor(a.T)])
    assert mdl.gradcheck(lambda x, w: x @ w, [mdl.tensor(a.T), mdl.tensor(a[:, ::2])])
    with pytest.raises(GradcheckError, match="worst element"):  # and a wrong op still fails
        mdl.gradcheck(lambda x: LogWithWrongGrad.apply(x), [mdl.tensor(a.T)])
