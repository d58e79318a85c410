"""Recurrent layers ``RNN`` and ``LSTM``, unrolled over time with the engine's ops.

Each time step is a handful of ordinary ops (two ``linear``, a nonlinearity, and for
the LSTM its gates), so backpropagation through time is the engine's backward pass
over the unrolled graph, and every gradient is the calculus of those ops. Parameters
have torch's names, shapes, gate order (i, f, g, o) and U(-1/sqrt(H), 1/sqrt(H)) init,
so a torch state_dict's arrays load as they are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minidl import ops
from minidl.dtypes import as_float_dtype, get_default_dtype
from minidl.errors import InvalidValueError, ShapeError
from minidl.nn.module import Module, Parameter
from minidl.ops.elementwise import as_tensor
from minidl.tensor import Tensor

NONLINEARITIES = ("tanh", "relu")


class _Recurrent(Module):
    _gates = 1  # blocks of hidden_size rows in each weight: 1 for RNN, 4 for LSTM (i, f, g, o)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, generator: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for label, value in (("input_size", input_size), ("hidden_size", hidden_size),
                             ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise InvalidValueError(f"{name}: {label} must be a positive integer, got "
                                        f"{value!r}")
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        rng = np.random.default_rng(generator)
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self._gates * hidden_size
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        for layer in range(num_layers):
            columns = input_size if layer == 0 else hidden_size
            shapes = {f"weight_ih_l{layer}": (rows, columns), f"weight_hh_l{layer}": (rows,
                                                                                    hidden_size)}
            if bias:
                shapes.update({f"bias_ih_l{layer}": (rows,), f"bias_hh_l{layer}": (rows,)})
            for param_name, shape in shapes.items():
                setattr(self, param_name, Parameter(rng.uniform(-bound, bound, shape),
                                                    dtype=dtype))

    def _layer_params(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return (getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
                getattr(self, f"bias_ih_l{layer}", None), getattr(self, f"bias_hh_l{layer}", None))

    def _steps(self, x: Any) -> tuple[list[Tensor], int]:
        """The input's time steps as a list of (batch, features) tensors, and the batch."""
        x = as_tensor(x)
        name = type(self).__name__
        layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"{name}: input must be {layout} with {self.input_size} features, "
                             f"got shape {x.shape}")
        time_axis = 1 if self.batch_first else 0
        if x.shape[time_axis] == 0:
            raise ShapeError(f"{name}: the input has no time steps (shape {x.shape})")
        if self.batch_first:
            return [x[:, t] for t in range(x.shape[1])], x.shape[0]
        return [x[t] for t in range(x.shape[0])], x.shape[1]

    def _initial(self, state: Any, batch: int, dtype: np.dtype, label: str) -> list[Tensor]:
        """One (batch, hidden) tensor per layer: the given state's, or zeros."""
        expected = (self.num_layers, batch, self.hidden_size)
        if state is None:
            zeros = Tensor._from_op(np.zeros(expected[1:], dtype=dtype), None)
            return [zeros] * self.num_layers
        state = as_tensor(state)
        if state.shape != expected:
            raise ShapeError(f"{type(self).__name__}: {label} must have shape (num_layers, batch, "
                             f"hidden_size) = {expected}, got {state.shape}")
        return [state[layer] for layer in range(self.num_layers)]

    def _output(self, steps: list[Tensor]) -> Tensor:
        return ops.stack(steps, axis=1 if self.batch_first else 0)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}")


class RNN(_Recurrent):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), layers stacked.

    Returns ``(output, h_n)`` as torch: output holds the last layer's h_t for every
    step, h_n (num_layers, batch, hidden) each layer's last state.

    >>> import numpy as np, minidl as mdl
    >>> rnn = mdl.nn.RNN(3, 5, num_layers=2, batch_first=True, generator=0)
    >>> output, h_n = rnn(mdl.tensor(np.ones((4, 7, 3))))
    >>> output.shape, h_n.shape
    ((4, 7, 5), (2, 4, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 generator: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise InvalidValueError(f"RNN: nonlinearity must be one of {NONLINEARITIES}, "
                                    f"got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, generator,
                         dtype)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, h_0: Any = None) -> tuple[Tensor, Tensor]:
        steps, batch = self._steps(x)
        activation = ops.tanh if self.nonlinearity == "tanh" else ops.relu
        h_last = []
        for layer, h in enumerate(self._initial(h_0, batch, steps[0].dtype, "h_0")):
            w_ih, w_hh, b_ih, b_hh = self._layer_params(layer)
            outputs = []
            for x_t in steps:
                h = activation(ops.linear(x_t, w_ih, b_ih) + ops.linear(h, w_hh, b_hh))
                outputs.append(h)
            steps = outputs
            h_last.append(h)
        return self._output(steps), ops.stack(h_last, axis=0)


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), gates as torch's:

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of x_t W_ih^T + b_ih + h W_hh^T + b_hh;
    c_t = f c_{t-1} + i g;  h_t = o tanh(c_t). Returns ``(output, (h_n, c_n))``.

    >>> import numpy as np, minidl as mdl
    >>> lstm = mdl.nn.LSTM(3, 5, batch_first=True, generator=0)
    >>> output, (h_n, c_n) = lstm(mdl.tensor(np.ones((4, 7, 3))))
    >>> output.shape, h_n.shape, c_n.shape
    ((4, 7, 5), (1, 4, 5), (1, 4, 5))
    """

    _gates = 4

    def forward(self, x: Any, hx: tuple[Any, Any] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        steps, batch = self._steps(x)
        dtype = steps[0].dtype
        h_0, c_0 = (None, None) if hx is None else hx
        hs = self._initial(h_0, batch, dtype, "h_0")
        cs = self._initial(c_0, batch, dtype, "c_0")
        size = self.hidden_size
        h_last, c_last = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer_params(layer)
            h, c = hs[layer], cs[layer]
            outputs = []
            for x_t in steps:
                gates = ops.linear(x_t, w_ih, b_ih) + ops.linear(h, w_hh, b_hh)
                # One sigmoid over all four blocks (the g block's is unused, and gets no
                # gradient) costs less than three separate ops on the i, f, o blocks.
                squashed = ops.sigmoid(gates)
                cell_input = ops.tanh(gates[:, 2 * size:3 * size])
                c = squashed[:, size:2 * size] * c + squashed[:, :size] * cell_input
                h = squashed[:, 3 * size:] * ops.tanh(c)
                outputs.append(h)
            steps = outputs
            h_last.append(h)
            c_last.append(c)
        return self._output(steps), (ops.stack(h_last, axis=0), ops.stack(c_last, axis=0))
