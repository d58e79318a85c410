"""Batch norm, layer norm, embedding, leaky relu and GELU ops against numpy references
written here and central finite differences (through ``check_op``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op

import minidl as mdl
import minidl.nn.functional as F

EPS = 1e-5


def channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_ref(x: np.ndarray, w: np.ndarray | None = None, b: np.ndarray | None = None,
                   mean: np.ndarray | None = None, var: np.ndarray | None = None) -> np.ndarray:
    """Normalize per channel (axis 1) by the batch's (or the given) mean and biased var."""
    axes = (0,) + tuple(range(2, x.ndim))
    if mean is None:
        mean = x.mean(axis=axes)
        var = ((x - x.mean(axis=axes, keepdims=True)) ** 2).mean(axis=axes)
    out = (x - channel(mean, x.ndim)) / np.sqrt(channel(var, x.ndim) + EPS)
    if w is not None:
        out = out * channel(w, x.ndim) + channel(b, x.ndim)
    return out


# ==================================== batch norm =======================================

@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (3, 2, 3, 4), (2, 1, 2, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_training(shape: tuple[int, ...], dtype: Any) -> None:
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    w = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    check_op(lambda x, w, b: F.batch_norm(x, weight=w, bias=b, training=True, eps=EPS),
             batch_norm_ref, [x, w, b], forward_tol=(1e-4, 1e-5) if dtype == np.float32
             else None)


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
def test_batch_norm_training_without_affine(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).standard_normal(shape)
    result = check_op(lambda x: F.batch_norm(x, eps=EPS), batch_norm_ref, [x])
    assert result.op == "BatchNorm"


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2, 2)])
def test_batch_norm_eval_uses_the_given_statistics(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(shape), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    check_op(lambda x, w, b: F.batch_norm(x, mean.copy(), var.copy(), w, b, training=False,
                                          eps=EPS),
             lambda x, w, b: batch_norm_ref(x, w, b, mean, var), [x, w, b])


def test_batch_norm_float16_keeps_its_dtype() -> None:
    x = np.random.default_rng(3).standard_normal((8, 3)).astype(np.float16)
    check_op(lambda x: F.batch_norm(x, eps=EPS), batch_norm_ref, [x])


def test_batch_norm_broadcast_input_gradient_sums_to_zero_per_channel() -> None:
    # The batch mean makes the output invariant to shifting a channel, so a gradient that is
    # constant per channel must vanish at the input: a check of the mean term's sign.
    x = mdl.tensor(np.random.default_rng(4).standard_normal((6, 2)), requires_grad=True)
    F.batch_norm(x).sum().backward()
    np.testing.assert_allclose(x.grad, 0.0, atol=1e-12)


def test_batch_norm_refuses_a_single_value_per_channel_in_training() -> None:
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(mdl.tensor([[1.0, 2.0]]))
    with pytest.raises(mdl.ShapeError, match="running_mean"):
        F.batch_norm(mdl.tensor(np.ones((2, 3))), np.zeros(2), np.ones(3))
    with pytest.raises(mdl.ShapeError, match=r"\(N, C\)"):
        F.batch_norm(mdl.tensor([1.0, 2.0]))


# ==================================== layer norm =======================================

def layer_norm_ref(dims: int) -> Any:
    def ref(x: np.ndarray, w: np.ndarray | None = None, b: np.ndarray | None = None) -> Any:
        axes = tuple(range(x.ndim - dims, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        out = (x - mean) / np.sqrt(var + EPS)
        return out if w is None else out * w + b
    return ref


@pytest.mark.parametrize("shape,normalized", [((4, 5), (5,)), ((2, 3, 4), (4,)),
                                              ((2, 3, 4), (3, 4)), ((6,), (6,))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm(shape: tuple[int, ...], normalized: tuple[int, ...], dtype: Any) -> None:
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3 - 1).astype(dtype)
    w = rng.uniform(0.5, 1.5, normalized).astype(dtype)
    b = rng.standard_normal(normalized).astype(dtype)
    check_op(lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=EPS),
             layer_norm_ref(len(normalized)), [x, w, b],
             forward_tol=(1e-4, 1e-5) if dtype == np.float32 else None)


def test_layer_norm_without_affine_and_shape_errors() -> None:
    x = np.random.default_rng(5).standard_normal((3, 4))
    check_op(lambda x: F.layer_norm(x, 4, eps=EPS), layer_norm_ref(1), [x])
    with pytest.raises(mdl.ShapeError, match="trailing axes"):
        F.layer_norm(mdl.tensor(x), (3,))
    with pytest.raises(mdl.ShapeError, match="weight and bias"):
        F.layer_norm(mdl.tensor(x), 4, mdl.tensor(np.ones(3)), mdl.tensor(np.ones(3)))


# ==================================== embedding ========================================

@pytest.mark.parametrize("index_shape", [(5,), (2, 3), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_gathers_rows_and_scatter_adds(index_shape: tuple[int, ...],
                                                 dtype: Any) -> None:
    rng = np.random.default_rng(6)
    weight = rng.standard_normal((4, 3)).astype(dtype)
    indices = rng.integers(0, 4, index_shape)
    indices.flat[0] = indices.flat[-1]  # at least one repeated row (when size > 1)
    result = check_op(lambda w, i: F.embedding(i, w), lambda w, i: w[i], [weight, indices])
    assert result.op == "Embedding"


def test_embedding_padding_row_gets_no_gradient_and_bad_indices_are_named() -> None:
    emb = mdl.nn.Embedding(4, 2, padding_idx=1, generator=0, dtype="float64")
    tokens = mdl.tensor([[1, 2, 1], [3, 1, 2]], dtype="int64")
    (emb(tokens) * mdl.tensor(np.arange(12.0).reshape(2, 3, 2))).sum().backward()
    expected = np.zeros((4, 2))
    for (row, col), token in np.ndenumerate(tokens.data):
        expected[token] += np.arange(12.0).reshape(2, 3, 2)[row, col]
    expected[1] = 0.0
    np.testing.assert_array_equal(emb.weight.grad, expected)
    with pytest.raises(IndexError, match="index 4 is out of range for 4"):
        emb(mdl.tensor([4], dtype="int64"))
    with pytest.raises(TypeError, match="integers"):
        emb(mdl.tensor([1.0]))


# ==================================== activations ======================================

def gelu_exact_ref(x: np.ndarray) -> np.ndarray:
    return x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh_ref(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_activations(dtype: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    x = (rng.uniform(0.2, 3.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)
    check_op(lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), [x])
    check_op(F.gelu, gelu_exact_ref, [x])
    check_op(lambda x: F.gelu(x, approximate="tanh"), gelu_tanh_ref, [x])
    check_op(mdl.nn.Softmax(axis=0), lambda x: np.exp(x) / np.exp(x).sum(axis=0), [x])


def test_gelu_matches_known_values() -> None:
    # Phi(1) = 0.841344746..., Phi(-2) = 0.022750131...: independent of any erf code.
    got = F.gelu(mdl.tensor([1.0, -2.0], dtype="float64")).data
    np.testing.assert_allclose(got, [0.8413447460685429, -2 * 0.022750131948179195],
                               rtol=1e-14)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(mdl.tensor([1.0]), approximate="fast")
