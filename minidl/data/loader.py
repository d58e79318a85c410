"""``Dataset``, ``DataLoader`` and ``train_val_split``: batches from arrays, seeded.

Shuffling draws from a ``numpy.random.Generator`` the loader owns, never from
numpy's global state, so the same seed gives the same batches.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from minidl.errors import DataError, InvalidValueError
from minidl.tensor import Tensor, from_numpy


class Dataset:
    """Features and targets as arrays of the same length; indexable, sized.

    >>> import numpy as np
    >>> ds = Dataset(np.zeros((5, 2)), np.arange(5))
    >>> len(ds), ds[1:3][1]
    (5, array([1, 2]))
    """

    def __init__(self, features: Any, targets: Any) -> None:
        features, targets = np.asarray(features), np.asarray(targets)
        if features.ndim == 0 or targets.ndim == 0 or len(features) != len(targets):
            raise DataError(f"features and targets need one row per example; got shapes "
                            f"{features.shape} and {targets.shape}")
        self.features, self.targets = features, targets

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.features[index], self.targets[index]


class DataLoader:
    """Mini-batches of a ``Dataset`` as ``(x, y)`` tensors, as ``torch.utils.data.DataLoader``.

    ``batch_size=None`` gives the full batch. Features are cast to ``dtype``;
    integer targets stay integer (class labels).

    >>> import numpy as np
    >>> loader = DataLoader(Dataset(np.zeros((5, 2)), np.arange(5)), batch_size=2)
    >>> [len(y) for _, y in loader]
    [2, 2, 1]
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = None, shuffle: bool = False,
                 drop_last: bool = False, seed: np.random.Generator | int | None = 0,
                 dtype: Any = np.float32) -> None:
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise InvalidValueError("batch_size must be a positive integer or None, got "
                                    f"{batch_size!r}")
        self.dataset, self.shuffle, self.drop_last = dataset, shuffle, drop_last
        # max(.., 1): a full-batch loader over an empty dataset (e.g. the validation
        # half of train_val_split(ds, 0.0)) yields no batches instead of dividing by 0.
        self.batch_size = batch_size if batch_size is not None else max(len(dataset), 1)
        self.generator = np.random.default_rng(seed)  # a seed or a Generator to share
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        m = len(self.dataset)
        order = self.generator.permutation(m) if self.shuffle else np.arange(m)
        for start in range(0, m, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            x, y = self.dataset[index]
            if y.dtype.kind == "f":
                y = y.astype(self.dtype)
            # Indexing already copied the rows: wrap them instead of copying again.
            batch = _batch_tensor(x.astype(self.dtype, copy=False)), _batch_tensor(y)
            del x, y  # only the tensors hold fresh rows: in-place safety needs no CRC
            yield batch


def _batch_tensor(array: np.ndarray) -> Tensor:
    """A batch array as a tensor: like ``from_numpy``, but rows the indexing copied (no
    view of anyone's memory) are marked as held by the tensor alone (``minidl.inplace``)."""
    tensor = from_numpy(array)
    tensor._external = array.base is not None
    return tensor


def train_val_split(dataset: Dataset, val_fraction: float, seed: int = 0
                    ) -> tuple[Dataset, Dataset]:
    """Shuffle once with ``seed`` and split off ``val_fraction`` of the examples.

    >>> import numpy as np
    >>> train, val = train_val_split(Dataset(np.zeros((10, 1)), np.arange(10)), 0.2)
    >>> len(train), len(val)
    (8, 2)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InvalidValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_val = val_split_size(len(dataset), val_fraction)
    val_index, train_index = order[:n_val], order[n_val:]
    return (Dataset(*dataset[train_index]), Dataset(*dataset[val_index]))


def val_split_size(m: int, val_fraction: float) -> int:
    """How many of ``m`` examples ``train_val_split`` holds out for ``val_fraction``.

    >>> val_split_size(400, 0.2), val_split_size(400, 0.001)
    (80, 0)
    """
    return int(round(m * val_fraction))
