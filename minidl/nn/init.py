"""Weight initialization, as ``torch.nn.init``: functions that fill a tensor in place
(and return it), drawing from an explicit ``numpy.random.Generator`` (or a seed).

Each draws ``standard_normal`` or ``uniform`` in float64 and rounds once to the
tensor's dtype, so float16, float32 and float64 weights from one seed agree up to
rounding. Fans follow torch: for a weight of shape (out, in, *kernel),
fan_in = in * prod(kernel) and fan_out = out * prod(kernel).

>>> import numpy as np, minidl as mdl
>>> w = mdl.nn.Parameter(np.zeros((64, 32)))
>>> _ = mdl.nn.init.kaiming_normal_(w, generator=np.random.default_rng(0))
>>> round(float(w.data.std()), 2)   # sqrt(2 / fan_in) = 0.25
0.25
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from minidl.errors import InvalidTypeError, InvalidValueError, ShapeError
from minidl.tensor import Tensor

Generator = np.random.Generator | int | None

__all__ = ["INITIALIZERS", "calculate_gain", "constant_", "he_normal_", "he_uniform_",
           "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_", "small_normal_",
           "uniform_", "xavier_normal_", "xavier_uniform_", "glorot_normal_", "glorot_uniform_",
           "zeros_"]


def _fill(tensor: Tensor, values: np.ndarray | float) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise InvalidTypeError(f"nn.init fills a minidl Tensor or Parameter, got "
                               f"{type(tensor).__name__}")
    tensor.data[...] = values  # in place: optimizers and modules keep the same array
    return tensor


def _rng(generator: Generator) -> np.random.Generator:
    return np.random.default_rng(generator)  # a Generator is returned unchanged


def _fans(tensor: Tensor) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ShapeError(f"fan in and fan out need a weight of at least 2 dimensions "
                         f"(out, in, ...), got shape {shape}; use normal_ or uniform_ here")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _gain_squared(nonlinearity: str, param: float | None = None) -> float:
    # Squared, so that He's std is sqrt(2 / fan_in) exactly as the course writes it
    # (sqrt(2) / sqrt(fan_in) can differ in the last bit).
    squares = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 25.0 / 9, "relu": 2.0}
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return 2.0 / (1 + slope ** 2)
    if nonlinearity not in squares:
        raise InvalidValueError(f"unknown nonlinearity {nonlinearity!r}; use one of "
                                f"{', '.join([*squares, 'leaky_relu'])}")
    return squares[nonlinearity]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain torch recommends for a nonlinearity (relu sqrt(2), tanh 5/3, ...);
    ``param`` is leaky_relu's negative slope.

    >>> calculate_gain("relu") == 2 ** 0.5, calculate_gain("tanh")
    (True, 1.6666666666666667)
    """
    return math.sqrt(_gain_squared(nonlinearity, param))


# ---- constants and plain distributions -------------------------------------------------

def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0.

    >>> import minidl as mdl
    >>> zeros_(mdl.nn.Parameter([1.0, 2.0])).data
    array([0., 0.], dtype=float32)
    """
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1.

    >>> import minidl as mdl
    >>> ones_(mdl.nn.Parameter([5.0])).data
    array([1.], dtype=float32)
    """
    return _fill(tensor, 1.0)


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with ``value``.

    >>> import minidl as mdl
    >>> constant_(mdl.nn.Parameter([5.0]), 0.5).data
    array([0.5], dtype=float32)
    """
    return _fill(tensor, float(value))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Generator = None) -> Tensor:
    """Draw from N(mean, std^2).

    >>> import numpy as np, minidl as mdl
    >>> w = normal_(mdl.nn.Parameter(np.zeros(10_000)), std=2.0, generator=0)
    >>> round(float(w.data.std()), 1)
    2.0
    """
    if not std >= 0:
        raise InvalidValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, _rng(generator).standard_normal(tensor.shape) * std + mean)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: Generator = None) -> Tensor:
    """Draw from U(a, b).

    >>> import numpy as np, minidl as mdl
    >>> w = uniform_(mdl.nn.Parameter(np.zeros(1000)), -0.5, 0.5, generator=0)
    >>> bool(w.data.min() >= -0.5 and w.data.max() < 0.5)
    True
    """
    if not a <= b:
        raise InvalidValueError(f"uniform_: need a <= b, got a = {a}, b = {b}")
    return _fill(tensor, _rng(generator).uniform(a, b, size=tensor.shape))


def small_normal_(tensor: Tensor, scale: float = 0.01, generator: Generator = None) -> Tensor:
    """The course's small random init: ``np.random.randn(*shape) * 0.01``. Breaks the
    symmetry of equal weights while keeping tanh/sigmoid units out of saturation.

    >>> import numpy as np, minidl as mdl
    >>> w = small_normal_(mdl.nn.Parameter(np.zeros((100, 100))), generator=0)
    >>> round(float(w.data.std()), 3)
    0.01
    """
    return _fill(tensor, _rng(generator).standard_normal(tensor.shape) * scale)


# ---- scaled by the fans ------------------------------------------------------------------

def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010).

    >>> import numpy as np, minidl as mdl
    >>> w = xavier_normal_(mdl.nn.Parameter(np.zeros((300, 200))), generator=0)
    >>> round(float(w.data.std() / np.sqrt(2 / 500)), 1)
    1.0
    """
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).standard_normal(tensor.shape) * std)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Generator = None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).

    >>> import numpy as np, minidl as mdl
    >>> w = xavier_uniform_(mdl.nn.Parameter(np.zeros((300, 200))), generator=0)
    >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 500))
    True
    """
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).uniform(-bound, bound, size=tensor.shape))


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise InvalidValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return math.sqrt(_gain_squared(nonlinearity, a) / fan)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "relu", generator: Generator = None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan), sqrt(2 / fan_in) for relu (He et al. 2015,
    arXiv:1502.01852). ``a`` is leaky_relu's negative slope.

    >>> import numpy as np, minidl as mdl
    >>> w = kaiming_normal_(mdl.nn.Parameter(np.zeros((300, 200))), generator=0)
    >>> round(float(w.data.std() / np.sqrt(2 / 200)), 1)
    1.0
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return _fill(tensor, _rng(generator).standard_normal(tensor.shape) * std)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "relu", generator: Generator = None) -> Tensor:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He et al. 2015).

    >>> import numpy as np, minidl as mdl
    >>> w = kaiming_uniform_(mdl.nn.Parameter(np.zeros((300, 200))), generator=0)
    >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 200))
    True
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return _fill(tensor, _rng(generator).uniform(-bound, bound, size=tensor.shape))


# The course's and Keras' names.
glorot_normal_, glorot_uniform_ = xavier_normal_, xavier_uniform_
he_normal_, he_uniform_ = kaiming_normal_, kaiming_uniform_

#: Weight initializers by the names ``nn.Linear(init=...)`` and ``model.init`` accept.
INITIALIZERS: dict[str, Callable[..., Tensor]] = {
    "xavier": xavier_normal_, "xavier_uniform": xavier_uniform_,
    "he": kaiming_normal_, "he_uniform": kaiming_uniform_,
    "small": small_normal_,
}
