"""Linear, Sequential, the activation modules and Dropout against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.nn import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh

RNG_SEED = 20240611


def randn(*shape: int, dtype=np.float32, seed: int = RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- Linear ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_forward_is_x_wt_plus_b(dtype):
    layer = Linear(5, 3, generator=0, dtype=dtype)
    layer.bias.data[...] = np.array([0.5, -1.0, 2.0], dtype=dtype)
    x = randn(7, 5, dtype=dtype)
    w, b = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    expected = x.astype(np.float64) @ w.T + b
    out = layer(mdl.tensor(x))
    assert out.shape == (7, 3) and out.dtype == dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_linear_without_bias():
    layer = Linear(4, 2, bias=False, generator=1)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    x = randn(3, 4)
    np.testing.assert_allclose(layer(mdl.tensor(x)).data,
                               x.astype(np.float64) @ layer.weight.data.T.astype(np.float64),
                               rtol=1e-5, atol=1e-6)


def test_linear_backward_matches_numpy():
    layer = Linear(4, 3, generator=2, dtype=np.float64)
    x = randn(6, 4, dtype=np.float64)
    out = layer(mdl.tensor(x))
    out.backward(np.ones((6, 3)))  # plain calculus: no batch reduction
    np.testing.assert_allclose(layer.weight.grad, np.ones((3, 6)) @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, np.full(3, 6.0), rtol=1e-12)


def test_linear_shapes_and_initial_bias():
    layer = Linear(3, 5, generator=0)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    np.testing.assert_array_equal(layer.bias.data, np.zeros(5))
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


def test_linear_same_seed_same_weights_different_seed_different():
    a, b, c = Linear(6, 4, generator=3), Linear(6, 4, generator=3), Linear(6, 4, generator=4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.allclose(a.weight.data, c.weight.data)


def test_linear_shared_generator_advances():
    rng = np.random.default_rng(0)
    first, second = Linear(3, 3, generator=rng), Linear(3, 3, generator=rng)
    assert not np.allclose(first.weight.data, second.weight.data)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(Linear(3, 3, generator=rng).weight.data, first.weight.data)


@pytest.mark.parametrize("init, fan_in, fan_out, expected_std", [
    ("xavier", 600, 900, np.sqrt(2.0 / (600 + 900))),
    ("he", 600, 900, np.sqrt(2.0 / 600)),
])
def test_init_std(init, fan_in, fan_out, expected_std):
    weight = Linear(fan_in, fan_out, init=init, generator=5, dtype=np.float64).weight.data
    # 540,000 draws: the sample std is within ~0.1% of the truth; 2% is a wide margin.
    assert abs(weight.std() / expected_std - 1) < 0.02
    assert abs(weight.mean()) < 0.01 * expected_std  # ~7 standard errors


def test_default_init_is_xavier():
    default = Linear(30, 20, generator=9).weight.data
    xavier = Linear(30, 20, init="xavier", generator=9).weight.data
    np.testing.assert_array_equal(default, xavier)


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (-1, 3), (2.5, 3), (3, "4"), (None, 2)])
def test_linear_invalid_sizes_raise(args):
    with pytest.raises(ValueError, match="features"):
        Linear(*args)


def test_linear_invalid_init_raises():
    with pytest.raises(ValueError, match="init"):
        Linear(2, 2, init="uniform")


@pytest.mark.parametrize("dtype", ["float64", np.float64, "float16", np.float32])
def test_linear_dtype_honoured(dtype):
    layer = Linear(3, 2, generator=0, dtype=dtype)
    assert layer.weight.dtype == np.dtype(dtype) and layer.bias.dtype == np.dtype(dtype)
    out = layer(mdl.tensor(np.ones((1, 3), dtype=np.dtype(dtype))))
    assert out.dtype == np.dtype(dtype)


def test_linear_float64_weights_equal_float32_weights_up_to_rounding():
    w64 = Linear(4, 4, generator=11, dtype=np.float64).weight.data
    w32 = Linear(4, 4, generator=11, dtype=np.float32).weight.data
    np.testing.assert_array_equal(w64.astype(np.float32), w32)


# ---- Sequential --------------------------------------------------------------------------

def test_sequential_len_indexing_and_forward():
    first, act, second = Linear(3, 4, generator=0), Tanh(), Linear(4, 2, generator=1)
    net = Sequential(first, act, second)
    assert len(net) == 3
    assert net[0] is first and net[1] is act and net[2] is second and net[-1] is second
    x = randn(5, 3)
    x64 = x.astype(np.float64)
    hidden = np.tanh(x64 @ first.weight.data.T.astype(np.float64) + first.bias.data)
    expected = hidden @ second.weight.data.T.astype(np.float64) + second.bias.data
    np.testing.assert_allclose(net(mdl.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_empty_sequential_is_identity():
    net = Sequential()
    assert len(net) == 0
    x = randn(2, 2)
    np.testing.assert_array_equal(net(mdl.tensor(x)).data, x)


def test_sequential_index_out_of_range():
    with pytest.raises(IndexError):
        Sequential(Tanh())[1]


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1"):
        Sequential(Tanh(), np.tanh)


# ---- activations -------------------------------------------------------------------------

@pytest.mark.parametrize("module, reference", [
    (ReLU(), lambda x: np.maximum(x, 0.0)),
    (Tanh(), np.tanh),
    (Sigmoid(), lambda x: 1.0 / (1.0 + np.exp(-x))),
])
def test_activation_modules_match_numpy(module, reference):
    x = randn(4, 6) * 3
    x[0, :3] = [0.0, -30.0, 30.0]
    out = module(mdl.tensor(x))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, reference(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    assert repr(module) == f"{type(module).__name__}()"
    assert list(module.parameters()) == []


# ---- Dropout -----------------------------------------------------------------------------

def nonzero_input(shape=(200, 500)) -> np.ndarray:
    x = randn(*shape)
    x[x == 0] = 1.0
    return x


def test_dropout_eval_is_identity():
    x = nonzero_input((10, 10))
    drop = Dropout(0.7, generator=0).eval()
    np.testing.assert_array_equal(drop(mdl.tensor(x)).data, x)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_dropout_training_zeros_about_p_and_scales_the_rest(p):
    x = nonzero_input()
    out = Dropout(p, generator=1)(mdl.tensor(x)).data
    assert out.shape == x.shape and out.dtype == np.float32
    dropped = out == 0
    # 100,000 Bernoulli(p) draws: the standard error of the fraction is <= 0.0016.
    assert abs(dropped.mean() - p) < 0.01
    kept_expected = x.astype(np.float64) / (1.0 - p)
    np.testing.assert_allclose(out[~dropped], kept_expected[~dropped], rtol=1e-6)


def test_dropout_gradient_is_the_same_mask_and_scale():
    p = 0.4
    x = mdl.tensor(nonzero_input((50, 40)).astype(np.float64), requires_grad=True)
    out = Dropout(p, generator=2)(x)
    out.backward(np.ones(out.shape))
    expected = np.where(out.data == 0, 0.0, 1.0 / (1.0 - p))
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_dropout_is_reproducible_with_a_seed():
    x = mdl.tensor(nonzero_input((30, 30)))
    first = Dropout(0.5, generator=42)(x).data
    second = Dropout(0.5, generator=42)(x).data
    other = Dropout(0.5, generator=43)(x).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first == 0, other == 0)


def test_dropout_draws_a_new_mask_each_call():
    drop = Dropout(0.5, generator=0)
    x = mdl.tensor(nonzero_input((30, 30)))
    assert not np.array_equal(drop(x).data == 0, drop(x).data == 0)


def test_dropout_p_zero_is_identity_in_training():
    x = nonzero_input((5, 5))
    np.testing.assert_array_equal(Dropout(0.0, generator=0)(mdl.tensor(x)).data, x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_p_out_of_range_raises(p):
    with pytest.raises(ValueError, match="p must be in"):
        Dropout(p)
