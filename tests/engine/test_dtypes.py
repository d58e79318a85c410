"""dtypes: ops keep them, gradients take the leaf's, ``mdl.tensor`` follows torch's rules."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import pytest

import minidl as mdl
import minidl.nn.functional as F

FLOATS = [np.float16, np.float32, np.float64]


@pytest.fixture
def restore_default_dtype() -> Iterator[None]:
    saved = mdl.get_default_dtype()
    try:
        yield
    finally:
        mdl.set_default_dtype(saved)


# ================================ ops keep the dtype ====================================

OPS: dict[str, Callable[[mdl.Tensor, mdl.Tensor], mdl.Tensor]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a.abs() ** b,
    "matmul": lambda a, b: a @ b.T,
    "maximum": mdl.maximum,
    "where": lambda a, b: mdl.where(a > b, a, b),
    "unary chain": lambda a, b: (a.exp() + b.tanh().sigmoid() + a.relu() + b.abs().sqrt()
                                 + (a * a + 1.0).log() - a),
    "reductions": lambda a, b: a.sum(axis=0) + b.mean(axis=0) + a.max(axis=0),
    "movement": lambda a, b: mdl.concatenate([a.T.reshape(-1), b[[0, 0, 1]].reshape(-1)])
    + mdl.stack([a, b]).sum(axis=(0, 1)).sum(),
    "softmax": lambda a, b: F.softmax(a, axis=1) * F.log_softmax(b, axis=0),
    "losses": lambda a, b: F.mse_loss(a, b, reduction="none")
    + F.binary_cross_entropy_with_logits(a, b.sigmoid(), reduction="none")
    + F.cross_entropy(a, mdl.tensor(np.array([0, 2])), reduction="none"),
    "linear": lambda a, b: F.linear(a, b, b[:, 0]),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_keep_dtype_and_grads_take_the_leaf_dtype(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(0)
    a = mdl.tensor(rng.uniform(0.5, 1.5, (2, 3)).astype(dtype), requires_grad=True)
    b = mdl.tensor(rng.uniform(-1.5, -0.5, (2, 3)).astype(dtype), requires_grad=True)
    out = OPS[name](a, b)
    assert out.dtype == dtype
    out.sum().backward()
    for leaf in (a, b):
        if leaf.grad is not None:
            assert leaf.grad.dtype == dtype
            assert leaf.grad.shape == leaf.shape
            assert np.isfinite(leaf.grad).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_reduced_loss_keeps_dtype(dtype: Any) -> None:
    z = mdl.tensor(np.array([[0.5], [-1.0], [2.0]], dtype=dtype), requires_grad=True)
    for strategy in ("absorbed", "deferred", "sum"):
        with mdl.normalization(strategy):
            cost = F.binary_cross_entropy_with_logits(z, np.array([[1.0], [0.0], [1.0]]))
        assert cost.dtype == dtype
        cost.backward()
        assert z.grad.dtype == dtype
        z.grad = None


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("make", [
    lambda x: x + 2.5, lambda x: 2.5 + x, lambda x: x - 1.0, lambda x: 1.0 - x,
    lambda x: x * 3, lambda x: 3 * x, lambda x: x / 7.0, lambda x: 7.0 / x,
    lambda x: x ** 2, lambda x: x ** 0.5, lambda x: 2.0 ** x, lambda x: -x,
    lambda x: mdl.maximum(x, 0.5), lambda x: mdl.maximum(0.5, x),
    lambda x: mdl.where(x > 1.0, x, 0.0), lambda x: x.mean(), lambda x: x.mean(axis=0),
    lambda x: x + np.float64(1.5),
], ids=lambda f: "")
def test_python_scalars_do_not_upcast(make: Callable[[mdl.Tensor], mdl.Tensor],
                                      dtype: Any) -> None:
    x = mdl.tensor(np.array([0.5, 1.5, 2.0], dtype=dtype), requires_grad=True)
    out = make(x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype


def test_mixed_float_dtypes_promote_and_grads_come_back_in_each_dtype() -> None:
    a = mdl.tensor(np.ones(3, dtype=np.float16), requires_grad=True)
    b = mdl.tensor(np.ones(3, dtype=np.float64), requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float16 and b.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", FLOATS)
def test_scalar_leaf_grad_has_the_leaf_dtype(dtype: Any) -> None:
    x = mdl.tensor(np.array(1.5, dtype=dtype), requires_grad=True)
    (x * x).backward()
    assert x.grad.dtype == dtype and float(x.grad) == 3.0


def test_astype_casts_and_gradients_flow_back_in_the_original_dtype() -> None:
    x = mdl.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.astype("float64")
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


# ================================ mdl.tensor dtype rules ================================


@pytest.mark.parametrize("dtype", FLOATS)
def test_tensor_keeps_a_floating_arrays_dtype(dtype: Any) -> None:
    assert mdl.tensor(np.zeros(3, dtype=dtype)).dtype == dtype
    assert mdl.Tensor(np.zeros((), dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("data", [[1.0, 2.0], [1, 2], [[1, 2], [3, 4]], 3, 2.5, [True, 1.5]])
def test_lists_and_scalars_take_the_default_dtype(data: Any) -> None:
    assert mdl.tensor(data).dtype == np.float32
    assert mdl.tensor(data).data.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_integer_arrays_stay_integer(dtype: Any) -> None:
    labels = mdl.tensor(np.array([0, 2, 1], dtype=dtype))
    assert labels.dtype == dtype
    assert not labels.requires_grad


def test_bool_arrays_stay_bool() -> None:
    assert mdl.tensor(np.array([True, False])).dtype == np.bool_


@pytest.mark.parametrize("data, dtype, expected", [
    ([1, 2], np.float64, np.float64),
    ([1.5, 2.5], "float16", np.float16),
    (np.arange(3), np.float32, np.float32),
    (np.zeros(2, dtype=np.float64), np.float16, np.float16),
    (np.zeros(2, dtype=np.float32), "int64", np.int64),
    (1.0, np.float64, np.float64),
])
def test_dtype_argument_overrides(data: Any, dtype: Any, expected: Any) -> None:
    assert mdl.tensor(data, dtype=dtype).dtype == expected
    assert mdl.Tensor(data, dtype=dtype).dtype == expected


def test_set_default_dtype(restore_default_dtype: None) -> None:
    mdl.set_default_dtype("float64")
    assert mdl.get_default_dtype() == np.float64
    assert mdl.tensor([1.0, 2.0]).dtype == np.float64
    assert mdl.tensor(3).dtype == np.float64
    assert mdl.tensor(np.zeros(2, dtype=np.float32)).dtype == np.float32  # arrays keep theirs
    mdl.set_default_dtype(np.float16)
    assert mdl.tensor([1.0]).dtype == np.float16


def test_default_dtype_is_float32_and_restored(restore_default_dtype: None) -> None:
    assert mdl.get_default_dtype() == np.float32


def test_set_default_dtype_rejects_non_floats(restore_default_dtype: None) -> None:
    with pytest.raises(TypeError, match="float16, float32, float64"):
        mdl.set_default_dtype("int64")
    with pytest.raises(TypeError, match="float"):
        mdl.set_default_dtype("not a dtype")
    assert mdl.get_default_dtype() == np.float32


# ================================= non-numeric input ====================================


@pytest.mark.parametrize("data, named", [
    ("abc", "str"),
    (["a", "b"], "list"),
    (np.array(["a", "b"]), "<U1"),
    (np.array([1, None], dtype=object), "object"),
    (np.array([1.0, "x"], dtype=object), "object"),
    (1 + 2j, "complex"),
    ([1j, 2.0], "complex"),
    (np.array([1 + 1j]), "complex128"),
    (None, "NoneType"),
    ({"a": 1}, "dict"),
    ([[1.0, 2.0], [3.0]], "list"),  # ragged
])
def test_non_numeric_input_raises_type_error_naming_it(data: Any, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        mdl.tensor(data)


@pytest.mark.parametrize("data", [np.array([1, 2]), np.array([True]), np.int64(3)])
def test_requires_grad_on_a_non_float_tensor_raises(data: Any) -> None:
    with pytest.raises(TypeError, match="floating"):
        mdl.tensor(data, requires_grad=True)


def test_requires_grad_on_int_list_is_fine_it_becomes_float() -> None:
    x = mdl.tensor([1, 2], requires_grad=True)
    assert x.dtype == np.float32 and x.requires_grad


def test_integer_tensors_and_numpy_scalars_take_the_float_operand_dtype():
    param = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (mdl.tensor(np.arange(3)) * param).dtype == np.float32
    assert (param * np.array(2.0)).dtype == np.float32
    assert (param * np.float64(2.0)).dtype == np.float32


def test_building_a_tensor_copies_the_callers_array():
    weights = np.ones(3, dtype=np.float32)
    param = mdl.nn.Parameter(weights)
    mdl.nn.functional.mse_loss(param, mdl.tensor(np.zeros(3))).backward()
    mdl.optim.SGD([param], lr=0.5).step()
    np.testing.assert_array_equal(weights, np.ones(3))  # the caller's array is untouched
    assert not np.array_equal(param.data, weights)


def test_bool_and_integer_reductions_count_as_numpy_does():
    positive = mdl.tensor([-1.0, 2.0, 3.0]) > 0
    assert positive.sum().item() == 2
    assert positive.mean().item() == pytest.approx(2 / 3)
    assert mdl.tensor(np.array([100, 100], dtype=np.int8)).sum().item() == 200
    assert mdl.tensor(np.arange(4)).mean().item() == 1.5


def test_integer_tensors_stay_integer_with_python_integers():
    labels = mdl.tensor(np.array([16_777_216]))
    assert (labels + 1).dtype == np.int64 and (labels + 1).item() == 16_777_217
    assert not (labels == 16_777_217).item()
    assert (labels * 0.5).dtype == np.float32  # a float number: the default float, as torch


def test_none_is_not_a_number():
    with pytest.raises(TypeError):
        mdl.tensor([1.0, 2.0]) + None


def test_empty_mean_is_nan_and_pow_zero_has_zero_gradient_at_zero():
    assert np.isnan(mdl.tensor(np.zeros((0, 3))).mean(axis=0).data).all()
    x = mdl.tensor([0.0, 2.0], requires_grad=True, dtype="float64")
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
