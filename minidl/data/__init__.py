"""Data: built-in datasets, CSV/NPZ loaders, ``Dataset``, ``DataLoader``, splitting."""

from minidl.data.datasets import DATASETS, digits, load_builtin, moons, planar, spirals, xor
from minidl.data.files import load_csv, load_npz
from minidl.data.loader import DataLoader, Dataset, train_val_split
from minidl.errors import DataError

__all__ = ["DATASETS", "DataError", "DataLoader", "Dataset", "digits", "load_builtin",
           "load_csv", "load_npz", "moons", "planar", "spirals", "train_val_split", "xor"]
