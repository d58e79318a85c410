"""``check_op``: the one helper that checks every op's forward and backward.

The oracle is always an independent numpy function written in the test, never
minidl code (not ``mdl.gradcheck`` either):

* forward: ``fn`` on minidl tensors equals ``ref`` on the same arrays, in the
  inputs' dtype (float32 in, float32 out), to a tolerance set by that dtype;
* backward: minidl's ``.backward()`` of a random projection ``(out * w).sum()``,
  in float64, equals central finite differences of ``sum(ref(...) * w)`` in
  float64, element by element;
* low precision: the same backward run in the inputs' own dtype (float32,
  float16) gives gradients of the leaf's dtype and shape, close to the float64 ones;
* nothing is modified in place: the inputs hold the same values afterwards.

>>> import numpy as np
>>> check_op(lambda x: x.tanh(), np.tanh, [np.array([0.5, -1.0], dtype=np.float32)]).op
'Tanh'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import minidl as mdl

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

#: (rtol, atol) of the forward against the float64 reference; atol is scaled by
#: max(1, max |reference|), so large outputs are judged relatively.
FORWARD_TOL = {F16: (2e-3, 2e-3), F32: (2e-5, 2e-6), F64: (1e-10, 1e-12)}

#: (rtol, atol) of gradients computed in a low-precision dtype against the float64
#: gradients; atol is scaled by max(1, max |float64 gradient|).
LOW_PRECISION_GRAD_TOL = {F16: (5e-2, 5e-2), F32: (2e-3, 2e-4)}


@dataclass
class OpCheck:
    """What ``check_op`` computed, for tests that assert more."""

    op: str                            #: class name of the Function that made the output
    out: np.ndarray                    #: minidl forward in the inputs' dtypes
    expected: np.ndarray               #: the numpy reference in float64
    grads: list[np.ndarray | None]     #: minidl float64 gradients (None: not differentiated)
    numeric: list[np.ndarray | None]   #: finite differences of the reference


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


def _projection(ref: Callable[..., Any], arrays: Sequence[np.ndarray], w: np.ndarray
                ) -> tuple[float, float]:
    """sum(ref(arrays) * w) in float64, and sum |ref(arrays) * w| (its rounding scale)."""
    terms = np.asarray(ref(*arrays), dtype=np.float64) * w
    return float(terms.sum()), float(np.abs(terms).sum())


def _numeric_grad(ref: Callable[..., Any], arrays: list[np.ndarray], index: int, w: np.ndarray,
                  eps: float) -> tuple[np.ndarray, float]:
    """Central differences of sum(ref * w) in input ``index``, and their rounding noise."""
    nudged = [a.copy() for a in arrays]
    x = nudged[index]
    numeric = np.zeros(x.shape, dtype=np.float64)
    magnitude = _projection(ref, arrays, w)[1]
    for position in np.ndindex(x.shape):
        kept = x[position]
        x[position] = kept + eps
        plus, mag_plus = _projection(ref, nudged, w)
        x[position] = kept - eps
        minus, mag_minus = _projection(ref, nudged, w)
        x[position] = kept
        numeric[position] = (plus - minus) / (2 * eps)
        magnitude = max(magnitude, mag_plus, mag_minus)
    # Each projection is rounded to about eps_machine * sum|terms|; the difference
    # quotient divides that by eps.
    noise = 8 * np.finfo(np.float64).eps * magnitude / eps
    return numeric, noise


def _where(a: np.ndarray, b: np.ndarray, allowed: np.ndarray) -> tuple[int, ...]:
    """Index of the element of ``a`` that most exceeds ``allowed`` away from ``b``."""
    excess = np.abs(a - b) - allowed
    excess = np.where(np.isnan(excess), np.inf, excess)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), a.shape))


def _allowed(reference: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Per-element tolerance: atol scaled by the reference's magnitude (at least 1), plus
    rtol of each element, so tiny elements of a large output are not held to rtol alone."""
    return atol * max(1.0, float(np.max(np.abs(reference), initial=0.0))) + rtol * np.abs(reference)


def check_op(fn: Callable[..., mdl.Tensor], ref: Callable[..., Any], inputs: Sequence[Any], *,
             wrt: Sequence[int] | None = None, seed: int = 0, eps: float = 1e-6,
             rtol: float = 1e-5, atol: float = 1e-7,
             forward_tol: tuple[float, float] | None = None,
             check_low_precision_grad: bool = True) -> OpCheck:
    """Check ``fn`` (on minidl tensors) against ``ref`` (on numpy arrays); raise on mismatch.

    ``inputs`` are numpy arrays. Floating ones become tensors with
    ``requires_grad=True`` (only those listed in ``wrt``, if given) and are
    differentiated; integer and bool ones (labels, masks) are passed as constant
    tensors to ``fn`` and unchanged to ``ref``. ``ref`` must be plain numpy.
    ``rtol``/``atol`` judge the float64 gradients against finite differences
    (``atol`` is widened by the finite differences' own rounding noise);
    ``forward_tol`` overrides the per-dtype forward tolerance.
    """
    arrays = [np.asarray(a) for a in inputs]
    floats = [i for i, a in enumerate(arrays) if _is_float(a)]
    wrt = floats if wrt is None else list(wrt)
    for i in wrt:
        if not _is_float(arrays[i]):
            raise TypeError(f"check_op: input {i} has dtype {arrays[i].dtype}; only floating "
                            "inputs can be differentiated")
    arrays64 = [a.astype(np.float64) if _is_float(a) else a for a in arrays]
    expected = np.asarray(ref(*[a.copy() for a in arrays64]), dtype=np.float64)

    # ---- forward, in the inputs' own dtypes ------------------------------------------
    tensors = [mdl.tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = fn(*tensors)
    if not isinstance(out, mdl.Tensor):
        raise AssertionError(f"check_op: fn returned {type(out).__name__}, not a minidl Tensor")
    op = type(out._ctx).__name__ if out._ctx is not None else "(no op)"
    if floats:
        want = np.result_type(*[arrays[i].dtype for i in floats])
        assert out.dtype == want, f"{op}: forward gave {out.dtype} for {want} inputs"
    assert out.shape == expected.shape, (
        f"{op}: forward has shape {out.shape}, the numpy reference {expected.shape}")
    f_rtol, f_atol = forward_tol or FORWARD_TOL.get(out.dtype, FORWARD_TOL[F64])
    got = np.asarray(out.data, dtype=np.float64)
    allowed = _allowed(expected, f_rtol, f_atol)
    if not (np.abs(got - expected) <= allowed).all():
        worst = _where(got, expected, allowed)
        raise AssertionError(
            f"{op}: forward differs from the numpy reference at {worst}: minidl "
            f"{got[worst]!r}, numpy {expected[worst]!r} (dtype {out.dtype}, rtol={f_rtol}, "
            f"atol={f_atol})")

    # ---- backward in float64 against finite differences of the reference -------------
    leaves = [mdl.tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays64)]
    out64 = fn(*leaves)
    if floats:
        assert out64.dtype == F64, f"{op}: forward gave {out64.dtype} for float64 inputs"
    w = np.asarray(np.random.default_rng(seed).standard_normal(out64.shape), dtype=np.float64)
    grads: list[np.ndarray | None] = [None] * len(arrays)
    numerics: list[np.ndarray | None] = [None] * len(arrays)
    if wrt:
        (out64 * mdl.tensor(w)).sum().backward()
    for i in wrt:
        leaf = leaves[i]
        analytic = np.zeros(leaf.shape) if leaf.grad is None else np.asarray(leaf.grad)
        assert analytic.shape == leaf.shape, (
            f"{op}: grad of input {i} has shape {analytic.shape}, the input {leaf.shape}")
        assert analytic.dtype == F64, f"{op}: grad of float64 input {i} is {analytic.dtype}"
        numeric, noise = _numeric_grad(ref, arrays64, i, w, eps)
        allowed = atol + noise + rtol * np.abs(numeric)
        if not (np.abs(analytic - numeric) <= allowed).all():
            worst = _where(analytic, numeric, allowed)
            raise AssertionError(
                f"{op}: backward of input {i} (shape {leaf.shape}) differs from finite "
                f"differences of the numpy reference at {worst}: minidl {analytic[worst]!r}, "
                f"numeric {numeric[worst]!r} (rtol={rtol}, atol={atol} + noise {noise:.1e})")
        grads[i], numerics[i] = analytic, numeric

    # ---- backward in the inputs' own (lower) precision -------------------------------
    low = [i for i in wrt if arrays[i].dtype != F64]
    if check_low_precision_grad and low:
        (out * mdl.tensor(w.astype(out.dtype))).sum().backward()
        for i in wrt:
            leaf, reference = tensors[i], grads[i]
            assert leaf.grad is not None, f"{op}: input {i} got no gradient"
            assert leaf.grad.dtype == leaf.dtype, (
                f"{op}: grad of input {i} is {leaf.grad.dtype}, the input is {leaf.dtype}")
            assert leaf.grad.shape == leaf.shape
            if i not in low:
                continue
            g_rtol, g_atol = LOW_PRECISION_GRAD_TOL[leaf.dtype]
            g = np.asarray(leaf.grad, dtype=np.float64)
            allowed = _allowed(reference, g_rtol, g_atol)
            if not (np.abs(g - reference) <= allowed).all():
                worst = _where(g, reference, allowed)
                raise AssertionError(
                    f"{op}: {leaf.dtype} backward of input {i} differs from the float64 one "
                    f"at {worst}: {g[worst]!r} vs {reference[worst]!r}")

    # ---- nothing was modified in place -----------------------------------------------
    for i, (a, t, leaf) in enumerate(zip(arrays, tensors, leaves)):
        assert np.array_equal(t.data, a) and np.array_equal(leaf.data, arrays64[i]), (
            f"{op}: input {i} was modified in place")
    return OpCheck(op=op, out=np.asarray(out.data), expected=expected, grads=grads,
                   numeric=numerics)
