"""A built-in convolutional model: LeNet-style blocks for square one-channel images."""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import numpy as np

from minidl import nn
from minidl.errors import DataError
from minidl.models.mlp import ACTIVATIONS, dense_layers


def lenet(inputs: int, outputs: int, hidden: Sequence[int] = (128,),
          channels: Sequence[int] = (32, 64),
          activation: Literal["tanh", "relu", "sigmoid"] = "relu",
          init: Literal["auto", "xavier", "he", "xavier_uniform", "he_uniform", "small"] = "auto",
          dropout: float = 0.0, generator: np.random.Generator | int | None = None,
          dropout_generator: np.random.Generator | int | None = None,
          dtype: Any = None) -> nn.Sequential:
    """Rows of ``inputs`` pixels of square one-channel images (64: 8x8 digits), unflattened;
    per entry of ``channels`` a 3x3 convolution (padding 1), the activation and a 2x2
    max-pool; flattened; then Linear, activation (and dropout) per ``hidden``; a Linear
    output. Dropout draws from ``dropout_generator``, else from one spawned from
    ``generator`` (so a seeded model is reproducible).

    >>> model = lenet(64, 10, hidden=[16], channels=[4], generator=0)
    >>> [type(m).__name__ for m in model]  # doctest: +NORMALIZE_WHITESPACE
    ['Unflatten', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear', 'ReLU', 'Linear']
    """
    side = math.isqrt(inputs)
    if side * side != inputs or side < 2 ** len(channels):
        raise DataError(f"the lenet model needs square one-channel images of at least "
                        f"{2 ** len(channels)}x{2 ** len(channels)} pixels, one row of pixels "
                        f"per example; the data has {inputs} features per example. Use the "
                        "mlp for other data")
    rng = np.random.default_rng(generator)
    dropout_rng = np.random.default_rng(
        dropout_generator if dropout_generator is not None else rng.spawn(1)[0])
    conv_init = init if init != "auto" else ("he" if activation == "relu" else "xavier")
    layers: list[nn.Module] = [nn.Unflatten(1, (1, side, side))]
    width = 1
    for out_channels in channels:
        layers += [nn.Conv2d(width, out_channels, 3, padding=1, init=conv_init, generator=rng,
                             dtype=dtype), ACTIVATIONS[activation](), nn.MaxPool2d(2)]
        width, side = out_channels, side // 2
    layers.append(nn.Flatten())
    layers += dense_layers(width * side * side, outputs, hidden, activation, init, dropout, rng,
                           dropout_rng, dtype)
    return nn.Sequential(*layers)
