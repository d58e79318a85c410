"""Elementwise ops (unary, binary, where, maximum) against numpy and finite differences."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import OP_SETTINGS, broadcastable_pair, float_dtypes, make, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st

import minidl as mdl
import minidl.nn.functional as F

# ======================================= unary ==========================================

# name: (minidl function, numpy reference, kind of values it needs)
UNARY: dict[str, tuple[Callable[[Any], Any], Callable[[np.ndarray], Any], str]] = {
    "neg": (lambda x: -x, lambda x: -x, "normal"),
    "exp": (mdl.exp, np.exp, "normal"),
    "exp_method": (lambda x: x.exp(), np.exp, "normal"),
    "log": (mdl.log, np.log, "positive"),
    "log_method": (lambda x: x.log(), np.log, "positive"),
    "tanh": (mdl.tanh, np.tanh, "normal"),
    "tanh_functional": (F.tanh, np.tanh, "normal"),
    "sigmoid": (mdl.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "normal"),
    "sigmoid_functional": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "normal"),
    "relu": (mdl.relu, lambda x: np.where(x > 0, x, 0 * x), "nonzero"),
    "relu_functional": (F.relu, lambda x: np.where(x > 0, x, 0 * x), "nonzero"),
    "relu_method": (lambda x: x.relu(), lambda x: np.where(x > 0, x, 0 * x), "nonzero"),
    "abs": (mdl.abs, np.abs, "nonzero"),
    "abs_method": (lambda x: x.abs(), np.abs, "nonzero"),
    "sqrt": (mdl.sqrt, np.sqrt, "positive"),
    "sqrt_method": (lambda x: x.sqrt(), np.sqrt, "positive"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@OP_SETTINGS
@given(shape=shapes(), dtype=float_dtypes, seed=seeds)
def test_unary(name: str, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    fn, ref, kind = UNARY[name]
    x = make(kind, shape, dtype, np.random.default_rng(seed))
    check_op(fn, ref, [x], seed=seed)


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "abs", "sqrt", "neg"])
def test_unary_float16(name: str) -> None:
    fn, ref, kind = UNARY[name]
    x = make(kind, (3, 4), np.float16, np.random.default_rng(7))
    check_op(fn, ref, [x])


# ==================================== used twice ========================================

TWICE: dict[str, tuple[Callable[[Any], Any], Callable[[np.ndarray], Any], str]] = {
    "x*x": (lambda x: x * x, lambda x: x * x, "normal"),
    "x+x": (lambda x: x + x, lambda x: x + x, "normal"),
    "x-x*2": (lambda x: x - x * 2.0, lambda x: x - x * 2.0, "normal"),
    "x/(x*x+1)": (lambda x: x / (x * x + 1.0), lambda x: x / (x * x + 1.0), "normal"),
    "x**x": (lambda x: x ** x, lambda x: x ** x, "positive"),
    "exp(x)*tanh(x)": (lambda x: x.exp() * x.tanh(), lambda x: np.exp(x) * np.tanh(x), "normal"),
    "maximum(x,-x)": (lambda x: mdl.maximum(x, -x), lambda x: np.maximum(x, -x), "nonzero"),
    "where(x>0,x,x*x)": (lambda x: mdl.where(x > 0, x, x * x),
                         lambda x: np.where(x > 0, x, x * x), "nonzero"),
}


@pytest.mark.parametrize("name", sorted(TWICE))
@OP_SETTINGS
@given(shape=shapes(), dtype=float_dtypes, seed=seeds)
def test_tensor_used_twice(name: str, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    fn, ref, kind = TWICE[name]
    check_op(fn, ref, [make(kind, shape, dtype, np.random.default_rng(seed))], seed=seed)


# ======================================= binary =========================================

# name: (minidl function, numpy reference, kinds of the two inputs)
BINARY: dict[str, tuple[Callable[[Any, Any], Any], Callable[..., Any], tuple[str, str]]] = {
    "add": (lambda a, b: a + b, np.add, ("normal", "normal")),
    "sub": (lambda a, b: a - b, np.subtract, ("normal", "normal")),
    "mul": (lambda a, b: a * b, np.multiply, ("normal", "normal")),
    "div": (lambda a, b: a / b, np.divide, ("normal", "nonzero")),
    "pow": (lambda a, b: a ** b, np.power, ("positive", "normal")),
    "maximum": (mdl.maximum, np.maximum, ("lowfrac", "highfrac")),  # never tied
}


@pytest.mark.parametrize("name", sorted(BINARY))
@OP_SETTINGS
@given(pair=broadcastable_pair(), dtype=float_dtypes, seed=seeds)
def test_binary_broadcast(name: str, pair: tuple[tuple[int, ...], ...], dtype: Any,
                          seed: int) -> None:
    fn, ref, kinds = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = make(kinds[0], pair[0], dtype, rng), make(kinds[1], pair[1], dtype, rng)
    check_op(fn, ref, [a, b], seed=seed)


# Named broadcasting cases, each side broadcast, scalar-shaped and size-1 axes.
BROADCAST_CASES = [
    ((3, 1), (1, 4)),
    ((4,), (2, 3, 4)),
    ((2, 3, 4), (4,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((2, 1, 3), (4, 1)),
    ((1,), (3,)),
    ((1, 1), (1, 1)),
    ((), ()),
]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_named_broadcasts(name: str, shape_a: tuple[int, ...], shape_b: tuple[int, ...],
                                 dtype: Any) -> None:
    fn, ref, kinds = BINARY[name]
    rng = np.random.default_rng(3)
    a, b = make(kinds[0], shape_a, dtype, rng), make(kinds[1], shape_b, dtype, rng)
    check_op(fn, ref, [a, b])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_mixed_float_dtypes(name: str) -> None:
    """float32 with float64 gives float64; each gradient comes back in its leaf's dtype."""
    fn, ref, kinds = BINARY[name]
    rng = np.random.default_rng(5)
    a = make(kinds[0], (3, 4), np.float32, rng)
    b = make(kinds[1], (4,), np.float64, rng)
    check_op(fn, ref, [a, b])


# ============================== Python-number operands ==================================

SCALAR_OPS: dict[str, tuple[Callable[[Any], Any], Callable[[np.ndarray], Any], str]] = {
    "x+2": (lambda x: x + 2.0, lambda x: x + 2.0, "normal"),
    "2+x": (lambda x: 2.0 + x, lambda x: 2.0 + x, "normal"),
    "x-2": (lambda x: x - 2.0, lambda x: x - 2.0, "normal"),
    "2-x": (lambda x: 2.0 - x, lambda x: 2.0 - x, "normal"),
    "x*3": (lambda x: x * 3, lambda x: x * 3, "normal"),
    "3*x": (lambda x: 3 * x, lambda x: 3 * x, "normal"),
    "x/4": (lambda x: x / 4.0, lambda x: x / 4.0, "normal"),
    "4/x": (lambda x: 4.0 / x, lambda x: 4.0 / x, "nonzero"),
    "x**2": (lambda x: x ** 2, lambda x: x ** 2, "normal"),
    "x**3": (lambda x: x ** 3, lambda x: x ** 3, "normal"),
    "x**2.5": (lambda x: x ** 2.5, lambda x: x ** 2.5, "positive"),
    "x**-1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    "x**0.5": (lambda x: x ** 0.5, lambda x: x ** 0.5, "positive"),
    "2**x": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, "normal"),
    "maximum(x,0.5)": (lambda x: mdl.maximum(x, 0.5), lambda x: np.maximum(x, 0.5), "lowfrac"),
    "maximum(-0.5,x)": (lambda x: mdl.maximum(-0.5, x), lambda x: np.maximum(-0.5, x),
                        "lowfrac"),
    "where(x>0,x,0)": (lambda x: mdl.where(x > 0, x, 0.0),
                       lambda x: np.where(x > 0, x, 0 * x), "nonzero"),
}


@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
@OP_SETTINGS
@given(shape=shapes(), dtype=float_dtypes, seed=seeds)
def test_python_number_operand(name: str, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    """A Python number takes the tensor's dtype (check_op asserts float32 stays float32)."""
    fn, ref, kind = SCALAR_OPS[name]
    x = make(kind, shape, dtype, np.random.default_rng(seed))
    check_op(fn, ref, [x], seed=seed)


# ======================================== where =========================================

@OP_SETTINGS
@given(shapes3=st.tuples(shapes(max_dims=2), shapes(max_dims=2), shapes(max_dims=2)),
       dtype=float_dtypes, seed=seeds)
def test_where_broadcasts_condition_and_both_branches(shapes3: tuple[tuple[int, ...], ...],
                                                      dtype: Any, seed: int) -> None:
    shape_c, shape_a, shape_b = shapes3
    try:
        np.broadcast_shapes(shape_c, shape_a, shape_b)
    except ValueError:
        shape_a = shape_b = shape_c
    rng = np.random.default_rng(seed)
    condition = rng.random(shape_c) < 0.5
    a, b = make("normal", shape_a, dtype, rng), make("normal", shape_b, dtype, rng)
    check_op(lambda c, x, y: mdl.where(c, x, y), np.where, [condition, a, b], seed=seed)


@pytest.mark.parametrize("shape_c, shape_a, shape_b",
                         [((3, 4), (4,), (3, 1)), ((3, 1), (3, 4), ()), ((), (2, 3), (2, 3))])
def test_where_named_broadcasts(shape_c: tuple[int, ...], shape_a: tuple[int, ...],
                                shape_b: tuple[int, ...]) -> None:
    rng = np.random.default_rng(11)
    condition = rng.random(shape_c) < 0.5
    check_op(mdl.where, np.where, [condition, make("normal", shape_a, np.float32, rng),
                                   make("normal", shape_b, np.float32, rng)])


def test_where_rejects_a_non_bool_condition() -> None:
    with pytest.raises(TypeError, match="bool"):
        mdl.where(mdl.tensor([1.0, 0.0]), mdl.tensor([1.0, 2.0]), 0.0)


def test_maximum_ties_split_the_gradient() -> None:
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    b = mdl.tensor([1.0, 3.0], requires_grad=True)
    mdl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 0.0])
    np.testing.assert_array_equal(b.grad, [0.5, 1.0])
