"""Hypothesis strategies for op tests: shapes, dtypes, and arrays kept away from kinks.

Shapes are drawn by hypothesis; values come from a numpy generator seeded by a
drawn integer, so every example is reproducible and values can be placed
deliberately (away from 0 for relu/abs, without ties for max, positive for log).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: Every property-based op test: modest, so the suite stays fast.
OP_SETTINGS = settings(max_examples=30, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])

float_dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_pair(max_dims: int = 3) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Two shapes that broadcast together (size-1 axes and missing axes on either side)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims,
                                             min_side=1, max_side=4).map(lambda b: b.input_shapes)


def make(kind: str, shape: tuple[int, ...], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` whose values suit ``kind``.

    normal: N(0, 1); nonzero: |x| in [0.3, 2] (away from relu/abs kinks);
    positive: [0.3, 2] (log, sqrt, pow bases); distinct: no two values closer than
    0.15 (no ties for max); unit: (-0.95, 0.95); lowfrac / highfrac: an integer in
    [-3, 2] plus a fraction in [0.05, 0.4] / [0.55, 0.9], so a lowfrac and a highfrac
    value (or a lowfrac value and any k + 0.5) are never closer than 0.1 (maximum).
    """
    if kind == "normal":
        values = rng.standard_normal(shape)
    elif kind == "nonzero":
        values = rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif kind == "positive":
        values = rng.uniform(0.3, 2.0, shape)
    elif kind == "distinct":
        n = int(np.prod(shape))
        values = ((rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n))
        values = values.reshape(shape)
    elif kind in ("lowfrac", "highfrac"):
        low, high = (0.05, 0.4) if kind == "lowfrac" else (0.55, 0.9)
        values = rng.integers(-3, 3, shape) + rng.uniform(low, high, shape)
    elif kind == "unit":
        values = rng.uniform(-0.95, 0.95, shape)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return np.asarray(values, dtype=dtype)


@st.composite
def arrays(draw: Any, shape: tuple[int, ...], dtype: Any, kind: str = "normal") -> np.ndarray:
    """One array of ``shape``/``dtype`` (see ``make`` for ``kind``)."""
    return make(kind, shape, dtype, np.random.default_rng(draw(seeds)))
