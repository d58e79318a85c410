"""The benchmarked networks in torch (eager, CPU, float32), as a torch user writes them:
``nn.Sequential`` of ``nn.Linear`` and activations, the loss module with its default (mean)
reduction, ``torch.optim.SGD``, ``zero_grad(); loss_fn(model(x), y).backward(); step()``.

torch is optional (``pip install -e ".[bench]"``, torch 2.13.0 CPU): ``import_torch`` gives
None without it. Used by ``benchmark.py`` beside this file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from benchmark_nets import Spec, Weights


def import_torch() -> Any:
    """The torch module, or None when it is not installed (or blocked)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def match_blas_threads(torch: Any, machine: dict[str, Any]) -> dict[str, Any]:
    """Give torch as many intra-op threads as numpy's BLAS uses, when we can tell them.

    Read from the loaded OpenBLAS itself (``blas_runtime``), else threadpoolctl, else
    ``OPENBLAS_NUM_THREADS``. If none says, torch keeps its default and the report says so.
    ``OMP_NUM_THREADS``, when set, is the user's explicit choice for torch: left alone.
    """
    default = torch.get_num_threads()
    blas = (machine.get("blas_runtime") or {}).get("num_threads")
    source = "OpenBLAS runtime"
    if not blas:
        pools = [p for p in machine.get("threadpoolctl", []) if p.get("user_api") == "blas"]
        blas, source = (pools[0].get("num_threads"), "threadpoolctl") if pools else (None, "")
    if not blas and os.environ.get("OPENBLAS_NUM_THREADS", "").isdigit():
        blas, source = int(os.environ["OPENBLAS_NUM_THREADS"]), "OPENBLAS_NUM_THREADS"
    if "OMP_NUM_THREADS" in os.environ:
        how = "OMP_NUM_THREADS set: torch's own choice kept"
    elif blas:
        torch.set_num_threads(int(blas))
        how = f"= numpy's BLAS threads, from the {source}"
    else:
        how = "numpy's BLAS threads unknown: torch's default"
    return {"torch_threads": torch.get_num_threads(), "torch_default_threads": default,
            "blas_threads": blas, "how": how}


class TorchNet:
    """The network in torch, started from the given (W, b) weights."""

    def __init__(self, spec: Spec, weights: Weights, torch: Any) -> None:
        nn = torch.nn
        layers: list[Any] = []
        for i, (w, b) in enumerate(weights):
            linear = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float32)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if i < len(weights) - 1:
                layers.append(nn.Tanh() if spec.hidden == "tanh" else nn.ReLU())
        self.linears = layers[::2]
        self.model = nn.Sequential(*layers)
        self.loss_fn = nn.BCEWithLogitsLoss() if spec.loss == "bce" else nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=spec.lr)
        self.x, self.y = torch.from_numpy(spec.x), torch.from_numpy(spec.y)

    def weights(self) -> Weights:
        return [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
                for layer in self.linears]

    def step(self) -> None:
        optimizer, model, loss_fn, x, y = (self.optimizer, self.model, self.loss_fn,
                                           self.x, self.y)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    def cost_and_grads(self) -> tuple[float, list[np.ndarray]]:
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        grads = [p.grad.numpy().copy() for layer in self.linears for p in (layer.weight,
                                                                            layer.bias)]
        return float(loss.item()), grads

    def run(self, steps: int) -> None:
        step = self.step
        for _ in range(steps):
            step()
