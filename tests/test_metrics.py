"""Metrics against references computed here example by example in plain Python."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.metrics import accuracy, mean_absolute_error, top_k_accuracy

rng = np.random.default_rng(0)
M, K = 50, 6
SCORES = rng.standard_normal((M, K))
LABELS = rng.integers(0, K, size=M)


def test_multiclass_accuracy_from_labels_one_hot_and_probabilities():
    expected = sum(max(range(K), key=lambda j: SCORES[i, j]) == LABELS[i]
                   for i in range(M)) / M
    assert accuracy(SCORES, LABELS) == expected
    assert accuracy(SCORES, np.eye(K)[LABELS]) == expected
    soft = np.eye(K)[LABELS] * 0.7 + 0.3 / K  # label smoothing keeps the argmax
    assert accuracy(SCORES, soft) == expected
    probabilities = mdl.nn.functional.softmax(mdl.tensor(SCORES), axis=1)
    assert accuracy(probabilities, mdl.tensor(LABELS)) == expected  # Tensors too


@pytest.mark.parametrize("threshold", [0.5, 0.0, 0.8])
def test_binary_accuracy_with_threshold(threshold):
    outputs = rng.uniform(-1, 1.5, size=M)
    targets = rng.integers(0, 2, size=M)
    expected = sum((outputs[i] > threshold) == (targets[i] == 1) for i in range(M)) / M
    assert accuracy(outputs, targets, threshold=threshold) == expected
    assert accuracy(outputs[:, None], targets[:, None].astype(float), threshold) == expected


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_top_k_accuracy(k):
    expected = sum(sorted(SCORES[i], reverse=True).index(SCORES[i, LABELS[i]]) < k
                   for i in range(M)) / M
    assert top_k_accuracy(SCORES, LABELS, k=k) == expected
    if k == 1:
        assert top_k_accuracy(SCORES, LABELS, k=1) == accuracy(SCORES, LABELS)


def test_top_k_ties_count_for_the_label():
    assert top_k_accuracy(np.array([[1.0, 1.0, 1.0]]), np.array([2]), k=1) == 1.0


def test_mean_absolute_error():
    outputs, targets = rng.standard_normal((M, 2)), rng.standard_normal((M, 2))
    expected = sum(abs(outputs[i, j] - targets[i, j]) for i in range(M) for j in range(2))
    assert mean_absolute_error(outputs, targets) == pytest.approx(expected / (2 * M), 1e-14)
    column = outputs[:, :1]
    assert mean_absolute_error(column, targets[:, 0]) == pytest.approx(
        np.abs(column[:, 0] - targets[:, 0]).mean(), rel=1e-14)
    half = outputs.astype(np.float16)  # computed in float64, not float16
    assert mean_absolute_error(half, targets) == pytest.approx(
        np.abs(half.astype(np.float64) - targets).mean(), rel=1e-14)


@pytest.mark.parametrize("call, error, match", [
    (lambda: accuracy(SCORES, LABELS[:-1]), mdl.ShapeError, "same number of rows"),
    (lambda: accuracy(SCORES, np.eye(K + 1)[LABELS]), mdl.ShapeError, "one-hot"),
    (lambda: accuracy(np.zeros(M), np.zeros((M, 2))), mdl.ShapeError, "binary"),
    (lambda: accuracy(np.zeros((0, 3)), np.zeros(0)), mdl.ShapeError, "no examples"),
    (lambda: top_k_accuracy(SCORES, LABELS, k=0), ValueError, "k must"),
    (lambda: top_k_accuracy(SCORES, LABELS + K, k=1), ValueError, "labels must"),
    (lambda: top_k_accuracy(SCORES, LABELS.astype(float)), ValueError, "integers"),
    (lambda: mean_absolute_error(np.zeros((M, 2)), np.zeros(M)), mdl.ShapeError, "different"),
])
def test_bad_inputs_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_trainer_accuracy_is_this_function_of_the_validation_outputs():
    from minidl.config import load_config
    from minidl.trainer import Trainer

    trainer = Trainer(load_config(overrides=["train.epochs=20", "data.val_fraction=0.3",
                                             "output.dir="]))
    final = trainer.fit()
    val = trainer.data.val
    with mdl.no_grad():
        trainer.model.eval()
        logits = trainer.model(mdl.tensor(val.features.astype(np.float32))).data
    by_hand = float(np.mean((logits[:, 0] > 0) == (val.targets[:, 0] > 0.5)))
    assert final["val_accuracy"] == by_hand == accuracy(logits, val.targets, threshold=0.0)
