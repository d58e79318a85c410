"""Reductions: sum, mean, max over axis None / int / tuple, keepdims both ways."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op
from helpers.strategies import OP_SETTINGS, float_dtypes, make, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st

import minidl as mdl

Axis = int | tuple[int, ...] | None


@st.composite
def shape_and_axis(draw: Any) -> tuple[tuple[int, ...], Axis]:
    """A shape and an axis argument for it: None, one axis or a tuple (negatives too)."""
    shape = draw(shapes(max_dims=4, max_side=3))
    ndim = len(shape)
    choices = ["none", "tuple"] + (["int"] if ndim else [])
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim)
                  if ndim else st.just([]))
    negate = draw(st.lists(st.booleans(), min_size=len(picked), max_size=len(picked)))
    return shape, tuple(ax - ndim if neg else ax for ax, neg in zip(picked, negate))


REDUCTIONS = {
    "sum": (lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), np.sum, "normal"),
    "mdl.sum": (lambda x, axis, keepdims: mdl.sum(x, axis=axis, keepdims=keepdims), np.sum,
                "normal"),
    "mean": (lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), np.mean, "normal"),
    "mdl.mean": (lambda x, axis, keepdims: mdl.mean(x, axis=axis, keepdims=keepdims), np.mean,
                 "normal"),
    # Distinct values: no ties, so max is differentiable everywhere it is sampled.
    "max": (lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), np.max, "distinct"),
    "mdl.max": (lambda x, axis, keepdims: mdl.max(x, axis=axis, keepdims=keepdims), np.max,
                "distinct"),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@OP_SETTINGS
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), dtype=float_dtypes, seed=seeds)
def test_reduction(name: str, shape_axis: tuple[tuple[int, ...], Axis], keepdims: bool,
                   dtype: Any, seed: int) -> None:
    fn, ref, kind = REDUCTIONS[name]
    shape, axis = shape_axis
    x = make(kind, shape, dtype, np.random.default_rng(seed))
    check_op(lambda t: fn(t, axis, keepdims),
             lambda a: ref(a, axis=axis, keepdims=keepdims), [x], seed=seed)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (2, 0), (-1, 0), (0, 1, 2), ()])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_named_axes(name: str, axis: Axis, keepdims: bool) -> None:
    fn, ref, kind = REDUCTIONS[name]
    x = make(kind, (2, 1, 3), np.float32, np.random.default_rng(4))  # a size-1 axis inside
    check_op(lambda t: fn(t, axis, keepdims), lambda a: ref(a, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduction_of_a_reused_tensor(name: str) -> None:
    """x * reduce(x): one leaf reached directly and through the reduction."""
    fn, ref, kind = REDUCTIONS[name]
    x = make(kind, (3, 4), np.float64, np.random.default_rng(6))
    check_op(lambda t: t * fn(t, 1, True), lambda a: a * ref(a, axis=1, keepdims=True), [x])


def test_max_ties_share_the_gradient_evenly() -> None:
    x = mdl.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_reduction_rejects_out_of_range_axis() -> None:
    with pytest.raises(ValueError, match="out of bounds"):
        mdl.tensor(np.ones((2, 3))).sum(axis=2)


@pytest.mark.parametrize("axis", [np.int64(1), (np.int64(0), np.int32(-1)), np.array([0, 2])])
def test_reduction_accepts_numpy_integer_axes(axis: Axis) -> None:
    x = make("distinct", (2, 3, 4), np.float64, np.random.default_rng(9))
    for name in ("sum", "mean", "max"):
        fn, ref, _ = REDUCTIONS[name]
        check_op(lambda t: fn(t, axis, False), lambda a: ref(a, axis=tuple(np.atleast_1d(axis))),
                 [x])
