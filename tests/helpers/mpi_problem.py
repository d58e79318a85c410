"""The small problem every distributed test shares: data, initial weights, uneven shards.

Imported by the tests (for the numpy references) and by the MPI programs they launch.
"""

from __future__ import annotations

import numpy as np

FEATURES, HIDDEN, EXAMPLES = 5, 7, 23

#: Rank boundaries of the global batch of 23 per world size: deliberately uneven
#: (8 vs 15; 4, 7, 12), not the near-even split the trainer uses.
SHARDS = {1: [0, 23], 2: [0, 8, 23], 3: [0, 4, 11, 23]}


def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    mask = rng.random(EXAMPLES) < 0.5
    mask[::2] = True  # every micro-batch keeps an example (an all-masked batch has no mean)
    return {
        "x": rng.normal(size=(EXAMPLES, FEATURES)),
        "y": (rng.random((EXAMPLES, 1)) < 0.5).astype(np.float64),
        "weight": rng.uniform(0.2, 3.0, size=EXAMPLES),
        "mask": mask,
        "w1": rng.normal(size=(HIDDEN, FEATURES)) * 0.5, "b1": rng.normal(size=HIDDEN) * 0.1,
        "w2": rng.normal(size=(1, HIDDEN)) * 0.5, "b2": rng.normal(size=1) * 0.1,
    }


def shard(world_size: int, rank: int) -> slice:
    bounds = SHARDS[world_size]
    return slice(bounds[rank], bounds[rank + 1])


def micro_batches(part: slice) -> list[slice]:
    """A rank's shard in two uneven micro-batches (one third, two thirds)."""
    middle = part.start + max(1, (part.stop - part.start) // 3)
    return [slice(part.start, middle), slice(middle, part.stop)]


def raw_gradient(d: dict[str, np.ndarray], rows: slice, coefficients: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """sum_i c_i * d l_i / d theta, by hand in numpy, for tanh MLP + BCE with logits."""
    x, y = d["x"][rows], d["y"][rows]
    a1 = np.tanh(x @ d["w1"].T + d["b1"])
    z2 = a1 @ d["w2"].T + d["b2"]
    dz2 = (1 / (1 + np.exp(-z2)) - y) * coefficients.reshape(-1, 1)
    dz1 = (dz2 @ d["w2"]) * (1 - a1 ** 2)
    return {"w1": dz1.T @ x, "b1": dz1.sum(0), "w2": dz2.T @ a1, "b2": dz2.sum(0)}
