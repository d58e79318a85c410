"""Dataset, DataLoader and train_val_split: sizes, seeded shuffling, dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.data import DataError, DataLoader, Dataset, train_val_split

M = 23


def dataset(m: int = M, features: int = 3) -> Dataset:
    # Row i of the features starts with i, so every batch says which examples it holds.
    x = np.arange(m * features, dtype=np.float64).reshape(m, features) / features
    return Dataset(x, np.arange(m))


def ids(x) -> np.ndarray:
    return np.round(np.asarray(x.data)[:, 0]).astype(int)


def epoch_order(loader: DataLoader) -> np.ndarray:
    return np.concatenate([y.data for _, y in loader])


# ---- Dataset -----------------------------------------------------------------------------

def test_dataset_length_and_indexing():
    x = np.random.default_rng(0).standard_normal((5, 2))
    y = np.array([0, 1, 0, 1, 1])
    ds = Dataset(x, y)
    assert len(ds) == 5
    row_x, row_y = ds[3]
    np.testing.assert_array_equal(row_x, x[3])
    assert row_y == 1
    batch_x, batch_y = ds[np.array([4, 0])]
    np.testing.assert_array_equal(batch_x, x[[4, 0]])
    np.testing.assert_array_equal(batch_y, y[[4, 0]])
    slice_x, slice_y = ds[1:3]
    np.testing.assert_array_equal(slice_x, x[1:3])
    np.testing.assert_array_equal(slice_y, y[1:3])


def test_dataset_accepts_lists():
    ds = Dataset([[1.0, 2.0], [3.0, 4.0]], [0, 1])
    assert len(ds) == 2 and ds.features.shape == (2, 2)


@pytest.mark.parametrize("features, targets", [
    (np.zeros((5, 2)), np.zeros(4)),
    (np.zeros((3, 2)), np.zeros((4, 1))),
    (np.zeros((3, 2)), np.float64(1.0)),
    (np.float64(1.0), np.zeros(3)),
])
def test_dataset_mismatched_lengths_raise(features, targets):
    with pytest.raises(DataError, match="shapes") as info:
        Dataset(features, targets)
    assert isinstance(info.value, ValueError)


# ---- DataLoader: sizes -------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, drop_last, sizes", [
    (5, False, [5, 5, 5, 5, 3]),
    (5, True, [5, 5, 5, 5]),
    (23, False, [23]),
    (23, True, [23]),
    (30, False, [23]),
    (30, True, []),
    (1, True, [1] * 23),
    (None, False, [23]),
    (None, True, [23]),
])
def test_batch_sizes(batch_size, drop_last, sizes):
    loader = DataLoader(dataset(), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert [len(y) for _, y in batches] == sizes
    assert [x.shape for x, _ in batches] == [(n, 3) for n in sizes]
    assert len(loader) == len(sizes)


def test_unshuffled_order_is_the_dataset_order():
    loader = DataLoader(dataset(), batch_size=4)
    np.testing.assert_array_equal(epoch_order(loader), np.arange(M))
    for x, y in loader:
        np.testing.assert_array_equal(ids(x), y.data)  # features travel with their targets


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "8"])
def test_invalid_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(dataset(), batch_size=batch_size)


def test_empty_dataset_gives_no_batches():
    empty = Dataset(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    for loader in (DataLoader(empty), DataLoader(empty, batch_size=4, shuffle=True)):
        assert len(loader) == 0
        assert list(loader) == []


# ---- DataLoader: shuffling ---------------------------------------------------------------

def test_shuffle_is_a_permutation_covering_every_example_once_per_epoch():
    loader = DataLoader(dataset(), batch_size=4, shuffle=True, seed=1)
    for _ in range(3):
        order = epoch_order(loader)
        np.testing.assert_array_equal(np.sort(order), np.arange(M))
        assert not np.array_equal(order, np.arange(M))
        for x, y in loader:
            np.testing.assert_array_equal(ids(x), y.data)


def test_shuffle_reproducible_with_the_same_seed():
    first = DataLoader(dataset(), batch_size=4, shuffle=True, seed=7)
    second = DataLoader(dataset(), batch_size=4, shuffle=True, seed=7)
    for _ in range(3):  # epoch by epoch
        np.testing.assert_array_equal(epoch_order(first), epoch_order(second))


def test_shuffle_order_is_numpy_permutation_of_the_seed():
    loader = DataLoader(dataset(), batch_size=5, shuffle=True, seed=11)
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(epoch_order(loader), rng.permutation(M))
    np.testing.assert_array_equal(epoch_order(loader), rng.permutation(M))


def test_different_seeds_give_different_orders():
    a = DataLoader(dataset(), batch_size=4, shuffle=True, seed=0)
    b = DataLoader(dataset(), batch_size=4, shuffle=True, seed=1)
    assert not np.array_equal(epoch_order(a), epoch_order(b))


def test_different_epochs_give_different_orders():
    loader = DataLoader(dataset(), batch_size=4, shuffle=True, seed=3)
    orders = [tuple(epoch_order(loader)) for _ in range(4)]
    assert len(set(orders)) == 4


def test_shuffle_with_drop_last_drops_only_the_short_tail():
    loader = DataLoader(dataset(), batch_size=5, shuffle=True, drop_last=True, seed=2)
    order = epoch_order(loader)
    assert len(order) == 20 and len(set(order.tolist())) == 20
    np.testing.assert_array_equal(order, np.random.default_rng(2).permutation(M)[:20])


def test_unshuffled_loader_ignores_seed():
    a = DataLoader(dataset(), batch_size=4, seed=0)
    b = DataLoader(dataset(), batch_size=4, seed=99)
    np.testing.assert_array_equal(epoch_order(a), epoch_order(b))


# ---- DataLoader: dtypes ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float16"])
def test_features_cast_integer_labels_stay_integer(dtype):
    x = np.random.default_rng(0).standard_normal((6, 2))
    labels = np.array([0, 2, 1, 1, 0, 2], dtype=np.int64)
    loader = DataLoader(Dataset(x, labels), batch_size=4, dtype=dtype)
    batches = list(loader)
    for (bx, by), rows in zip(batches, (slice(0, 4), slice(4, 6))):
        assert isinstance(bx, mdl.Tensor) and isinstance(by, mdl.Tensor)
        assert bx.dtype == np.dtype(dtype)
        assert by.dtype == np.int64
        np.testing.assert_array_equal(bx.data, x[rows].astype(dtype))
        np.testing.assert_array_equal(by.data, labels[rows])
        assert not bx.requires_grad


def test_default_dtype_is_float32_and_float_targets_follow_it():
    x = np.ones((4, 2), dtype=np.float64)
    y = np.linspace(0, 1, 4).reshape(4, 1)
    bx, by = next(iter(DataLoader(Dataset(x, y))))
    assert bx.dtype == np.float32 and by.dtype == np.float32
    np.testing.assert_array_equal(by.data, y.astype(np.float32))


def test_integer_features_are_cast():
    x = np.arange(8, dtype=np.int32).reshape(4, 2)
    bx, _ = next(iter(DataLoader(Dataset(x, np.zeros(4, dtype=np.int64)), dtype=np.float64)))
    assert bx.dtype == np.float64
    np.testing.assert_array_equal(bx.data, x.astype(np.float64))


def test_loader_batches_train_a_loss():
    x = np.random.default_rng(0).standard_normal((8, 3))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    loader = DataLoader(Dataset(x, labels), batch_size=4)
    layer = mdl.nn.Linear(3, 3, generator=0)
    for bx, by in loader:
        cost = mdl.nn.CrossEntropyLoss()(layer(bx), by)
        assert np.isfinite(cost.item())


# ---- train_val_split ---------------------------------------------------------------------

@pytest.mark.parametrize("m, fraction, n_val", [(23, 0.2, 5), (10, 0.25, 2), (100, 0.1, 10),
                                                (9, 1 / 3, 3), (10, 0.0, 0)])
def test_split_sizes(m, fraction, n_val):
    train, val = train_val_split(dataset(m), fraction, seed=0)
    assert len(val) == n_val and len(train) == m - n_val


def test_split_is_disjoint_covering_and_consistent():
    ds = dataset(40)
    train, val = train_val_split(ds, 0.3, seed=5)
    train_ids, val_ids = train.targets, val.targets
    assert set(train_ids.tolist()).isdisjoint(val_ids.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([train_ids, val_ids])), np.arange(40))
    for part in (train, val):
        np.testing.assert_array_equal(np.round(part.features[:, 0]).astype(int), part.targets)


def test_split_is_seeded():
    ds = dataset(40)
    a_train, a_val = train_val_split(ds, 0.25, seed=1)
    b_train, b_val = train_val_split(ds, 0.25, seed=1)
    _, c_val = train_val_split(ds, 0.25, seed=2)
    np.testing.assert_array_equal(a_val.targets, b_val.targets)
    np.testing.assert_array_equal(a_train.targets, b_train.targets)
    assert not np.array_equal(np.sort(a_val.targets), np.sort(c_val.targets))
    permutation = np.random.default_rng(1).permutation(40)
    np.testing.assert_array_equal(a_val.targets, permutation[:10])
    np.testing.assert_array_equal(a_train.targets, permutation[10:])


def test_empty_validation_split_can_be_loaded():
    _, val = train_val_split(dataset(10), 0.0)
    assert list(DataLoader(val)) == []


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_fraction_out_of_range_raises(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(dataset(), fraction)
