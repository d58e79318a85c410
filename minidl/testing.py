"""Verifying a strategy plugin: its formulas, and its gradients against finite differences.

``check_strategy`` runs the strategy on the course's planar network (2 → 4 tanh → 1,
sigmoid cross-entropy, float64) and compares what minidl computes under it with
references computed here in plain numpy from the formula you state, never from the
plugin: the reported cost, the gradient at the per-example losses (where the 1/m
lives in dZ), and dW, db against central finite differences of that cost, for one
batch, a weighted batch, and two uneven micro-batches accumulated.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np

from minidl.data import planar
from minidl.errors import InvalidValueError, MinidlError
from minidl.nn import functional as F
from minidl.strategy import batch_reduce, resolve_strategy
from minidl.tensor import Tensor

Scale = Callable[[float], float]
#: Counts at which the hooks are compared with the stated formulas: one example, an odd
#: batch, the planar batch, a large batch, and a fractional total of sample weights.
FORMULA_COUNTS = (1.0, 7.0, 400.0, 65_536.0, 2.5)


class StrategyCheckError(MinidlError, AssertionError):
    """A strategy's hooks or gradients disagree with its stated formula; says where."""


def check_strategy(strategy: Any, expected_cost_scale: Scale, *,
                   options: dict[str, Any] | None = None,
                   expected_loss_grad_scale: Scale | None = None,
                   accumulates: Literal["sum", "mean"] = "sum", rtol: float = 1e-6,
                   seed: int = 0) -> dict[str, float]:
    """Check ``strategy`` against its formula; the measured errors, or raise with detail.

    :param strategy: a strategy name or alias, dotted module path, ``.py`` file or module.
    :param expected_cost_scale: c as a function of the count N: the reported cost is
        J = c(N) · Σ wᵢ lᵢ (``lambda count: 1 / count`` for a mean).
    :param options: the strategy's options, as in config.
    :param expected_loss_grad_scale: s(N), so dJ/dlᵢ = s · wᵢ; None when it is c (plain
        calculus of the cost: ``absorbed``, ``sum``); ``lambda count: 1.0`` for ``deferred``.
    :param accumulates: how ``.grad`` combines two backward passes: ``"sum"`` (added as
        computed) or ``"mean"`` (the example-weighted mean, as ``deferred``'s running mean).
    :param rtol: tolerance relative to the largest entry of each reference.

    Each backward's dW, db must be the gradient of the reported cost: finite
    differences of J computed in numpy from ``expected_cost_scale``.

    >>> import minidl as mdl
    >>> errors = mdl.testing.check_strategy("deferred", lambda count: 1 / count,
    ...                                     expected_loss_grad_scale=lambda count: 1.0,
    ...                                     accumulates="mean")
    >>> max(errors.values()) < 1e-6
    True
    """
    if accumulates not in ("sum", "mean"):
        raise InvalidValueError(f"accumulates must be 'sum' or 'mean', got {accumulates!r}")
    resolved = resolve_strategy(strategy, options)
    loss_grad_scale = expected_loss_grad_scale or expected_cost_scale
    errors: dict[str, float] = {}
    problems: list[str] = []

    def compare(what: str, got: Any, want: Any) -> None:
        error = _relative_error(got, want)
        errors[what] = error
        if not error <= rtol:
            problems.append(f"{what}: relative error {error:.3g} > rtol {rtol:g} "
                            f"(got {_show(got)}, expected {_show(want)})")

    for count in FORMULA_COUNTS:
        compare(f"minidl_cost_scale({count:g})", resolved.cost_scale(count),
                expected_cost_scale(count))
        compare(f"loss-gradient scale at count {count:g}", resolved.loss_grad_scale(count),
                loss_grad_scale(count))

    net = PlanarNet(seed)
    m = len(net.x)
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, m)
    for label, sample_weight in (("one batch", None), ("weighted batch", weights)):
        w = np.ones(m) if sample_weight is None else sample_weight
        got = net.backward(resolved, [slice(None)], sample_weight)
        c = expected_cost_scale(float(w.sum()))
        compare(f"{label}: reported cost", got.cost, c * net.losses(net.params) @ w)
        compare(f"{label}: dJ/dl_i", got.loss_grads[0], loss_grad_scale(float(w.sum())) * w)
        reference = net.finite_differences(lambda p: c * net.losses(p) @ w)
        for name in reference:
            compare(f"{label}: {name} against finite differences", got.grads[name],
                    reference[name])

    parts = [slice(0, 150), slice(150, m)]  # uneven micro-batches, one backward each
    got = net.backward(resolved, parts, None)
    for name, want in net.accumulated(parts, expected_cost_scale, accumulates).items():
        compare(f"{len(parts)} micro-batches accumulated ({accumulates}): {name}",
                got.grads[name], want)
    if problems and expected_loss_grad_scale is None and any("dJ/dl_i" in p for p in problems):
        problems.append("(expected_loss_grad_scale defaults to expected_cost_scale: pass it "
                        "when the strategy seeds backward differently, as deferred does)")
    if problems:
        raise StrategyCheckError(f"strategy {resolved.name!r} does not match its formula:\n  "
                                 + "\n  ".join(problems))
    return errors


class _Backward:
    def __init__(self) -> None:
        self.cost = 0.0
        self.loss_grads: list[np.ndarray] = []
        self.grads: dict[str, np.ndarray] = {}


class PlanarNet:
    """The course's 2 → 4 tanh → 1 network on the planar data, in float64, seeded weights;
    its per-example losses in numpy (the reference) and through minidl (under test)."""

    NAMES = ("W1", "b1", "W2", "b2")

    def __init__(self, seed: int) -> None:
        x, labels = planar()
        self.x, self.y = x.astype(np.float64), labels.astype(np.float64).reshape(-1, 1)
        rng = np.random.default_rng(seed)
        self.params = {"W1": rng.standard_normal((4, 2)), "b1": 0.5 * rng.standard_normal(4),
                       "W2": rng.standard_normal((1, 4)), "b2": 0.5 * rng.standard_normal(1)}

    def losses(self, params: dict[str, np.ndarray], rows: slice = slice(None)) -> np.ndarray:
        """Per-example sigmoid cross-entropy, written out in numpy."""
        a1 = np.tanh(self.x[rows] @ params["W1"].T + params["b1"])
        z2 = (a1 @ params["W2"].T + params["b2"]).ravel()
        y = self.y[rows].ravel()
        return np.maximum(z2, 0) - z2 * y + np.log1p(np.exp(-np.abs(z2)))

    def backward(self, strategy: Any, parts: list[slice],
                 sample_weight: np.ndarray | None) -> _Backward:
        """One minidl backward per part, accumulating into the same leaves."""
        leaves = {name: Tensor(value.copy(), requires_grad=True)
                  for name, value in self.params.items()}
        result = _Backward()
        for rows in parts:
            a1 = F.tanh(F.linear(Tensor(self.x[rows]), leaves["W1"], leaves["b1"]))
            z2 = F.linear(a1, leaves["W2"], leaves["b2"])
            losses = F.binary_cross_entropy_with_logits(z2, Tensor(self.y[rows]),
                                                        reduction="none")
            losses.retain_grad()
            weights = None if sample_weight is None else sample_weight[rows]
            cost = batch_reduce(losses, sample_weight=weights, strategy=strategy)
            cost.backward()
            result.cost += float(cost.data)
            result.loss_grads.append(np.array(losses.grad))
        result.grads = {f"d{name}": np.array(leaf.grad) for name, leaf in leaves.items()}
        return result

    def finite_differences(self, cost: Callable[[dict[str, np.ndarray]], float],
                           eps: float = 1e-6) -> dict[str, np.ndarray]:
        """d cost / d each parameter by central differences."""
        grads = {}
        for name in self.NAMES:
            grad = np.zeros_like(self.params[name])
            for index in np.ndindex(grad.shape):
                nudged = {k: v.copy() for k, v in self.params.items()}
                nudged[name][index] += eps
                up = cost(nudged)
                nudged[name][index] -= 2 * eps
                grad[index] = (up - cost(nudged)) / (2 * eps)
            grads[f"d{name}"] = grad
        return grads

    def accumulated(self, parts: list[slice], cost_scale: Scale,
                    accumulates: str) -> dict[str, np.ndarray]:
        """What ``.grad`` should hold after one backward per part: each part's gradient of
        its own cost, summed, or averaged weighted by the part's examples."""
        total: dict[str, np.ndarray] = {}
        sizes = [len(self.x[rows]) for rows in parts]
        for rows, size in zip(parts, sizes):
            c = cost_scale(float(size))
            grads = self.finite_differences(lambda p, rows=rows, c=c: c * self.losses(p, rows)
                                            .sum())
            weight = size / sum(sizes) if accumulates == "mean" else 1.0
            for name, grad in grads.items():
                total[name] = total.get(name, 0.0) + weight * grad
        return total


def _relative_error(got: Any, want: Any) -> float:
    got64, want64 = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got64.shape != want64.shape and got64.size != 1 and want64.size != 1:
        return float("inf")
    if not np.isfinite(got64).all():
        return float("inf")
    scale = float(np.abs(want64).max()) or 1.0
    return float(np.abs(got64 - want64).max() / scale)


def _show(value: Any) -> str:
    array = np.asarray(value, np.float64)
    if array.size == 1:
        return f"{float(array.ravel()[0]):.6g}"
    return f"an array of largest entry {np.abs(array).max():.6g}"
