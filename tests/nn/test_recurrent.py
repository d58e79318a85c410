"""RNN and LSTM against a numpy recurrence written here (forward) and finite differences
of it (every input, initial state and parameter, through check_op)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers.opcheck import check_op

import minidl as mdl


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def numpy_rnn(x: np.ndarray, h0: np.ndarray, params: list[np.ndarray], layers: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Batch-first tanh RNN; params per layer: W_ih, W_hh, b_ih, b_hh."""
    seq, finals = x, []
    for layer in range(layers):
        w_ih, w_hh, b_ih, b_hh = params[4 * layer: 4 * layer + 4]
        h, outs = h0[layer], []
        for t in range(seq.shape[1]):
            h = np.tanh(seq[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            outs.append(h)
        seq = np.stack(outs, axis=1)
        finals.append(h)
    return seq, np.stack(finals)


def numpy_lstm(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: list[np.ndarray],
               layers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-first LSTM with torch's gate order i, f, g, o."""
    seq, h_n, c_n = x, [], []
    for layer in range(layers):
        w_ih, w_hh, b_ih, b_hh = params[4 * layer: 4 * layer + 4]
        h, c, outs = h0[layer], c0[layer], []
        for t in range(seq.shape[1]):
            z = seq[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i, f, g, o = np.split(z, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            outs.append(h)
        seq = np.stack(outs, axis=1)
        h_n.append(h)
        c_n.append(c)
    return seq, np.stack(h_n), np.stack(c_n)


def layer_arrays(module: mdl.nn.Module) -> list[np.ndarray]:
    return [p.data.astype(np.float64) for p in module.parameters()]


def use_params(module: mdl.nn.Module, tensors: tuple[mdl.Tensor, ...]) -> None:
    """Put check_op's leaves in place of the module's parameters (same names, order)."""
    names = [f"{kind}_l{layer}" for layer in range(module.num_layers)
             for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert len(names) == len(tensors)
    for name, tensor in zip(names, tensors):
        setattr(module, name, tensor)


# ====================================== forward ========================================

@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_rnn_forward_matches_numpy(batch_first: bool, layers: int) -> None:
    rng = np.random.default_rng(layers)
    rnn = mdl.nn.RNN(3, 4, num_layers=layers, batch_first=batch_first, generator=0,
                     dtype="float64")
    x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((layers, 2, 4))
    given = x if batch_first else x.transpose(1, 0, 2)
    output, h_n = rnn(mdl.tensor(given), mdl.tensor(h0))
    want_out, want_h = numpy_rnn(x, h0, layer_arrays(rnn), layers)
    got = output.data if batch_first else output.data.transpose(1, 0, 2)
    np.testing.assert_allclose(got, want_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.data, want_h, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layers", [1, 3])
def test_lstm_forward_matches_numpy(layers: int) -> None:
    rng = np.random.default_rng(10 + layers)
    lstm = mdl.nn.LSTM(3, 4, num_layers=layers, batch_first=True, generator=1)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    output, (h_n, c_n) = lstm(mdl.tensor(x))  # zero initial state
    zeros = np.zeros((layers, 2, 4))
    want = numpy_lstm(x.astype(np.float64), zeros, zeros, layer_arrays(lstm), layers)
    assert output.dtype == h_n.dtype == c_n.dtype == np.float32
    for got, expected in zip((output, h_n, c_n), want):
        np.testing.assert_allclose(got.data, expected, rtol=1e-5, atol=1e-6)
    assert [name for name, _ in lstm.named_parameters()][:4] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert lstm.weight_ih_l0.shape == (16, 3)


# ====================================== gradients ======================================

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_gradients_by_finite_differences(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    layers = 2
    lstm = mdl.nn.LSTM(2, 3, num_layers=layers, batch_first=True, generator=2)
    params = [p.astype(dtype) for p in layer_arrays(lstm)]
    x = rng.standard_normal((2, 3, 2)).astype(dtype)
    h0, c0 = (rng.standard_normal((layers, 2, 3)).astype(dtype) for _ in range(2))

    def run(x: mdl.Tensor, h0: mdl.Tensor, c0: mdl.Tensor, *weights: mdl.Tensor) -> mdl.Tensor:
        use_params(lstm, weights)
        output, (h_n, c_n) = lstm(x, (h0, c0))
        return mdl.concatenate([output.reshape(-1), h_n.reshape(-1), c_n.reshape(-1)])

    def reference(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, *weights: np.ndarray) -> Any:
        return np.concatenate([a.reshape(-1) for a in numpy_lstm(x, h0, c0, list(weights),
                                                                 layers)])

    check_op(run, reference, [x, h0, c0, *params])


def test_rnn_gradients_by_finite_differences() -> None:
    rng = np.random.default_rng(4)
    rnn = mdl.nn.RNN(2, 3, num_layers=2, batch_first=True, generator=3)
    params = layer_arrays(rnn)
    x, h0 = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 2, 3))

    def run(x: mdl.Tensor, h0: mdl.Tensor, *weights: mdl.Tensor) -> mdl.Tensor:
        use_params(rnn, weights)
        output, h_n = rnn(x, h0)
        return mdl.concatenate([output.reshape(-1), h_n.reshape(-1)])

    check_op(run, lambda x, h0, *w: np.concatenate(
        [a.reshape(-1) for a in numpy_rnn(x, h0, list(w), 2)]), [x, h0, *params])


# ====================================== misuse =========================================

def test_shapes_and_arguments_are_checked() -> None:
    lstm = mdl.nn.LSTM(3, 4, batch_first=True)
    with pytest.raises(mdl.ShapeError, match=r"\(batch, time, features\) with 3 features"):
        lstm(mdl.tensor(np.ones((2, 5, 2))))
    with pytest.raises(mdl.ShapeError, match=r"h_0 must have shape .* \(1, 2, 4\)"):
        lstm(mdl.tensor(np.ones((2, 5, 3))), (mdl.tensor(np.ones((2, 4))),
                                               mdl.tensor(np.ones((1, 2, 4)))))
    with pytest.raises(ValueError, match="nonlinearity"):
        mdl.nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="num_layers"):
        mdl.nn.LSTM(3, 4, num_layers=0)
    relu_rnn = mdl.nn.RNN(1, 2, nonlinearity="relu", bias=False, generator=0)
    output, _ = relu_rnn(mdl.tensor(np.ones((3, 1, 1))))  # time-major
    assert output.shape == (3, 1, 2) and (output.data >= 0).all()
    assert list(dict(relu_rnn.named_parameters())) == ["weight_ih_l0", "weight_hh_l0"]
