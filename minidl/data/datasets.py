"""Built-in toy and real datasets for trying out models.

Every loader returns ``(X, y)``: ``X`` is a float64 array of shape ``(m, n_features)`` and ``y``
an int64 array of shape ``(m,)`` holding class labels ``0..k-1``. The synthetic generators
draw only from ``np.random.default_rng(seed)``, so the same seed always gives the same data
and nothing touches numpy's global random state. Samples are ordered by class; shuffle (or
let the training loop shuffle) before splitting.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

import numpy as np

from minidl.errors import DataError

ArrayPair = tuple[np.ndarray, np.ndarray]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise DataError(message)


def planar(*, n: int = 400, seed: int = 1) -> ArrayPair:
    """Andrew Ng's Coursera "flower": two interleaved 4-petal classes in 2-D.

    Same construction as the course's ``load_planar_dataset`` (``n // 2`` points per class,
    petal radius 4), but drawn from ``default_rng(seed)`` instead of ``np.random.seed``.
    Not linearly separable, which is the point: logistic regression fails, a small MLP works.

    >>> X, y = planar(); X.shape
    (400, 2)
    """
    _check(n >= 2, f"planar: n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    per_class, radius = n // 2, 4.0
    xs, ys = [], []
    for j in range(2):
        # Draw t's noise before r's, exactly in the course's order, so results are reproducible
        # against an independent re-implementation with the same generator.
        t = np.linspace(j * 3.12, (j + 1) * 3.12, per_class) + rng.standard_normal(per_class) * 0.2
        r = radius * np.sin(4 * t) + rng.standard_normal(per_class) * 0.2
        xs.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        ys.append(np.full(per_class, j))
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.int64)


def spirals(*, n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> ArrayPair:
    """CS231n-style spiral arms, one arm per class (``n // classes`` points each).

    >>> X, y = spirals(); X.shape, int(y.max())
    ((300, 2), 2)
    """
    _check(classes >= 2, f"spirals: classes must be at least 2, got {classes}")
    _check(n >= classes, f"spirals: n must be at least classes ({classes}), got {n}")
    _check(noise >= 0, f"spirals: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    per_class = n // classes
    xs, ys = [], []
    for j in range(classes):
        r = np.linspace(0.0, 1.0, per_class)
        t = np.linspace(j * 4, (j + 1) * 4, per_class) + rng.standard_normal(per_class) * noise
        xs.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        ys.append(np.full(per_class, j))
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.int64)


def moons(*, n: int = 400, noise: float = 0.1, seed: int = 0) -> ArrayPair:
    """Two interleaving half circles, like scikit-learn's ``make_moons`` (unshuffled).

    The upper moon is class 0, the lower (shifted) one class 1; gaussian noise of standard
    deviation ``noise`` is added to every coordinate.

    >>> X, y = moons(); X.shape, np.bincount(y).tolist()
    ((400, 2), [200, 200])
    """
    _check(n >= 2, f"moons: n must be at least 2, got {n}")
    _check(noise >= 0, f"moons: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    a = np.linspace(0.0, np.pi, n_outer)
    b = np.linspace(0.0, np.pi, n_inner)
    outer = np.column_stack([np.cos(a), np.sin(a)])
    inner = np.column_stack([1.0 - np.cos(b), 0.5 - np.sin(b)])
    X = np.concatenate([outer, inner]) + rng.standard_normal((n, 2)) * noise
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    return X.astype(np.float64), y.astype(np.int64)


def xor(*, n: int = 400, noise: float = 0.1, seed: int = 0) -> ArrayPair:
    """Four gaussian blobs at (+-1, +-1); the label is the XOR of the two coordinate signs.

    Blobs at (1, 1) and (-1, -1) are class 0, those at (1, -1) and (-1, 1) class 1. The
    ``n`` points are split as evenly as possible over the four blobs.

    >>> X, y = xor(); X.shape, np.bincount(y).tolist()
    ((400, 2), [200, 200])
    """
    _check(n >= 4, f"xor: n must be at least 4, got {n}")
    _check(noise >= 0, f"xor: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    centers = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    counts = [n // 4 + (i < n % 4) for i in range(4)]
    X = np.repeat(centers, counts, axis=0) + rng.standard_normal((n, 2)) * noise
    y = np.repeat([0, 0, 1, 1], counts)
    return X.astype(np.float64), y.astype(np.int64)


@lru_cache(maxsize=1)
def _read_digits() -> ArrayPair:
    source = resources.files("minidl.data") / "digits.csv.gz"
    try:
        with source.open("rb") as raw, gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    except FileNotFoundError as exc:
        raise DataError(
            "digits: data file minidl/data/digits.csv.gz is missing from this installation"
        ) from exc
    return table[:, :-1], table[:, -1].astype(np.int64)


def digits(*, seed: int = 0) -> ArrayPair:
    """The UCI optical handwritten digits: 1,797 8x8 images, 64 pixel features in 0..16.

    Labels are the digits 0..9 (about 180 images each). The data is fixed; ``seed`` is
    accepted (and ignored) only so every built-in loader can be called the same way.
    Source: UCI ML Repository, Alpaydin & Kaynak (1998), CC BY 4.0, doi:10.24432/C50P49
    (see ``DIGITS_LICENSE.txt``).

    >>> X, y = digits(); X.shape, y.shape, int(X.max())
    ((1797, 64), (1797,), 16)
    """
    del seed
    X, y = _read_digits()
    # The parsed file is cached; hand out copies so callers may modify their arrays freely.
    return X.copy(), y.copy()


DATASETS: dict[str, Callable[..., ArrayPair]] = {
    "planar": planar,
    "spirals": spirals,
    "moons": moons,
    "xor": xor,
    "digits": digits,
}


def load_builtin(name: str, **kwargs: object) -> ArrayPair:
    """Load the built-in dataset called ``name``, passing ``kwargs`` (e.g. ``seed``) through.

    >>> X, y = load_builtin("moons", n=100, seed=3); X.shape
    (100, 2)
    """
    from .options import validate_options  # options imports errors only; no cycle

    allowed = ", ".join(DATASETS)
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {allowed}")
    try:
        options = validate_options(name, dict(kwargs))
    except DataError as exc:  # name the dataset as well as the option
        raise DataError(f"dataset {name!r}: {exc}") from None
    return DATASETS[name](**options)
