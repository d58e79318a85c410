"""Will it fit? The memory a run needs, estimated before anything is allocated.

``model.hidden = [1000000000000]`` or ``data.options = {n: 10000000000}`` would otherwise
die in numpy with a ``MemoryError`` (or get the process killed) after a long wait. The
estimate counts the big arrays only (data, parameters with their gradients and optimizer
state, one batch of activations and gradients): a lower bound, so refusing is never wrong.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from minidl.errors import MemoryEstimateError

if TYPE_CHECKING:
    from minidl.config import Config

#: Used when the OS does not say how much memory is free.
FALLBACK_AVAILABLE = 8 << 30
#: Features of each built-in dataset; their generators return float64 copies.
BUILTIN_FEATURES = {"planar": 2, "spirals": 2, "moons": 2, "xor": 2, "digits": 64}
BUILTIN_EXAMPLES = {"planar": 400, "spirals": 300, "moons": 400, "xor": 400, "digits": 1797}


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable, else free pages, else a fixed guess.

    >>> available_memory() > 0
    True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_AVAILABLE


def run_bytes(*, examples: int, features: int, hidden: list[int], outputs: int,
              itemsize: int, optimizer: str = "sgd") -> int:
    """Bytes of the big arrays of a training run (see the module docstring).

    Activations are counted for all ``examples`` at once: evaluation runs the whole
    set in one forward pass, whatever the batch size.

    >>> run_bytes(examples=400, features=2, hidden=[4], outputs=1, itemsize=4)
    57940
    """
    widths = [features, *hidden, outputs]
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:]))
    states = {"sgd": 1, "adam": 2, "adamw": 2}.get(optimizer, 2)
    # Parameters, gradients, optimizer state (momentum / Adam moments) and the float64
    # copy a checkpoint makes.
    param_bytes = params * itemsize * (2 + states) + params * 8
    # The data in float64, its split and its cast; evaluation runs the full set at once.
    data_bytes = examples * (features + 1) * (8 + 8 + itemsize)
    activation_bytes = examples * sum(widths) * itemsize * 3  # value, gradient, pre-activation
    return param_bytes + data_bytes + activation_bytes


def check_fits(needed: int, what: str) -> None:
    """Refuse, with the estimate, a run needing more than the memory available."""
    free = available_memory()
    if needed > free:
        raise MemoryEstimateError(
            f"{what} needs at least {_size(needed)} of memory, but {_size(free)} is "
            "available; use smaller sizes (model.hidden, data.options.n, the data file)")


def check_config_memory(config: Config) -> None:
    """What a config alone says about memory (built-in data sizes, layer widths).

    For a data file the number of examples and features is only known once it is
    read; the trainer checks again then, with the real numbers.
    """
    dataset = config.data.dataset
    examples = int(config.data.options.get("n", BUILTIN_EXAMPLES.get(dataset, 1)))
    check_fits(run_bytes(examples=examples, features=BUILTIN_FEATURES.get(dataset, 1),
                         hidden=config.model.hidden, outputs=config.model.outputs or 1,
                         itemsize=_itemsize(config),
                         optimizer=config.optimizer.name), "this config")


def _itemsize(config: Config) -> int:
    return {"float16": 2, "float32": 4, "float64": 8}[config.train.dtype]


def _size(count: int) -> str:
    """Bytes in binary units, e.g. '1.5 GiB'.

    >>> _size(3 << 29)
    '1.5 GiB'
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{count} B"
        value /= 1024
    raise AssertionError("unreachable")
