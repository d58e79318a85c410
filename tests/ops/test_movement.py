"""Movement ops: reshape, transpose / .T, indexing (basic and integer-array), concatenate,
stack."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import OP_SETTINGS, float_dtypes, make, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl as mdl

# ======================================= reshape ========================================


@st.composite
def reshape_target(draw: Any, shape: tuple[int, ...]) -> Any:
    """A shape with as many elements as ``shape`` (maybe with -1, maybe a bare int)."""
    n = int(np.prod(shape))
    options: list[Any] = [(n,), (-1,), n, shape[::-1], (1, n), (n, 1), (1,) + shape + (1,)]
    if len(shape) >= 2:
        options.append((shape[0], -1))
        options.append(shape[:-2] + (shape[-2] * shape[-1],))
    if n == 1:
        options.append(())
    return draw(st.sampled_from(options))


@OP_SETTINGS
@given(data=st.data(), shape=shapes(max_dims=3), dtype=float_dtypes, seed=seeds)
def test_reshape(data: Any, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    target = data.draw(reshape_target(shape))
    x = make("normal", shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: t.reshape(target), lambda a: np.reshape(a, target), [x], seed=seed)
    check_op(lambda t: mdl.reshape(t, target), lambda a: np.reshape(a, target), [x], seed=seed)


def test_reshape_with_separate_arguments() -> None:
    x = make("normal", (2, 3), np.float32, np.random.default_rng(0))
    check_op(lambda t: t.reshape(3, 2), lambda a: a.reshape(3, 2), [x])
    check_op(lambda t: t.reshape(-1, 1) * t.reshape(1, -1),
             lambda a: a.reshape(-1, 1) * a.reshape(1, -1), [x])


# ====================================== transpose =======================================

@OP_SETTINGS
@given(data=st.data(), shape=shapes(max_dims=4, max_side=3), dtype=float_dtypes, seed=seeds)
def test_transpose(data: Any, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    ndim = len(shape)
    perm = data.draw(st.permutations(range(ndim)))
    negate = data.draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    axes = tuple(ax - ndim if neg else ax for ax, neg in zip(perm, negate))
    x = make("normal", shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: t.transpose(axes), lambda a: np.transpose(a, axes), [x], seed=seed)
    check_op(lambda t: mdl.transpose(t, axes), lambda a: np.transpose(a, axes), [x], seed=seed)
    check_op(lambda t: t.T, lambda a: a.T, [x], seed=seed)
    check_op(lambda t: t.transpose(), lambda a: a.transpose(), [x], seed=seed)
    if ndim >= 1:
        check_op(lambda t: t.transpose(*axes), lambda a: a.transpose(*axes), [x], seed=seed)


def test_transpose_of_a_reused_tensor() -> None:
    x = make("normal", (3, 3), np.float64, np.random.default_rng(1))
    check_op(lambda t: t * t.T, lambda a: a * a.T, [x])


@pytest.mark.parametrize("axes", [(0, 0), (0,), (0, 1, 2), (2, 1), (0, -3)])
def test_transpose_rejects_axes_that_are_not_a_permutation(axes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="transpose"):
        mdl.tensor(np.ones((2, 3))).transpose(axes)


# ====================================== indexing ========================================

@OP_SETTINGS
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3, max_side=5), dtype=float_dtypes,
       seed=seeds)
def test_getitem_basic(data: Any, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    """Ints (negative too), slices with steps, None and Ellipsis."""
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                         allow_ellipsis=True))
    x = make("normal", shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: t[index], lambda a: a[index], [x], seed=seed)


@OP_SETTINGS
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3, max_side=4), dtype=float_dtypes,
       seed=seeds)
def test_getitem_integer_arrays(data: Any, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    """Integer-array indices, which repeat elements: their gradients must add up."""
    index = data.draw(hnp.integer_array_indices(
        shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)))
    x = make("normal", shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: t[index], lambda a: a[index], [x], seed=seed)


REPEATED_INDICES = [
    [0, 0, 2, 0],                              # a list, repeated
    np.array([1, 1, 1]),                       # an array, all one row
    np.array([[0, 2], [2, 2]]),                # a 2-D index array
    (np.array([0, 0, 1]), np.array([3, 3, 3])),  # one element picked three times
    (slice(None), [1, 1, 0]),                  # a slice then a repeated array
    (np.array([2, 2]), slice(1, 3)),           # a repeated array then a slice
    (Ellipsis, np.array([0, 0])),              # Ellipsis with an array
    np.array([-1, 0, -1]),                     # negative indices that repeat
]


@pytest.mark.parametrize("index", REPEATED_INDICES, ids=range(len(REPEATED_INDICES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_getitem_repeated_indices_accumulate(index: Any, dtype: Any) -> None:
    x = make("normal", (3, 4), dtype, np.random.default_rng(2))
    plain = tuple(np.asarray(p) if isinstance(p, list) else p for p in index) \
        if isinstance(index, tuple) else np.asarray(index)
    check_op(lambda t: t[index], lambda a: a[plain], [x])


def test_getitem_repeated_index_gradient_counts_each_use() -> None:
    x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_getitem_with_tensor_and_bool_index() -> None:
    x = make("normal", (4, 3), np.float64, np.random.default_rng(3))
    rows = mdl.tensor(np.array([3, 0, 3]))
    check_op(lambda t: t[rows], lambda a: a[np.array([3, 0, 3])], [x])
    mask = np.array([True, False, True, True])
    check_op(lambda t: t[mask], lambda a: a[mask], [x])


def test_getitem_of_a_reused_tensor() -> None:
    x = make("normal", (3, 4), np.float64, np.random.default_rng(4))
    check_op(lambda t: t[0] * t[:, 1:].sum(axis=1)[None, 0] + t[[1, 1], 2].sum(),
             lambda a: a[0] * a[:, 1:].sum(axis=1)[None, 0] + a[[1, 1], 2].sum(), [x])


# =============================== concatenate and stack ==================================

@OP_SETTINGS
@given(shape=shapes(min_dims=1, max_dims=3), count=st.integers(1, 3), data=st.data(),
       dtype=float_dtypes, seed=seeds)
def test_concatenate(shape: tuple[int, ...], count: int, data: Any, dtype: Any,
                     seed: int) -> None:
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim, ndim - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    rng = np.random.default_rng(seed)
    parts = []
    for size in sizes:
        part_shape = list(shape)
        part_shape[axis] = size
        parts.append(make("normal", tuple(part_shape), dtype, rng))
    check_op(lambda *ts: mdl.concatenate(list(ts), axis=axis),
             lambda *arrs: np.concatenate(arrs, axis=axis), parts, seed=seed)


@OP_SETTINGS
@given(shape=shapes(max_dims=3), count=st.integers(1, 3), data=st.data(), dtype=float_dtypes,
       seed=seeds)
def test_stack(shape: tuple[int, ...], count: int, data: Any, dtype: Any, seed: int) -> None:
    ndim = len(shape) + 1
    axis = data.draw(st.integers(-ndim, ndim - 1))
    rng = np.random.default_rng(seed)
    parts = [make("normal", shape, dtype, rng) for _ in range(count)]
    check_op(lambda *ts: mdl.stack(list(ts), axis=axis),
             lambda *arrs: np.stack(arrs, axis=axis), parts, seed=seed)


def test_concatenate_and_stack_of_one_tensor_used_twice() -> None:
    x = make("normal", (2, 3), np.float64, np.random.default_rng(5))
    check_op(lambda t: mdl.concatenate([t, t * 2.0, t], axis=1),
             lambda a: np.concatenate([a, a * 2.0, a], axis=1), [x])
    check_op(lambda t: mdl.stack([t, t.exp(), t], axis=-1),
             lambda a: np.stack([a, np.exp(a), a], axis=-1), [x])


def test_concatenate_mismatch_is_a_shape_error() -> None:
    with pytest.raises(mdl.ShapeError, match=r"Concatenate.*\(2, 3\).*\(2, 4\)"):
        mdl.concatenate([mdl.tensor(np.ones((2, 3))), mdl.tensor(np.ones((2, 4)))], axis=0)
