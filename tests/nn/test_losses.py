"""Loss modules against per-example losses computed in numpy, under each strategy."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.errors import InvalidValueError
from minidl.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

M = 6


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- numpy references (float64) ----------------------------------------------------------

def ce_reference(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    logsumexp = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return logsumexp - z[np.arange(len(z)), labels]


def bce_reference(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    z, y = logits.astype(np.float64), target.astype(np.float64)
    per_entry = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return per_entry.reshape(len(z), -1).mean(axis=1)


def mse_reference(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    diff = prediction.astype(np.float64) - target.astype(np.float64)
    return (diff * diff).reshape(len(diff), -1).mean(axis=1)


# ---- cases: (loss module class, prediction, target, reference) ---------------------------

def ce_case():
    rng = _rng(1)
    logits = (rng.standard_normal((M, 4)) * 3).astype(np.float32)
    labels = rng.integers(0, 4, size=M)
    return CrossEntropyLoss, logits, labels, ce_reference(logits, labels)


def bce_case():
    rng = _rng(2)
    logits = (rng.standard_normal((M, 1)) * 4).astype(np.float32)
    logits[0, 0] = 60.0  # large logits must stay finite
    target = rng.integers(0, 2, size=(M, 1)).astype(np.float32)
    return BCEWithLogitsLoss, logits, target, bce_reference(logits, target)


def bce_multi_case():
    rng = _rng(3)
    logits = rng.standard_normal((M, 3)).astype(np.float32)
    target = rng.integers(0, 2, size=(M, 3)).astype(np.float32)
    return BCEWithLogitsLoss, logits, target, bce_reference(logits, target)


def mse_case():
    rng = _rng(4)
    prediction = rng.standard_normal((M, 2)).astype(np.float32)
    target = rng.standard_normal((M, 2)).astype(np.float32)
    return MSELoss, prediction, target, mse_reference(prediction, target)


def mse_vector_case():
    rng = _rng(5)
    prediction = rng.standard_normal(M).astype(np.float32)
    target = rng.standard_normal(M).astype(np.float32)
    return MSELoss, prediction, target, mse_reference(prediction, target)


CASES = [ce_case, bce_case, bce_multi_case, mse_case, mse_vector_case]
IDS = ["ce", "bce", "bce-multi", "mse", "mse-vector"]


def call(loss, prediction, target, **kwargs):
    """Integer label arrays stay integer through mdl.tensor; float ones keep float32."""
    return loss(mdl.tensor(prediction), mdl.tensor(target), **kwargs)


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param()


# ---- values ------------------------------------------------------------------------------

def test_default_is_the_mean_under_deferred(case):
    cls, prediction, target, per_example = case
    assert mdl.active_strategy().name == "deferred"
    cost = call(cls(), prediction, target)
    assert cost.shape == () and cost.dtype == np.float32
    np.testing.assert_allclose(cost.item(), per_example.mean(), rtol=1e-5)


def test_sum_under_the_sum_strategy(case):
    cls, prediction, target, per_example = case
    with mdl.normalization("sum"):
        cost = call(cls(), prediction, target)
    np.testing.assert_allclose(cost.item(), per_example.sum(), rtol=1e-5)


def test_mean_under_absorbed(case):
    cls, prediction, target, per_example = case
    with mdl.normalization("absorbed"):
        cost = call(cls(), prediction, target)
    np.testing.assert_allclose(cost.item(), per_example.mean(), rtol=1e-5)


def test_reduction_none_returns_per_example_vector(case):
    cls, prediction, target, per_example = case
    for strategy in ("deferred", "sum"):
        with mdl.normalization(strategy):
            losses = call(cls(reduction="none"), prediction, target)
        assert losses.shape == (M,)
        np.testing.assert_allclose(losses.data, per_example, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [CrossEntropyLoss, BCEWithLogitsLoss, MSELoss])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduction_mean_or_sum_raises_pointing_to_the_strategy(cls, reduction):
    with pytest.raises(ValueError, match="strategy"):
        cls(reduction=reduction)


@pytest.mark.parametrize("cls", [CrossEntropyLoss, BCEWithLogitsLoss, MSELoss])
def test_unknown_reduction_raises(cls):
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="average")


def test_sample_weight_gives_weighted_mean(case):
    cls, prediction, target, per_example = case
    weights = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 0.25])
    cost = call(cls(), prediction, target, sample_weight=weights)
    np.testing.assert_allclose(cost.item(), (weights * per_example).sum() / weights.sum(),
                               rtol=1e-5)
    with mdl.normalization("sum"):
        total = call(cls(), prediction, target, sample_weight=weights)
    np.testing.assert_allclose(total.item(), (weights * per_example).sum(), rtol=1e-5)


def test_mask_gives_mean_over_kept_examples(case):
    cls, prediction, target, per_example = case
    mask = np.array([True, False, True, True, False, True])
    cost = call(cls(), prediction, target, mask=mask)
    np.testing.assert_allclose(cost.item(), per_example[mask].mean(), rtol=1e-5)
    with mdl.normalization("sum"):
        total = call(cls(), prediction, target, mask=mask)
    np.testing.assert_allclose(total.item(), per_example[mask].sum(), rtol=1e-5)


def test_mask_and_sample_weight_combine(case):
    cls, prediction, target, per_example = case
    mask = np.array([True, True, False, True, True, False])
    weights = np.array([1.0, 2.0, 5.0, 0.5, 1.5, 4.0])
    kept = np.where(mask, weights, 0.0)
    cost = call(cls(), prediction, target, sample_weight=weights, mask=mask)
    np.testing.assert_allclose(cost.item(), (kept * per_example).sum() / kept.sum(), rtol=1e-5)


def test_weighted_gradient_under_deferred_is_the_weighted_mean_gradient():
    rng = _rng(8)
    x = rng.standard_normal((M, 3))
    y = rng.standard_normal((M, 1))
    weights = np.array([1.0, 0.0, 2.0, 3.0, 0.5, 1.0])
    layer = mdl.nn.Linear(3, 1, generator=0, dtype=np.float64)
    w, b = layer.weight.data.copy(), layer.bias.data.copy()
    MSELoss()(layer(mdl.tensor(x)), mdl.tensor(y), sample_weight=weights).backward()
    residual = x @ w.T + b - y  # (M, 1); d l_i / d pred_i = 2 * residual_i
    grad_w = (weights[:, None] * 2 * residual).T @ x / weights.sum()
    grad_b = (weights[:, None] * 2 * residual).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(layer.weight.grad, grad_w, rtol=1e-10)
    np.testing.assert_allclose(layer.bias.grad, grad_b, rtol=1e-10)


# ---- strategy pinned on the module -------------------------------------------------------

def test_strategy_argument_pins_the_strategy(case):
    cls, prediction, target, per_example = case
    summed = call(cls(strategy="sum"), prediction, target)  # default context is deferred
    np.testing.assert_allclose(summed.item(), per_example.sum(), rtol=1e-5)
    with mdl.normalization("sum"):
        averaged = call(cls(strategy="deferred"), prediction, target)
    np.testing.assert_allclose(averaged.item(), per_example.mean(), rtol=1e-5)


def test_strategy_alias_on_the_module():
    _, prediction, target, per_example = mse_case()
    cost = call(MSELoss(strategy="sum-reduction"), prediction, target)
    np.testing.assert_allclose(cost.item(), per_example.sum(), rtol=1e-5)


def test_pinned_strategy_sets_the_gradient_scale():
    rng = _rng(9)
    x, y = rng.standard_normal((M, 2)), rng.standard_normal((M, 1))
    grads = {}
    for strategy in ("absorbed", "sum"):
        layer = mdl.nn.Linear(2, 1, generator=0, dtype=np.float64)
        MSELoss(strategy=strategy)(layer(mdl.tensor(x)), mdl.tensor(y)).backward()
        grads[strategy] = layer.weight.grad
    w = mdl.nn.Linear(2, 1, generator=0, dtype=np.float64).weight.data
    residual = x @ w.T - y  # bias starts at 0
    np.testing.assert_allclose(grads["sum"], 2 * residual.T @ x, rtol=1e-10)
    np.testing.assert_allclose(grads["absorbed"], 2 * residual.T @ x / M, rtol=1e-10)


def test_loss_repr():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss(reduction='batch')"
    assert repr(MSELoss(reduction="none")) == "MSELoss(reduction='none')"


# ---- input checks ------------------------------------------------------------------------

def test_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="out of range"):
        CrossEntropyLoss()(mdl.tensor(np.zeros((2, 3))), mdl.tensor(np.array([0, 3])))


_LABEL_CASES = [(dtype, bad) for dtype in ("int8", "int16", "int32", "int64", "uint8", "uint64")
                for bad in ("negative", "most negative", "too large", "none")
                if dtype.startswith("int") or not bad.endswith("negative")]


@pytest.mark.parametrize("dtype, bad", _LABEL_CASES)
def test_cross_entropy_names_the_first_bad_label_of_any_integer_dtype(dtype, bad):
    # The range check reads signed labels as unsigned (a negative one is then huge), so
    # every width and the most negative value are pinned here.
    info = np.iinfo(dtype)
    value = {"negative": -1, "most negative": info.min, "too large": 3, "none": 2}[bad]
    labels = mdl.tensor(np.array([1, value, 0], dtype=dtype))
    logits = mdl.tensor(np.zeros((3, 3)))
    if bad == "none":
        assert CrossEntropyLoss()(logits, labels).item() == pytest.approx(np.log(3.0))
        return
    with pytest.raises(InvalidValueError, match=f"label {value} is out of range for 3"):
        CrossEntropyLoss()(logits, labels)


def test_shape_mismatch_raises_shape_error():
    with pytest.raises(mdl.ShapeError):
        MSELoss()(mdl.tensor(np.zeros((3, 2))), mdl.tensor(np.zeros((3, 1))))
    with pytest.raises(mdl.ShapeError):
        BCEWithLogitsLoss()(mdl.tensor(np.zeros((3, 1))), mdl.tensor(np.zeros((3,))))


def test_sample_weight_of_wrong_length_raises():
    _, prediction, target, _ = mse_case()
    with pytest.raises(mdl.ShapeError, match="sample_weight"):
        call(MSELoss(), prediction, target, sample_weight=np.ones(M + 1))
