"""``gradcheck``: compare backward against central finite differences in float64."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minidl.errors import GradcheckError, InvalidTypeError
from minidl.tensor import Tensor


def _scalar_projection(fn: Callable[..., Any], inputs: list[Tensor], weights: np.ndarray
                       ) -> tuple[Tensor, str]:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise InvalidTypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    op_name = type(out._ctx).__name__ if out._ctx is not None else "(no op)"
    return (out * weights).sum(), op_name  # a random projection checks every output at once


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check ``fn``'s backward against central differences; True, or raise with detail.

    Every input is copied to float64; the output is projected on a fixed random
    vector, so one backward checks all output elements. Integer inputs (labels) are
    passed through unchanged and not differentiated.

    >>> import minidl as mdl
    >>> mdl.gradcheck(lambda x: (x * x).tanh(), [mdl.tensor([0.3, -1.2])])
    True
    """
    originals = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    # C-contiguous copies: nudging below goes through reshape(-1), which is a view only
    # for C order (a transposed input would be copied, and the nudges lost).
    leaves = [Tensor(np.array(x.data, dtype=np.float64, order="C"), requires_grad=True)
              if x.dtype.kind == "f" else Tensor._from_op(x.data, None) for x in originals]
    probe = fn(*leaves)
    weights = np.random.default_rng(seed).standard_normal(np.shape(probe.data))

    projected, op_name = _scalar_projection(fn, leaves, weights)
    projected.backward()
    for index, leaf in enumerate(leaves):
        if not leaf.requires_grad:
            continue
        analytic = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        numeric = np.zeros_like(leaf.data)
        flat = leaf.data.reshape(-1)  # a view (C order): nudging it nudges the input
        for i in range(flat.size):
            kept = flat[i]
            flat[i] = kept + eps
            plus = _scalar_projection(fn, leaves, weights)[0].item()
            flat[i] = kept - eps
            minus = _scalar_projection(fn, leaves, weights)[0].item()
            flat[i] = kept
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        _compare(analytic, numeric, op_name, index, leaf.shape, eps, atol, rtol)
    return True


def _compare(analytic: np.ndarray, numeric: np.ndarray, op_name: str, index: int,
             shape: tuple[int, ...], eps: float, atol: float, rtol: float) -> None:
    """Raise ``GradcheckError`` at the worst element, or if either side is not finite.

    A non-finite value is a failure, never agreement: ``error > 0`` is False for NaN,
    so without this check a NaN derivative would pass.
    """
    where = f"gradcheck failed for {op_name}: input {index} (shape {shape})"
    for side, values, hint in (
            ("numeric", numeric, f"the function is not finite within eps={eps} of the input "
             "(outside its domain?); check at another point or with a smaller eps"),
            ("analytic", analytic, "it comes from the op's backward")):
        bad = ~np.isfinite(values)
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), values.shape)
            raise GradcheckError(
                f"{where}: the {side} derivative is not finite at element "
                f"{tuple(int(i) for i in first)}: analytic {float(analytic[first])!r}, "
                f"numeric {float(numeric[first])!r}; {hint}")
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if (error > 0).any():
        worst = np.unravel_index(int(np.argmax(error)), numeric.shape)
        raise GradcheckError(
            f"{where}, worst element {tuple(int(i) for i in worst)}: analytic "
            f"{float(analytic[worst])!r}, numeric {float(numeric[worst])!r} (atol={atol}, "
            f"rtol={rtol}, eps={eps})")
