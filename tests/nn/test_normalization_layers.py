"""BatchNorm1d/2d and LayerNorm modules: train vs eval, the running statistics against a
numpy reference written here, buffers in state_dict, parameters through check_op."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.opcheck import check_op

import minidl as mdl


def reference_run(batches: list[np.ndarray], momentum: float | None, eps: float = 1e-5
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Training outputs and final running mean/var of batch norm, by hand in float64."""
    axes = (0,) + tuple(range(2, batches[0].ndim))
    channels = batches[0].shape[1]
    shape = (1, channels) + (1,) * (batches[0].ndim - 2)
    running_mean, running_var = np.zeros(channels), np.ones(channels)
    outputs = []
    for k, x in enumerate(batches, start=1):
        n = x.size // channels
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(shape)) ** 2).sum(axis=axes) / n
        outputs.append((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps))
        factor = 1.0 / k if momentum is None else momentum
        running_mean = (1 - factor) * running_mean + factor * mean
        running_var = (1 - factor) * running_var + factor * var * n / (n - 1)
    return outputs, running_mean, running_var


@pytest.mark.parametrize("layer,shape", [(mdl.nn.BatchNorm1d, (8, 3)),
                                         (mdl.nn.BatchNorm1d, (4, 3, 5)),
                                         (mdl.nn.BatchNorm2d, (4, 3, 2, 3))])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_statistics_and_train_vs_eval(layer: type, shape: tuple[int, ...],
                                              momentum: float | None) -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(shape) * (k + 1) + k for k in range(4)]
    bn = layer(3, momentum=momentum, dtype="float64")
    outputs = [bn(mdl.tensor(x)).data for x in batches]
    expected, running_mean, running_var = reference_run(batches, momentum)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 4

    # eval: the running statistics normalize, and nothing is updated any more
    bn.eval()
    x = rng.standard_normal(shape)
    channel = (1, 3) + (1,) * (len(shape) - 2)
    want = (x - running_mean.reshape(channel)) / np.sqrt(running_var.reshape(channel) + 1e-5)
    np.testing.assert_allclose(bn(mdl.tensor(x)).data, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 4
    # and eval differs from train on the same batch (the statistics differ)
    assert not np.allclose(bn.train()(mdl.tensor(x)).data, want)


def test_eval_mode_gradients_through_check_op() -> None:
    rng = np.random.default_rng(1)
    bn = mdl.nn.BatchNorm1d(3, dtype="float64")
    bn(mdl.tensor(rng.standard_normal((6, 3)) * 2 + 1))  # some running statistics
    bn.eval()
    mean, var = bn.running_mean.copy(), bn.running_var.copy()

    def through_module(x: mdl.Tensor, w: mdl.Tensor, b: mdl.Tensor) -> mdl.Tensor:
        bn.weight, bn.bias = w, b  # check_op's leaves stand in for the parameters
        return bn(x)

    check_op(through_module,
             lambda x, w, b: (x - mean) / np.sqrt(var + 1e-5) * w + b,
             [rng.standard_normal((5, 3)), rng.uniform(0.5, 2, 3), rng.standard_normal(3)])


def test_parameters_buffers_and_state_dict_round_trip() -> None:
    bn = mdl.nn.BatchNorm2d(2)
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    bn(mdl.tensor(np.random.default_rng(2).standard_normal((3, 2, 4, 4))))
    state = bn.state_dict()
    assert sorted(state) == ["bias", "num_batches_tracked", "running_mean", "running_var",
                             "weight"]
    fresh = mdl.nn.BatchNorm2d(2)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_var, bn.running_var)
    assert int(fresh.num_batches_tracked) == 1
    x = mdl.tensor(np.random.default_rng(3).standard_normal((2, 2, 4, 4)))
    np.testing.assert_array_equal(fresh.eval()(x).data, bn.eval()(x).data)
    net = mdl.nn.Sequential(mdl.nn.Linear(2, 2, generator=0), mdl.nn.BatchNorm1d(2))
    assert "1.running_mean" in net.state_dict()


def test_without_affine_or_running_statistics() -> None:
    bn = mdl.nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    x = np.array([[1.0, 10.0], [3.0, 30.0]])
    # without running statistics eval mode also normalizes by the batch, as torch
    np.testing.assert_allclose(bn(mdl.tensor(x)).data, [[-1, -1], [1, 1]], atol=1e-4)


def test_layer_norm_module() -> None:
    rng = np.random.default_rng(4)
    ln = mdl.nn.LayerNorm((2, 3), dtype="float64")
    assert ln.weight.shape == (2, 3)
    x = rng.standard_normal((4, 2, 3)) * 5
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(ln(mdl.tensor(x)).data, (x - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-10, atol=1e-12)
    assert list(mdl.nn.LayerNorm(3, elementwise_affine=False).parameters()) == []


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_features"):
        mdl.nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        mdl.nn.BatchNorm2d(3, momentum=2.0)
    with pytest.raises(mdl.ShapeError, match=r"BatchNorm2d\(3\) expects 4-D"):
        mdl.nn.BatchNorm2d(3)(mdl.tensor(np.ones((2, 3))))
    with pytest.raises(mdl.ShapeError, match="3 channels on axis 1"):
        mdl.nn.BatchNorm1d(3)(mdl.tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="normalized_shape"):
        mdl.nn.LayerNorm(0)
