"""Tests for the built-in datasets in minidl.data.datasets."""

import doctest

import numpy as np
import pytest

import minidl.data.datasets as datasets_module
from minidl.data.datasets import DATASETS, digits, load_builtin, moons, planar, spirals, xor
from minidl.errors import DataError

SYNTHETIC = {"planar": planar, "spirals": spirals, "moons": moons, "xor": xor}


def course_planar(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coursera's load_planar_dataset, re-typed from the course with default_rng swapped in."""
    rng = np.random.default_rng(seed)
    N, D, a = n // 2, 2, 4
    X = np.zeros((2 * N, D))
    Y = np.zeros((2 * N, 1), dtype="uint8")
    for j in range(2):
        ix = range(N * j, N * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rng.standard_normal(N) * 0.2
        r = a * np.sin(4 * t) + rng.standard_normal(N) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X, Y.ravel()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_shapes_dtypes_and_labels(name):
    X, y = DATASETS[name]()
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.ndim == 2 and y.shape == (X.shape[0],)
    assert np.all(np.isfinite(X))
    k = int(y.max()) + 1
    assert y.min() == 0 and set(np.unique(y)) == set(range(k))


@pytest.mark.parametrize(
    "name, shape, counts",
    [
        ("planar", (400, 2), [200, 200]),
        ("spirals", (300, 2), [100, 100, 100]),
        ("moons", (400, 2), [200, 200]),
        ("xor", (400, 2), [200, 200]),
    ],
)
def test_default_sizes_and_balance(name, shape, counts):
    X, y = DATASETS[name]()
    assert X.shape == shape
    assert np.bincount(y).tolist() == counts


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_same_seed_same_data_different_seed_different_data(name):
    make = SYNTHETIC[name]
    X1, y1 = make(seed=5)
    X2, y2 = make(seed=5)
    X3, _ = make(seed=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_global_random_state_untouched(name):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    SYNTHETIC[name](seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("seed", [1, 7])
def test_planar_matches_course_construction(seed):
    X, y = planar(seed=seed)
    X_ref, y_ref = course_planar(400, seed)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_planar_geometry():
    X, y = planar()
    assert np.bincount(y).tolist() == [200, 200]
    radius = np.linalg.norm(X, axis=1)
    # |r| = |4 sin(4t) + 0.2 noise|: petals reach close to 4, noise barely beyond.
    assert radius.max() < 4 + 5 * 0.2
    assert radius.max() > 3.5
    # The first half is class 0, the second class 1, as in the course.
    assert np.all(y[:200] == 0) and np.all(y[200:] == 1)


def test_planar_odd_n_uses_n_floor_div_2_per_class():
    X, y = planar(n=101)
    assert X.shape == (100, 2) and np.bincount(y).tolist() == [50, 50]


def test_spirals_options():
    X, y = spirals(n=200, classes=4, noise=0.0)
    assert X.shape == (200, 2) and np.bincount(y).tolist() == [50, 50, 50, 50]
    # Without noise every arm starts at the origin and ends on the unit circle.
    norms = np.linalg.norm(X, axis=1)
    assert norms.max() == pytest.approx(1.0)
    assert norms.min() == pytest.approx(0.0)


def test_moons_noise_free_geometry():
    X, y = moons(n=101, noise=0.0)
    assert X.shape == (101, 2) and np.bincount(y).tolist() == [50, 51]
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0)


def test_xor_labels_follow_sign_rule():
    X, y = xor(n=403, noise=0.1)
    assert X.shape == (403, 2)
    # With small noise no point crosses an axis, so the label is the XOR of the signs.
    np.testing.assert_array_equal(y, ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64))


def test_digits_real_content():
    X, y = digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16
    np.testing.assert_array_equal(X, np.round(X))  # counts of "on" pixels per 4x4 block
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 1797
    assert counts.min() >= 170 and counts.max() <= 190
    # First image of the file is a "0" with this top row.
    assert y[0] == 0
    assert X[0, :8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_returns_independent_copies():
    X, y = digits()
    X[:] = -1
    y[:] = -1
    X2, y2 = digits(seed=3)
    assert X2.min() == 0 and y2.min() == 0


def test_load_builtin_dispatches_and_passes_kwargs():
    X, y = load_builtin("spirals", n=90, classes=3, seed=2)
    X_ref, y_ref = spirals(n=90, classes=3, seed=2)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert sorted(DATASETS) == ["digits", "moons", "planar", "spirals", "xor"]


def test_load_builtin_unknown_name_lists_choices():
    with pytest.raises(DataError) as info:
        load_builtin("mnist")
    message = str(info.value)
    assert "'mnist'" in message
    for name in ("planar", "spirals", "moons", "xor", "digits"):
        assert name in message


def test_load_builtin_unknown_option():
    with pytest.raises(DataError, match=r"dataset 'xor'.*accepted options: n, noise, seed"):
        load_builtin("xor", classes=3)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: planar(n=1), "planar: n must be at least 2"),
        (lambda: spirals(classes=1), "classes must be at least 2"),
        (lambda: moons(noise=-1.0), "noise must be >= 0"),
        (lambda: xor(n=3), "xor: n must be at least 4"),
    ],
)
def test_invalid_arguments(call, fragment):
    with pytest.raises(DataError, match=fragment):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(datasets_module)
    assert result.attempted > 0 and result.failed == 0
