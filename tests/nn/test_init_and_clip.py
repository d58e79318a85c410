"""``nn.init`` against the distributions it promises, and ``nn.utils`` gradient clipping
against norms computed here in numpy."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.nn import init
from minidl.nn.utils import NonFiniteGradientError, clip_grad_norm_, clip_grad_value_
from minidl.trainer import Trainer

FAN_OUT, FAN_IN = 400, 600  # weight shape (out, in): 240,000 draws


def weight(dtype=np.float64, shape=(FAN_OUT, FAN_IN)):
    return mdl.nn.Parameter(np.full(shape, 7.0), dtype=dtype)


# (initializer, expected std, bound of a uniform or None)
SCALED = {
    "xavier_normal_": (init.xavier_normal_, np.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "xavier_uniform_": (init.xavier_uniform_, np.sqrt(2 / (FAN_IN + FAN_OUT)),
                        np.sqrt(6 / (FAN_IN + FAN_OUT))),
    "kaiming_normal_": (init.kaiming_normal_, np.sqrt(2 / FAN_IN), None),
    "kaiming_uniform_": (init.kaiming_uniform_, np.sqrt(2 / FAN_IN), np.sqrt(6 / FAN_IN)),
    "small_normal_": (init.small_normal_, 0.01, None),
}


@pytest.mark.parametrize("case", SCALED.values(), ids=SCALED.keys())
def test_scaled_inits_have_the_promised_spread(case):
    fill, std, bound = case
    w = weight()
    assert fill(w, generator=np.random.default_rng(1)) is w
    # 240,000 draws: the sample std is within ~0.15% of the truth (2% is a wide margin),
    # the mean within ~0.2% of a std (5 standard errors: 1%).
    assert abs(w.data.std() / std - 1) < 0.02
    assert abs(w.data.mean()) < 0.01 * std
    if bound is not None:
        assert np.abs(w.data).max() <= bound
        assert np.abs(w.data).max() > 0.99 * bound  # uniform reaches near its bound


def test_kaiming_options_follow_torchs_gain():
    w = weight()
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh", generator=2)
    assert abs(w.data.std() / (5 / 3 / np.sqrt(FAN_OUT)) - 1) < 0.02
    init.kaiming_normal_(w, a=0.2, nonlinearity="leaky_relu", generator=2)
    assert abs(w.data.std() / np.sqrt(2 / (1 + 0.04) / FAN_IN) - 1) < 0.02


def test_fans_count_the_receptive_field():
    w = weight(shape=(20, 30, 3, 3))
    init.xavier_uniform_(w, generator=0)
    assert np.abs(w.data).max() <= np.sqrt(6 / (30 * 9 + 20 * 9))


def test_plain_fills_and_distributions():
    w = weight()
    np.testing.assert_array_equal(init.zeros_(w).data, 0.0)
    np.testing.assert_array_equal(init.ones_(w).data, 1.0)
    np.testing.assert_array_equal(init.constant_(w, -2.5).data, -2.5)
    init.normal_(w, mean=3.0, std=0.5, generator=0)
    assert abs(w.data.mean() - 3.0) < 0.01 and abs(w.data.std() / 0.5 - 1) < 0.02
    init.uniform_(w, -2.0, 1.0, generator=0)
    assert w.data.min() >= -2.0 and w.data.max() < 1.0
    assert abs(w.data.mean() + 0.5) < 0.01


def test_same_generator_state_same_weights_in_every_dtype():
    draws = {dt: init.kaiming_normal_(weight(dt, (5, 4)), generator=7).data
             for dt in (np.float16, np.float32, np.float64)}
    np.testing.assert_array_equal(draws[np.float32], draws[np.float64].astype(np.float32))
    np.testing.assert_array_equal(draws[np.float16], draws[np.float64].astype(np.float16))
    assert draws[np.float16].dtype == np.float16


def test_fills_in_place_keeping_the_array():
    w = weight()
    array = w.data
    init.xavier_normal_(w, generator=0)
    assert w.data is array


@pytest.mark.parametrize("call, error, match", [
    (lambda: init.xavier_normal_(mdl.nn.Parameter([1.0, 2.0])), mdl.ShapeError, "2 dim"),
    (lambda: init.kaiming_normal_(weight(), mode="fan", generator=0), ValueError, "mode"),
    (lambda: init.kaiming_normal_(weight(), nonlinearity="gelu"), ValueError, "nonlinearity"),
    (lambda: init.normal_(weight(), std=-1.0), ValueError, "std"),
    (lambda: init.uniform_(weight(), 1.0, 0.0), ValueError, "a <= b"),
    (lambda: init.zeros_(np.zeros(3)), TypeError, "Tensor"),
])
def test_bad_init_calls_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_course_aliases():
    assert init.he_normal_ is init.kaiming_normal_ and init.glorot_uniform_ is init.xavier_uniform_


@pytest.mark.parametrize("name, std", [("small", lambda fi, fo: 0.01),
                                       ("he_uniform", lambda fi, fo: np.sqrt(2 / fi)),
                                       ("xavier", lambda fi, fo: np.sqrt(2 / (fi + fo)))])
def test_config_chooses_the_hidden_layers_init(name, std):
    trainer = Trainer(load_config(overrides=["model.hidden=[300]", f"model.init={name}",
                                             "output.dir=", "train.dtype=float64"]))
    hidden = trainer.model[0].weight.data  # planar: 2 inputs -> 300
    assert abs(hidden.std() / std(2, 300) - 1) < 0.05


def test_default_init_unchanged():
    # "auto" is he for relu: the draws Linear(init="he") made before nn.init existed.
    trainer = Trainer(load_config(overrides=["model.activation=relu", "output.dir="]))
    rng_hidden = trainer.model[0].weight.data
    expected = np.random.default_rng(np.random.SeedSequence(3).spawn(4)[1]).standard_normal(
        (4, 2)) * np.sqrt(2.0 / 2)
    np.testing.assert_array_equal(rng_hidden, expected.astype(np.float32))


# ---- clipping ------------------------------------------------------------------------------

def grads_set(values):
    params = []
    for value in values:
        p = mdl.nn.Parameter(np.zeros_like(value), dtype=np.float64)
        p.grad = value
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, np.inf])
def test_clip_grad_norm_scales_jointly_and_returns_the_norm(norm_type):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    flat = np.concatenate([v.ravel() for v in values])
    expected = np.abs(flat).max() if norm_type == np.inf else (
        (np.abs(flat) ** norm_type).sum() ** (1 / norm_type))
    params = grads_set(values)
    total = clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    scale = 0.5 / (expected + 1e-6)
    for p, v in zip(params, values):
        np.testing.assert_allclose(p.grad, v * scale, rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_and_skips_missing_ones():
    params = grads_set([np.array([0.3, 0.4])])
    unused = mdl.nn.Parameter([1.0])
    assert clip_grad_norm_([*params, unused], max_norm=1.0) == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_array_equal(params[0].grad, [0.3, 0.4])
    assert unused.grad is None
    assert clip_grad_norm_([unused], 1.0) == 0.0


def test_clipped_gradient_still_counts_as_normalized():
    w = mdl.nn.Parameter(np.array([10.0, -10.0]), dtype=np.float64)
    optimizer = mdl.optim.SGD([w], lr=0.1)  # refuses plain-calculus gradients
    mdl.nn.MSELoss()(w, mdl.tensor(np.zeros(2))).backward()
    clip_grad_norm_(w, 1.0)
    optimizer.step()  # no GradientNotNormalizedError
    np.testing.assert_allclose(np.linalg.norm(10.0 - np.abs(w.data)), 0.1, rtol=1e-5)


def test_clip_grad_norm_nonfinite():
    params = grads_set([np.array([np.inf, 1.0])])
    with pytest.raises(NonFiniteGradientError, match="NaN or inf"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert isinstance(NonFiniteGradientError("x"), mdl.MinidlError)


def test_clip_grad_value_clamps_each_entry():
    values = [np.array([-3.0, 0.2, 5.0]), np.array([[0.9, -0.95]])]
    params = grads_set(values)
    clip_grad_value_(params, 0.5)
    for p, v in zip(params, values):
        np.testing.assert_array_equal(p.grad, np.minimum(np.maximum(v, -0.5), 0.5))
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(params, -1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(params, float("nan"))
