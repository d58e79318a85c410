"""Before timing: do all implementations compute the same training step? A comparison of
different computations means nothing, so ``benchmark.py`` exits with status 1 on a mismatch.

* each eager implementation (minidl nn, minidl functional, torch) against hand numpy, from
  identical weights: the cost and every gradient of one batch, and the weights after one SGD
  step, ``np.allclose`` with ``RTOL``/``ATOL``;
* the compiled step against the eager nn step: the weights after ``COMPILED_STEPS`` steps
  must be bit-identical, and the step must not have fallen back to eager.

Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from benchmark_nets import CompiledNet, FunctionalNet, MinidlNet, NumpyNet, Spec, Weights
from benchmark_torch import TorchNet

# float32 sums over up to 1024 examples: agree to ~1e-6 relative, allow headroom.
RTOL, ATOL = 1e-4, 1e-6
#: steps the compiled and the eager step run before their weights are compared bit for bit
COMPILED_STEPS = 5


def compare_to_numpy(spec: Spec, build: Callable[[Weights], Any],
                     weights: Weights) -> dict[str, Any]:
    """One batch from ``weights``: same cost, gradients, dtype, and weights after one step?"""
    net, ref = build(weights), NumpyNet(spec, weights)
    cost_i, grads_i = net.cost_and_grads()
    cost_n, grads_n = ref.cost_and_grads()
    names = [f"{kind}{i + 1}" for i in range(len(grads_n) // 2) for kind in ("dW", "db")]
    problems = []
    worst = 0.0
    for name, gi, gn in zip(names, grads_i, grads_n):
        if gi.shape != gn.shape or gi.dtype != gn.dtype:
            problems.append(f"{name}: {gi.dtype}{gi.shape} vs numpy {gn.dtype}{gn.shape}")
            continue
        if not np.allclose(gi, gn, rtol=RTOL, atol=ATOL):
            problems.append(f"{name}: max |diff| {np.abs(gi - gn).max():.3g}")
        scale = max(float(np.abs(gn).max()), 1e-30)
        worst = max(worst, float(np.abs(gi - gn).max()) / scale)
    if len(grads_i) != len(grads_n):
        problems.append(f"{len(grads_i)} gradients vs numpy's {len(grads_n)}")
    if not np.isclose(cost_i, cost_n, rtol=RTOL, atol=ATOL):
        problems.append(f"cost: {cost_i!r} vs numpy {cost_n!r}")
    # One full step each (zero_grad, forward, backward, SGD) from the same weights.
    net, ref = build(weights), NumpyNet(spec, weights)
    net.step()
    ref.step()
    for i, ((wi, bi), (wn, bn)) in enumerate(zip(net.weights(), ref.weights())):
        if not (np.allclose(wi, wn, rtol=RTOL, atol=ATOL)
                and np.allclose(bi, bn, rtol=RTOL, atol=ATOL)):
            problems.append(f"layer {i + 1} weights differ after one SGD step")
    return {"ok": not problems, "problems": problems, "cost": cost_n,
            "max_rel_grad_diff": worst, "dtype": str(grads_n[0].dtype)}


def check_compiled(spec: Spec, seed: int) -> dict[str, Any]:
    """The compiled step replays, and leaves the weights bit-identical to the eager step's."""
    eager, compiled = MinidlNet(spec, seed), CompiledNet(spec, seed)
    eager.run(COMPILED_STEPS)
    compiled.run(COMPILED_STEPS)
    problems = []
    if compiled.eager_reason is not None:
        problems.append(f"the compiled step fell back to eager: {compiled.eager_reason}")
    for i, ((we, be), (wc, bc)) in enumerate(zip(eager.weights(), compiled.weights())):
        if not (np.array_equal(we, wc) and np.array_equal(be, bc)):
            worst = max(float(np.abs(we - wc).max()), float(np.abs(be - bc).max()))
            problems.append(f"layer {i + 1} weights differ from eager's after "
                            f"{COMPILED_STEPS} steps (max |diff| {worst:.3g})")
    return {"ok": not problems, "problems": problems, "steps": COMPILED_STEPS}


def check_all(spec: Spec, seed: int, torch: Any) -> dict[str, Any]:
    """Every implementation's check for one network; ``ok`` only if all passed."""
    weights = MinidlNet(spec, seed).weights()
    checks: dict[str, Any] = {
        "eager": compare_to_numpy(spec, lambda _: MinidlNet(spec, seed), weights),
        "functional": compare_to_numpy(spec, lambda w: FunctionalNet(spec, w), weights),
        "compiled": check_compiled(spec, seed),
    }
    if torch is None:
        checks["torch"] = {"ok": True, "skipped": "torch is not installed"}
    else:
        checks["torch"] = compare_to_numpy(spec, lambda w: TorchNet(spec, w, torch), weights)
    return {"ok": all(c["ok"] for c in checks.values()), "impls": checks,
            "cost": checks["eager"]["cost"], "dtype": checks["eager"]["dtype"]}
