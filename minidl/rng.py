"""Randomness comes from explicit ``numpy.random.Generator``s, never numpy's global state."""

from __future__ import annotations

import numpy as np

Seed = np.random.Generator | int | None


def as_generator(seed: Seed) -> np.random.Generator:
    """The Generator given, or a new one from a seed; None draws fresh OS entropy.

    >>> bool(as_generator(0).integers(10) == as_generator(0).integers(10))
    True
    """
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
