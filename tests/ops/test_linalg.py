"""Matrix products: @ (vectors, matrices, broadcast batches) and functional linear."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import OP_SETTINGS, broadcastable_pair, float_dtypes, make, seeds
from hypothesis import given
from hypothesis import strategies as st

import minidl as mdl
import minidl.nn.functional as F

sides = st.integers(1, 4)


@OP_SETTINGS
@given(n=sides, k=sides, m=sides, batches=broadcastable_pair(max_dims=2),
       a_vector=st.booleans(), b_vector=st.booleans(), dtype=float_dtypes, seed=seeds)
def test_matmul(n: int, k: int, m: int, batches: tuple[tuple[int, ...], ...], a_vector: bool,
                b_vector: bool, dtype: Any, seed: int) -> None:
    """Every combination numpy allows: 1-D on either side, batch axes broadcast both ways."""
    batch_a, batch_b = batches
    shape_a = (k,) if a_vector else batch_a + (n, k)
    shape_b = (k,) if b_vector else batch_b + (k, m)
    rng = np.random.default_rng(seed)
    a, b = make("normal", shape_a, dtype, rng), make("normal", shape_b, dtype, rng)
    check_op(lambda x, y: x @ y, np.matmul, [a, b], seed=seed)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3,), (3,)),             # dot product: a 0-d result
    ((3,), (3, 2)),           # vector @ matrix
    ((2, 3), (3,)),           # matrix @ vector
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),         # size-1 rows and columns
    ((5, 2, 3), (3, 4)),      # batch on the left only
    ((2, 3), (5, 3, 4)),      # batch on the right only
    ((2, 1, 2, 3), (5, 3, 4)),  # batch axes broadcast against each other
    ((3,), (2, 3, 4)),        # vector @ batch
    ((2, 4, 3), (3,)),        # batch @ vector
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_named_shapes(shape_a: tuple[int, ...], shape_b: tuple[int, ...],
                             dtype: Any) -> None:
    rng = np.random.default_rng(1)
    a, b = make("normal", shape_a, dtype, rng), make("normal", shape_b, dtype, rng)
    check_op(mdl.matmul, np.matmul, [a, b])
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, b])


@OP_SETTINGS
@given(n=sides, dtype=float_dtypes, seed=seeds)
def test_matmul_with_itself(n: int, dtype: Any, seed: int) -> None:
    """A tensor on both sides of @, directly and through another op."""
    x = make("normal", (n, n), dtype, np.random.default_rng(seed))
    check_op(lambda t: t @ t, lambda t: t @ t, [x], seed=seed)
    check_op(lambda t: t.tanh() @ t, lambda t: np.tanh(t) @ t, [x], seed=seed)
    check_op(lambda t: t @ t.T, lambda t: t @ t.T, [x], seed=seed)


def test_matmul_rejects_0d_and_mismatched_shapes() -> None:
    with pytest.raises(mdl.ShapeError, match="MatMul"):
        mdl.tensor(2.0) @ mdl.tensor([1.0])
    with pytest.raises(mdl.ShapeError, match=r"MatMul.*\(2, 3\).*\(4, 2\)"):
        mdl.tensor(np.ones((2, 3))) @ mdl.tensor(np.ones((4, 2)))


# ======================================= linear =========================================

def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    out = np.einsum("...i,oi->...o", x, w)
    return out if b is None else out + b


@OP_SETTINGS
@given(batch=st.lists(sides, min_size=0, max_size=2).map(tuple), n_in=sides, n_out=sides,
       bias=st.booleans(), dtype=float_dtypes, seed=seeds)
def test_linear(batch: tuple[int, ...], n_in: int, n_out: int, bias: bool, dtype: Any,
                seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = make("normal", batch + (n_in,), dtype, rng)
    w = make("normal", (n_out, n_in), dtype, rng)
    if bias:
        b = make("normal", (n_out,), dtype, rng)
        check_op(F.linear, _linear, [x, w, b], seed=seed)
    else:
        check_op(F.linear, _linear, [x, w], seed=seed)


def test_linear_input_used_as_weight() -> None:
    """The same tensor as input and weight (square), so both gradients meet in one leaf."""
    x = make("normal", (3, 3), np.float64, np.random.default_rng(2))
    b = make("normal", (3,), np.float64, np.random.default_rng(3))
    check_op(lambda t, c: F.linear(t, t, c), lambda t, c: _linear(t, t, c), [x, b])


def test_linear_rejects_wrong_feature_count() -> None:
    with pytest.raises(mdl.ShapeError, match="linear"):
        F.linear(mdl.tensor(np.ones((2, 3))), mdl.tensor(np.ones((4, 5))), mdl.tensor(np.ones(4)))
