"""float16 reductions accumulate in float32, as torch's do (numpy's would not)."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the cost, not db
def test_a_float16_bias_gradient_over_65536_examples_keeps_its_precision():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((65_536, 3))
    w = rng.standard_normal((2, 3))
    b = np.zeros(2)
    # Reference by hand in float64: d(sum(x W^T + b)^2 / 2)/db = column sums of (x W^T).
    z = x @ w.T
    reference = z.sum(axis=0)
    bias = mdl.tensor(b.astype(np.float16), requires_grad=True)
    out = mdl.nn.functional.linear(mdl.tensor(x.astype(np.float16)),
                                   mdl.tensor(w.astype(np.float16)), bias)
    ((out * out).sum() * 0.5).backward()
    assert bias.grad.dtype == np.float16
    np.testing.assert_allclose(bias.grad.astype(np.float64), reference, rtol=2e-2,
                               atol=1e-3 * np.abs(z).sum(axis=0).max() * 1e-2)


def test_float16_sum_and_broadcast_gradients_accumulate_in_float32():
    values = np.full((40_000, 2), 0.1, dtype=np.float16)
    total = mdl.tensor(values).sum(axis=0)
    np.testing.assert_allclose(total.data.astype(np.float64), 40_000 * float(np.float16(0.1)),
                               rtol=1e-3)
    bias = mdl.tensor(np.zeros(2, dtype=np.float16), requires_grad=True)
    (mdl.tensor(values) + bias).sum().backward()  # unbroadcast sums 40,000 ones per column
    np.testing.assert_allclose(bias.grad.astype(np.float64), [40_000, 40_000], rtol=1e-3)
