"""Where the 1/m meets batch norm and padded sequences.

* Batch norm's mean and variance are forward statistics of the micro-batch, not a loss
  reduction: its output is the same under every strategy, and under accumulation each
  micro-batch is normalized by its own statistics (as torch).
* A token-level sequence loss over padded batches uses ``mask=``: under ``deferred`` N is
  the number of real tokens, accumulated exactly over micro-batches of different lengths;
  ``absorbed`` averages per micro-batch, so it does not equal the full batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
import minidl.nn.functional as F

STRATEGIES = ("deferred", "absorbed", "sum")


def bn_net(seed: int = 0) -> mdl.nn.Sequential:
    rng = np.random.default_rng(seed)
    return mdl.nn.Sequential(mdl.nn.Linear(4, 6, generator=rng, dtype="float64"),
                             mdl.nn.BatchNorm1d(6, dtype="float64"), mdl.nn.Tanh(),
                             mdl.nn.Linear(6, 3, generator=rng, dtype="float64"))


def grads(model: mdl.nn.Module) -> dict[str, np.ndarray]:
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def rel(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Relative difference of all gradients together: |a - b| / |b| over every parameter
    (per parameter would divide rounding by the bias before batch norm, whose gradient
    is zero up to rounding)."""
    diff = np.concatenate([(a[k] - b[k]).ravel() for k in b])
    return float(np.linalg.norm(diff) / np.linalg.norm(np.concatenate([b[k].ravel() for k in b])))


# ==================================== batch norm =======================================

def test_batch_norm_output_and_statistics_are_the_same_under_every_strategy() -> None:
    rng = np.random.default_rng(1)
    x, y = mdl.tensor(rng.standard_normal((10, 4))), mdl.tensor(rng.integers(0, 3, 10))
    outputs, running, results = {}, {}, {}
    for name in STRATEGIES:
        model = bn_net()
        hidden = model[1](model[0](x))
        with mdl.normalization(name):
            F.cross_entropy(model[3](model[2](hidden)), y).backward()
        outputs[name], running[name] = hidden.data, model[1].running_var.copy()
        results[name] = grads(model)
    for name in ("absorbed", "sum"):  # bit for bit: no strategy reaches the statistics
        np.testing.assert_array_equal(outputs[name], outputs["deferred"])
        np.testing.assert_array_equal(running[name], running["deferred"])
    assert rel(results["deferred"], results["absorbed"]) < 1e-13
    # The batch mean removes any shift, so the bias just before batch norm learns nothing.
    assert np.abs(results["deferred"]["0.bias"]).max() < 1e-15
    scaled = {k: v / 10 for k, v in results["sum"].items()}
    assert rel(scaled, results["absorbed"]) < 1e-13


def test_accumulated_micro_batches_are_normalized_by_their_own_statistics() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((19, 4)) * 3 + 1, rng.integers(0, 3, 19)
    sizes = (8, 8, 3)
    starts = np.cumsum((0,) + sizes)

    model = bn_net()
    for lo, hi in zip(starts[:-1], starts[1:]):  # deferred, accumulated without clearing
        hidden = model[1](model[0](mdl.tensor(x[lo:hi])))
        pre = x[lo:hi] @ model[0].weight.data.T + model[0].bias.data
        by_hand = (pre - pre.mean(axis=0)) / np.sqrt(pre.var(axis=0) + 1e-5)
        np.testing.assert_allclose(hidden.data, by_hand, rtol=1e-10, atol=1e-12)
        F.cross_entropy(model[3](model[2](hidden)), mdl.tensor(y[lo:hi])).backward()
    accumulated = grads(model)

    # Reference: each micro-batch's summed gradient on its own (under "sum", fresh
    # gradients), added up and divided by all 19 examples by hand.
    total: dict[str, np.ndarray] = {}
    for lo, hi in zip(starts[:-1], starts[1:]):
        alone = bn_net()
        with mdl.normalization("sum"):
            F.cross_entropy(alone(mdl.tensor(x[lo:hi])), mdl.tensor(y[lo:hi])).backward()
        for key, value in grads(alone).items():
            total[key] = total.get(key, 0.0) + value
    assert rel(accumulated, {k: v / 19 for k, v in total.items()}) < 1e-13

    # One batch of 19 is normalized by other statistics, so it is a different gradient.
    full = bn_net()
    F.cross_entropy(full(mdl.tensor(x)), mdl.tensor(y)).backward()
    assert rel(accumulated, grads(full)) > 1e-2


# ================================= padded sequences ====================================

VOCAB = 7


class TinyLM(mdl.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(3)
        self.embed = mdl.nn.Embedding(VOCAB, 4, padding_idx=0, generator=rng, dtype="float64")
        self.rnn = mdl.nn.LSTM(4, 5, batch_first=True, generator=rng, dtype="float64")
        self.head = mdl.nn.Linear(5, VOCAB, generator=rng, dtype="float64")

    def forward(self, tokens: mdl.Tensor) -> mdl.Tensor:
        output, _ = self.rnn(self.embed(tokens))
        return self.head(output)


def padded(sequences: list[np.ndarray]) -> tuple[mdl.Tensor, mdl.Tensor, np.ndarray]:
    """Inputs, next-token targets and the mask of real targets, padded with token 0."""
    width = max(len(s) for s in sequences) - 1
    inputs = np.zeros((len(sequences), width), dtype=np.int64)
    targets = np.zeros_like(inputs)
    for row, seq in enumerate(sequences):
        inputs[row, :len(seq) - 1], targets[row, :len(seq) - 1] = seq[:-1], seq[1:]
    mask = np.zeros(inputs.shape, dtype=bool)
    for row, seq in enumerate(sequences):
        mask[row, :len(seq) - 1] = True
    return mdl.tensor(inputs), mdl.tensor(targets), mask


def token_loss(model: TinyLM, sequences: list[np.ndarray]) -> mdl.Tensor:
    inputs, targets, mask = padded(sequences)
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), mask=mask.reshape(-1))


def sequence_measurements() -> dict[str, float]:
    """Relative difference from one full batch over all real tokens of gradients
    accumulated over micro-batches bucketed by length (the README's numbers)."""
    rng = np.random.default_rng(4)
    lengths = sorted(rng.integers(3, 16, 12))  # bucketed: short and long micro-batches
    sequences = [rng.integers(1, VOCAB, n) for n in lengths]
    buckets = [sequences[:5], sequences[5:9], sequences[9:]]

    full = TinyLM()
    token_loss(full, sequences).backward()
    reference = grads(full)
    found = {"tokens": float(sum(n - 1 for n in lengths)),
             "bucket_tokens": [sum(len(s) - 1 for s in b) for b in buckets]}
    for name in ("deferred", "absorbed"):
        model = TinyLM()
        with mdl.normalization(name):
            for bucket in buckets:
                token_loss(model, bucket).backward()
        accumulated = grads(model)
        found[name] = rel(accumulated, reference)
        if name == "absorbed":  # the common recipe: divide by the number of micro-batches
            found["absorbed/k"] = rel({k: v / len(buckets) for k, v in accumulated.items()},
                                      reference)
    return found


def test_token_loss_over_padded_micro_batches() -> None:
    found = sequence_measurements()
    assert found["deferred"] < 1e-12  # exact: N = real tokens, accumulated
    assert found["absorbed"] > 1.0  # sums three means
    assert found["absorbed/k"] > 0.05  # short micro-batches' tokens count for more


def test_padding_tokens_do_not_count() -> None:
    # Padding a batch further changes neither the cost nor the gradients.
    rng = np.random.default_rng(5)
    sequences = [rng.integers(1, VOCAB, n) for n in (4, 6)]
    costs = []
    for extra in (0, 3):
        inputs, targets, mask = padded(sequences)
        pad = np.zeros((2, extra), dtype=np.int64)
        inputs = mdl.tensor(np.concatenate([inputs.data, pad], axis=1))
        targets = mdl.tensor(np.concatenate([targets.data, pad], axis=1))
        mask = np.concatenate([mask, pad.astype(bool)], axis=1)
        model = TinyLM()
        cost = F.cross_entropy(model(inputs).reshape(-1, VOCAB), targets.reshape(-1),
                               mask=mask.reshape(-1))
        cost.backward()
        costs.append((cost.item(), grads(model)))
    assert costs[0][0] == pytest.approx(costs[1][0], rel=1e-14)
    assert rel(costs[1][1], costs[0][1]) < 1e-13


if __name__ == "__main__":  # print the README's numbers
    print(sequence_measurements())
