"""``gradcheck``: compare backward against central finite differences in float64."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minidl.errors import MinidlError
from minidl.tensor import Tensor


class GradcheckError(MinidlError, AssertionError):
    """Analytical and numerical gradients disagree; the message says where."""


def _scalar_projection(fn: Callable[..., Any], inputs: list[Tensor], weights: np.ndarray
                       ) -> tuple[Tensor, str]:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
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
    leaves = [Tensor(x.data.astype(np.float64), requires_grad=True) if x.dtype.kind == "f"
              else Tensor._from_op(x.data, None) for x in originals]
    probe = fn(*leaves)
    weights = np.random.default_rng(seed).standard_normal(np.shape(probe.data))

    projected, op_name = _scalar_projection(fn, leaves, weights)
    projected.backward()
    for index, leaf in enumerate(leaves):
        if not leaf.requires_grad:
            continue
        analytic = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        numeric = np.zeros_like(leaf.data)
        flat = leaf.data.reshape(-1)  # a view: nudging it nudges the input
        for i in range(flat.size):
            kept = flat[i]
            flat[i] = kept + eps
            plus = _scalar_projection(fn, leaves, weights)[0].item()
            flat[i] = kept - eps
            minus = _scalar_projection(fn, leaves, weights)[0].item()
            flat[i] = kept
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if (error > 0).any() or not np.isfinite(analytic).all():
            worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(error), np.inf, error))),
                                     numeric.shape)
            raise GradcheckError(
                f"gradcheck failed for {op_name}: input {index} (shape {leaf.shape}), worst "
                f"element {tuple(int(i) for i in worst)}: analytic {analytic[worst]!r}, "
                f"numeric {numeric[worst]!r} (atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True
