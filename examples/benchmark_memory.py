"""Peak memory of one training step, minidl against hand numpy, measured with tracemalloc.

numpy reports its array buffers to tracemalloc, so the traced peak of one step
(forward, cost, backward, SGD update; weights and data allocated beforehand) is
the memory the step itself needs. Used by ``benchmark.py --memory``; runnable alone:

    python examples/benchmark_memory.py --batch 65536
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from typing import Any, Callable

import numpy as np

import minidl as mdl
from benchmark_nets import DTYPE, MinidlNet, NumpyNet, Spec

SIZES = (784, 256, 128, 10)


def mlp_spec(batch: int, seed: int = 0) -> Spec:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=batch).astype(np.int64)
    return Spec(f"mlp-b{batch}", SIZES, "relu", "ce", x, y, lr=0.01)


class OpsNet:
    """The same network through minidl's tensor ops, ``x @ W.T + b`` and ``mdl.relu``:
    unlike ``benchmark_nets.FunctionalNet`` (``F.linear``, one fused node per layer),
    the unfused path, so the one whose graph could keep the most arrays."""

    def __init__(self, spec: Spec, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.params = [(mdl.tensor(w, requires_grad=True), mdl.tensor(b, requires_grad=True))
                       for w, b in weights]
        self.x, self.y, self.lr = mdl.tensor(spec.x), mdl.tensor(spec.y), spec.lr

    def step(self) -> None:
        a = self.x
        for i, (w, b) in enumerate(self.params):
            w.grad = b.grad = None
            z = a @ w.T + b
            a = mdl.relu(z) if i < len(self.params) - 1 else z
        loss = mdl.nn.functional.cross_entropy(a, self.y)
        loss.backward()
        with mdl.no_grad():
            for w, b in self.params:
                w.data -= self.lr * w.grad
                b.data -= self.lr * b.grad


def peak_bytes(step: Callable[[], None]) -> int:
    """Traced peak of one call of ``step`` above what was allocated before it."""
    step()  # warm up: caches, the first gradient buffers
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def measure(batch: int, seed: int = 0) -> dict[str, Any]:
    spec = mlp_spec(batch, seed)
    net = MinidlNet(spec, seed)
    weights = net.weights()
    results = {"batch": batch, "sizes": list(SIZES), "dtype": str(np.dtype(DTYPE))}
    ref = NumpyNet(spec, weights)
    results["numpy_peak_bytes"] = peak_bytes(ref.step)
    del ref
    results["minidl_nn_peak_bytes"] = peak_bytes(net.step)
    del net
    ops = OpsNet(spec, weights)
    results["minidl_functional_peak_bytes"] = peak_bytes(ops.step)
    for path in ("nn", "functional"):
        results[f"{path}_over_numpy"] = (results[f"minidl_{path}_peak_bytes"]
                                         / results["numpy_peak_bytes"])
    return results


def print_memory(result: dict[str, Any]) -> None:
    mb = 1 << 20
    print(f"\npeak memory of one step (tracemalloc), {'-'.join(map(str, result['sizes']))}, "
          f"batch {result['batch']}, {result['dtype']}")
    print(f"  hand numpy          {result['numpy_peak_bytes'] / mb:9.1f} MB")
    for path, shown in (("nn", "nn"), ("functional", "ops")):  # ops: OpsNet, unfused
        print(f"  minidl {shown:<12} {result[f'minidl_{path}_peak_bytes'] / mb:9.1f} MB  "
              f"{result[f'{path}_over_numpy']:.2f}x numpy (aim <= 1.2x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=65536)
    args = parser.parse_args(argv)
    print_memory(measure(args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
