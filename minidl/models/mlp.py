"""The built-in model: a multilayer perceptron, as ``minidl train`` has always built it."""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from minidl import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def mlp(inputs: int, outputs: int, hidden: Sequence[int] = (4,),
        activation: Literal["tanh", "relu", "sigmoid"] = "tanh",
        init: Literal["auto", "xavier", "he", "xavier_uniform", "he_uniform", "small"] = "auto",
        dropout: float = 0.0, generator: np.random.Generator | int | None = None,
        dropout_generator: np.random.Generator | int | None = None,
        dtype: Any = None) -> nn.Sequential:
    """Linear, activation (and dropout) per hidden layer, then a Linear output.

    ``init`` is the hidden layers' init (``auto``: he for relu, xavier otherwise); the
    output layer is xavier. Weights draw from ``generator``, dropout masks from
    ``dropout_generator`` (one generator shared by every dropout layer).

    >>> mlp(2, 1, hidden=[4], generator=0)
    Sequential(
      (0): Linear(in_features=2, out_features=4, bias=True)
      (1): Tanh()
      (2): Linear(in_features=4, out_features=1, bias=True)
    )
    """
    init_rng = np.random.default_rng(generator)
    dropout_rng = np.random.default_rng(dropout_generator)
    return nn.Sequential(*dense_layers(inputs, outputs, hidden, activation, init, dropout,
                                       init_rng, dropout_rng, dtype))


def dense_layers(inputs: int, outputs: int, hidden: Sequence[int], activation: str, init: str,
                 dropout: float, rng: np.random.Generator, dropout_rng: np.random.Generator,
                 dtype: Any) -> list[nn.Module]:
    """Linear, activation (and dropout) per ``hidden`` size, then a Linear output (xavier);
    ``init`` ``auto`` is he for relu, xavier otherwise. The MLP, and the head of lenet."""
    if init == "auto":
        init = "he" if activation == "relu" else "xavier"
    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size, init=init, generator=rng, dtype=dtype),
                   ACTIVATIONS[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout, generator=dropout_rng))
        width = size
    layers.append(nn.Linear(width, outputs, init="xavier", generator=rng, dtype=dtype))
    return layers
