"""The conv2d benchmark of issue 12: minidl against torch's CPU convolution, and the memory
its im2col takes.

Workload (float32, batch 64): x of 1x28x28 -> conv 8 channels 5x5 (+ bias) -> conv 16
channels 5x5 (+ bias); backward from a fixed random output gradient to both weights and
biases (the input needs no gradient), as a LeNet's first two layers train. Both sides run
it from the same arrays; before timing, their outputs and gradients are compared, with a
tolerance relative to each array's largest value. Then rounds alternate (the order flips
every round) and the report gives the median of the per-round ratios minidl / torch, with
its interquartile range.

Memory: ``tracemalloc`` (numpy reports its buffers to it) measures the peak of new
allocations during conv2d forward, and forward + backward, of the second layer at batch
256, relative to the input's unfolded size N * C * kh * kw * OH * OW * 4 bytes (what a
full im2col would copy). The aim is at most 3x.

torch is optional (``pip install -e ".[bench]"``): without it, minidl is timed alone and
the comparison is skipped with a note.

Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

import os

import statistics
import tracemalloc
from typing import Any, Callable

import numpy as np
from benchmark_timing import alternating_rounds, iqr, per_step_seconds

import minidl as mdl

#: From the issue: minidl's conv2d forward+backward at most 1.5x torch's CPU conv.
AIM = 1.5
#: ...and im2col's memory at batch 256 at most 3x the unfolded input.
MEMORY_AIM = 3.0
#: max |minidl - torch| / max |torch| allowed for the output and each gradient
TOLERANCE = 1e-4
LAYERS = ((1, 8, 5), (8, 16, 5))  # (in channels, out channels, kernel)


def make_arrays(batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)}
    size = 28
    for i, (cin, cout, k) in enumerate(LAYERS, start=1):
        bound = 1 / np.sqrt(cin * k * k)
        arrays[f"w{i}"] = rng.uniform(-bound, bound, (cout, cin, k, k)).astype(np.float32)
        arrays[f"b{i}"] = rng.uniform(-bound, bound, cout).astype(np.float32)
        size -= k - 1
    arrays["grad"] = rng.standard_normal((batch, LAYERS[-1][1], size, size)).astype(np.float32)
    return arrays


class _TwoConvs:
    """Two conv2d layers' forward and backward, written the same for both libraries."""

    conv2d: Callable[..., Any]
    x: Any
    grad: Any
    params: list[Any]

    def step(self) -> Any:
        w1, b1, w2, b2 = self.params
        for p in self.params:
            p.grad = None
        out = self.conv2d(self.conv2d(self.x, w1, b1), w2, b2)
        out.backward(self.grad)
        return out

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


class MinidlConv(_TwoConvs):
    """The two layers with ``mdl.nn.functional.conv2d``."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.conv2d = mdl.nn.functional.conv2d
        self.x, self.grad = mdl.tensor(arrays["x"]), mdl.tensor(arrays["grad"])
        self.params = [mdl.tensor(arrays[name], requires_grad=True)
                       for name in ("w1", "b1", "w2", "b2")]

    def result(self) -> list[np.ndarray]:
        out = self.step()
        return [np.asarray(out.data)] + [np.asarray(p.grad) for p in self.params]


class TorchConv(_TwoConvs):
    """The same two layers with ``torch.nn.functional.conv2d`` on the CPU."""

    def __init__(self, arrays: dict[str, np.ndarray], torch: Any) -> None:
        self.conv2d = torch.nn.functional.conv2d
        self.x, self.grad = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["grad"])
        self.params = [torch.tensor(arrays[name], requires_grad=True)
                       for name in ("w1", "b1", "w2", "b2")]

    def result(self) -> list[np.ndarray]:
        out = self.step()
        return [out.detach().numpy()] + [p.grad.numpy() for p in self.params]


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def check_against_torch(minidl_conv: MinidlConv, torch_conv: TorchConv) -> dict[str, Any]:
    names = ["output", "dW1", "db1", "dW2", "db2"]
    problems, worst = [], 0.0
    for name, a, b in zip(names, minidl_conv.result(), torch_conv.result()):
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{name}: minidl {a.dtype}{a.shape} vs torch {b.dtype}{b.shape}")
            continue
        # float32 sums over 25,600 positions: judge each array relative to its largest value
        diff = float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-30)
        if not diff <= TOLERANCE:
            problems.append(f"{name}: max |diff| / max |torch| = {diff:.3g}")
        worst = max(worst, diff)
    return {"ok": not problems, "problems": problems, "max_rel_diff": worst}


def im2col_memory(batch: int = 256, seed: int = 0) -> dict[str, Any]:
    """Peak new allocations of the second layer's conv2d at ``batch``, in bytes and as a
    multiple of the input's unfolded size."""
    arrays = make_arrays(batch, seed)
    (_, _, k1), (cin, cout, k) = LAYERS
    x = mdl.tensor(np.random.default_rng(seed).standard_normal(
        (batch, cin, 28 - k1 + 1, 28 - k1 + 1)).astype(np.float32))
    w = mdl.tensor(arrays["w2"], requires_grad=True)
    x.requires_grad = True
    side = x.shape[2] - k + 1
    unfolded = batch * cin * k * k * side * side * x.dtype.itemsize
    grad = mdl.tensor(np.ones((batch, cout, side, side), dtype=np.float32))
    peaks = {}
    tracemalloc.start()
    try:
        out = mdl.nn.functional.conv2d(x, w)
        peaks["forward"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        out.backward(grad)
        peaks["forward_backward"] = max(peaks["forward"], tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    return {"batch": batch, "input_shape": list(x.shape), "kernel": k,
            "unfolded_bytes": unfolded,
            "forward_peak_bytes": peaks["forward"],
            "forward_backward_peak_bytes": peaks["forward_backward"],
            "forward_ratio": peaks["forward"] / unfolded,
            "forward_backward_ratio": peaks["forward_backward"] / unfolded,
            "aim": MEMORY_AIM,
            "meets_aim": peaks["forward_backward"] / unfolded <= MEMORY_AIM}


def bench_conv(rounds: int, round_s: float, warmup_s: float, seed: int,
               batch: int = 64) -> dict[str, Any]:
    """Check, then time minidl (and torch, when installed) in alternating rounds."""
    arrays = make_arrays(batch, seed)
    minidl_conv = MinidlConv(arrays)
    torch = _import_torch()
    result: dict[str, Any] = {"batch": batch, "dtype": "float32", "rounds": rounds,
                              "layers": [list(layer) for layer in LAYERS], "aim": AIM,
                              "torch": None if torch is None else torch.__version__}
    runs: dict[str, Callable[[int], None]] = {"minidl": minidl_conv.run}
    if torch is not None:
        torch_conv = TorchConv(arrays, torch)
        # Same threads on both sides: OPENBLAS_NUM_THREADS=1 alone would pit one BLAS
        # thread against torch's default (all cores).
        blas_threads = os.environ.get("OPENBLAS_NUM_THREADS")
        if blas_threads and blas_threads.isdigit() and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(int(blas_threads))
        result["torch_threads"] = torch.get_num_threads()
        result["check"] = check_against_torch(minidl_conv, torch_conv)
        if not result["check"]["ok"]:
            return result
        runs["torch"] = torch_conv.run
    per_step = max(per_step_seconds(run, warmup_s) for run in runs.values())
    steps = max(3, round(round_s / per_step))
    times = alternating_rounds(runs, rounds, steps)
    result["steps_per_round"] = steps
    result.update({f"{name}_median_s": statistics.median(values)
                   for name, values in times.items()})
    result.update({f"{name}_times_s": values for name, values in times.items()})
    if torch is not None:
        ratios = [m / t for m, t in zip(times["minidl"], times["torch"])]
        result["ratio_paired_median"] = statistics.median(ratios)
        result["ratio_paired_iqr"] = iqr(ratios)
        result["ratio_of_medians"] = result["minidl_median_s"] / result["torch_median_s"]
        result["meets_aim"] = result["ratio_paired_median"] <= AIM
    return result


def print_conv_report(result: dict[str, Any], memory: dict[str, Any]) -> None:
    layers = " -> ".join(f"{cout}ch {k}x{k}" for _, cout, k in result["layers"])
    print(f"\nconv2d forward + backward (batch {result['batch']}, 1x28x28 -> {layers}, "
          f"{result['dtype']}, weights and biases get gradients)")
    if result["torch"] is None:
        print("  torch is not installed: no comparison (pip install -e \".[bench]\" for it)")
    else:
        check = result["check"]
        verdict = "ok" if check["ok"] else "MISMATCH: " + "; ".join(check["problems"])
        print(f"  check against torch {result['torch']} (output and gradients, max |diff| "
              f"<= {TOLERANCE:g} x max |torch|): {verdict}, worst {check['max_rel_diff']:.1e}")
        if not check["ok"]:
            return
    print(f"  {'impl':<8} {'rounds x steps':>15} {'median':>12}")
    for name in ("minidl", "torch"):
        if f"{name}_median_s" in result:
            print(f"  {name:<8} {result['rounds']:>6} x {result['steps_per_round']:<6} "
                  f"{result[f'{name}_median_s'] * 1e3:9.2f} ms")
    if "ratio_paired_median" in result:
        verdict = "met" if result["meets_aim"] else "NOT met"
        print(f"  ratio minidl / torch: median of paired rounds "
              f"{result['ratio_paired_median']:.2f} (IQR {result['ratio_paired_iqr']:.2f}), "
              f"of medians {result['ratio_of_medians']:.2f}; aim <= {AIM:g} {verdict} "
              f"(torch threads {result['torch_threads']})")
        other = result.get("other_processes_cpu_share")
        if other is not None and other > 0.1:
            print(f"  warning: other processes used {other:.0%} of the CPUs meanwhile; "
                  "rerun when the machine is idle")
    mb = 1 / 2 ** 20
    verdict = "met" if memory["meets_aim"] else "NOT met"
    print(f"  im2col memory at batch {memory['batch']} (input {tuple(memory['input_shape'])}, "
          f"{memory['kernel']}x{memory['kernel']}): unfolded input "
          f"{memory['unfolded_bytes'] * mb:.1f} MiB; peak new allocations forward "
          f"{memory['forward_peak_bytes'] * mb:.1f} MiB ({memory['forward_ratio']:.2f}x), "
          f"forward + backward {memory['forward_backward_peak_bytes'] * mb:.1f} MiB "
          f"({memory['forward_backward_ratio']:.2f}x); aim <= {MEMORY_AIM:g}x {verdict}")
