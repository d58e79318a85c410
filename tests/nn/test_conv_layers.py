"""Conv1d, Conv2d, the pooling layers, Flatten and Unflatten: parameters, init, forward
against numpy written here, repr, errors, and a small CNN that learns."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl import nn


def randn(*shape: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def correlate(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stride-1, unpadded, ungrouped 2-D cross-correlation, one output pixel at a time."""
    kh, kw = w.shape[2:]
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = np.empty((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = np.einsum("ncpq,ocpq->no", x[:, :, i:i + kh, j:j + kw], w) + b
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_layer_parameters_and_forward(dtype) -> None:
    layer = nn.Conv2d(3, 5, (3, 2), generator=0, dtype=dtype)
    assert layer.weight.shape == (5, 3, 3, 2) and layer.bias.shape == (5,)
    assert layer.weight.dtype == dtype and np.all(layer.bias.data == 0)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.bias.data[...] = np.arange(5)
    x = randn(2, 3, 6, 4, dtype=dtype)
    out = layer(mdl.tensor(x))
    assert out.shape == (2, 5, 4, 3) and out.dtype == dtype
    expected = correlate(x.astype(np.float64), layer.weight.data.astype(np.float64),
                         layer.bias.data.astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol)


def test_conv2d_layer_passes_its_geometry_on() -> None:
    layer = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=(1, 2), groups=2, bias=False,
                      generator=1)
    assert layer.weight.shape == (6, 2, 3, 3) and layer.bias is None
    x = mdl.tensor(randn(1, 4, 7, 8))
    out = layer(x)
    functional = mdl.nn.functional.conv2d(x, layer.weight, None, 2, 1, (1, 2), 2)
    np.testing.assert_array_equal(out.data, functional.data)
    assert out.shape == (1, 6, 4, 3)
    assert repr(layer) == ("Conv2d(4, 6, kernel_size=(3, 3), stride=2, padding=1, "
                           "dilation=(1, 2), groups=2, bias=False)")


def test_conv1d_layer() -> None:
    layer = nn.Conv1d(2, 4, 3, padding=1, generator=2, dtype=np.float64)
    assert layer.weight.shape == (4, 2, 3)
    x = randn(3, 2, 5, dtype=np.float64)
    out = layer(mdl.tensor(x))
    # as a 2-D conv on images one row high, computed by the loop above
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1)))[:, :, None, :]
    expected = correlate(padded, layer.weight.data[:, :, None, :], layer.bias.data)[:, :, 0]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert repr(layer) == "Conv1d(2, 4, kernel_size=3, padding=1)"


@pytest.mark.parametrize("init, expected_std", [
    ("xavier", np.sqrt(2.0 / (16 * 25 + 32 * 25))),
    ("he", np.sqrt(2.0 / (16 * 25))),
])
def test_conv_init_std_uses_torch_fans(init, expected_std) -> None:
    weight = nn.Conv2d(16, 32, 5, init=init, generator=3, dtype=np.float64).weight.data
    # 12,800 draws: the sample std is within ~1% of the truth; 4% is a wide margin.
    assert abs(weight.std() / expected_std - 1) < 0.04


def test_conv_generator_makes_weights_reproducible() -> None:
    a, b = nn.Conv2d(2, 3, 3, generator=7), nn.Conv2d(2, 3, 3, generator=7)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.allclose(a.weight.data, nn.Conv2d(2, 3, 3, generator=8).weight.data)


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Conv2d(0, 3, 3), "in_channels"),
    (lambda: nn.Conv2d(3, 3, 0), "kernel_size"),
    (lambda: nn.Conv2d(3, 3, (3, 3, 3)), "kernel_size"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), "groups"),
    (lambda: nn.Conv2d(3, 3, 3, init="uniform"), "init"),
    (lambda: nn.Conv1d(3, 2.5, 3), "out_channels"),
    (lambda: nn.AdaptiveAvgPool2d(2), "output_size 1"),
])
def test_layer_arguments_are_checked(make, words) -> None:
    with pytest.raises((ValueError, NotImplementedError)) as info:
        make()
    assert words in str(info.value)


def test_pool_layers_match_their_functions() -> None:
    x = mdl.tensor(randn(2, 3, 6, 5))
    F = mdl.nn.functional
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1)(x).data, F.max_pool2d(x, 3, 2, 1).data)
    np.testing.assert_array_equal(nn.AvgPool2d(2)(x).data, F.avg_pool2d(x, 2).data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x).data,
                                  F.avg_pool2d(x, 3, 1, 1, count_include_pad=False).data)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    # the 2x2 max of the top-left window, by hand
    assert nn.MaxPool2d(2)(x).data[1, 2, 0, 0] == x.data[1, 2, :2, :2].max()
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"


def test_flatten_and_unflatten_round_trip_with_gradients() -> None:
    x = mdl.tensor(randn(2, 3, 4, 4), requires_grad=True)
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 48)
    np.testing.assert_array_equal(flat.data, x.data.reshape(2, 48))
    back = nn.Unflatten(1, (3, 4, 4))(flat)
    assert back.shape == x.shape
    (back * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(x.shape, 2.0, dtype=np.float32))
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 4)
    assert nn.Unflatten(-1, (2, 2))(x).shape == (2, 3, 4, 2, 2)
    with pytest.raises(ValueError, match="not an axis"):
        nn.Unflatten(5, (2, 2))(x)


def test_a_small_cnn_learns_a_pattern() -> None:
    """Vertical vs horizontal bars in noise: a conv net with every new layer learns it."""
    rng = np.random.default_rng(0)
    m = 64
    labels = rng.integers(0, 2, m)
    images = rng.standard_normal((m, 1, 8, 8)).astype(np.float32) * 0.5
    for i, label in enumerate(labels):
        pos = rng.integers(1, 7)
        if label:
            images[i, 0, :, pos] += 2.0
        else:
            images[i, 0, pos, :] += 2.0
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, init="he", generator=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, init="he", generator=2),
                          nn.ReLU(), nn.AvgPool2d(2, stride=1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2, generator=3))
    optimizer = mdl.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    x, y = mdl.tensor(images), mdl.tensor(labels)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with mdl.no_grad():
        accuracy = float((model(x).data.argmax(axis=1) == labels).mean())
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy >= 0.9
