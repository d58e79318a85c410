"""Which numpy dtypes a tensor may hold, and the default floating dtype.

As in torch: Python lists and scalars take the default dtype (float32 unless
``set_default_dtype`` says otherwise), a floating ndarray keeps its dtype, integer
and bool arrays stay as they are (class labels, masks).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.errors import InvalidTypeError

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

_default_dtype = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The dtype given to tensors built from Python numbers and lists.

    >>> get_default_dtype()
    dtype('float32')
    """
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype of tensors built from Python numbers and lists.

    >>> set_default_dtype("float64"); get_default_dtype()
    dtype('float64')
    >>> set_default_dtype("float32")
    """
    global _default_dtype
    _default_dtype = as_float_dtype(dtype)


def as_float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy floating dtype, or a ``TypeError`` naming the choices."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as err:
        raise InvalidTypeError(f"unknown dtype {dtype!r}; use one of float16, float32, "
                               "float64") from err
    if resolved not in FLOAT_DTYPES:
        raise InvalidTypeError(
            f"dtype {resolved} is not a floating dtype minidl computes in; "
            "use one of float16, float32, float64"
        )
    return resolved


def check_supported(array: np.ndarray, given: Any) -> None:
    """Raise ``TypeError`` unless ``array`` holds real numbers (bool, int or float)."""
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"minidl tensors hold real numbers (bool, int or float); got {type(given).__name__} "
            f"of dtype {array.dtype}. Convert it first, e.g. np.asarray(x, dtype=np.float32)."
        )
    if array.dtype.kind == "f" and array.dtype not in FLOAT_DTYPES:
        raise InvalidTypeError(f"dtype {array.dtype} is not supported; use float16, float32 or "
                               "float64")


_FLOAT16, _FLOAT32 = np.dtype(np.float16), np.dtype(np.float32)


def accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype float sums of ``dtype`` accumulate in: float32 for float16, as torch does."""
    return _FLOAT32 if dtype.char == "e" else dtype  # "e": float16, in either byte order


def accurate_sum(array: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """``array.sum`` in the ``accumulator`` dtype: float16 sums come back as float32.

    numpy adds float16 rows one at a time along a non-contiguous axis, so a bias
    gradient summed over 65,536 examples would keep only the first few thousand, and
    a sum past 65,504 would be inf before anyone could scale it. Callers cast back
    once they have scaled (a mean) or when the value must have the input's dtype.
    """
    work = accumulator(array.dtype) if array.dtype.kind == "f" else None  # ints: numpy's
    return np.asarray(array.sum(axis=axis, keepdims=keepdims, dtype=work))
