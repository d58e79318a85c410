"""What to say when training diverges: the likely cause, from the dtype and the optimizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.optim.optimizer import Optimizer

_FLOAT16 = np.dtype(np.float16)


def divergence_hint(dtype: Any, optimizer: Optimizer) -> str:
    """One sentence naming the likely cause of a NaN/inf loss and what to change, in
    config terms (``optimizer.lr``, ``train.dtype``).

    >>> import minidl as mdl
    >>> adam = mdl.optim.Adam([mdl.nn.Parameter([1.0])], lr=0.5)
    >>> divergence_hint("float32", adam).split(": ")[-1]
    'lower optimizer.lr'
    >>> divergence_hint("float16", adam)[:45]
    'in float16 any value past 65,504 overflows to'
    """
    dtype = np.dtype(dtype)
    name = type(optimizer).__name__
    groups = optimizer.param_groups
    lrs = sorted({group["lr"] for group in groups})
    lr = f"lr = {lrs[0]:g}" if len(lrs) == 1 else f"lr = {', '.join(f'{v:g}' for v in lrs)}"
    # float16 weights are updated in float32 master copies (see Optimizer), so an eps
    # matters if it rounds to 0 in the dtype the update runs in.
    update_dtype = np.dtype(np.float32) if dtype == _FLOAT16 else dtype
    tiny_eps = sorted({group["eps"] for group in groups
                       if "eps" in group and update_dtype.type(group["eps"]) == 0})
    if tiny_eps:
        return (f"{name}'s eps = {tiny_eps[0]:g} rounds to 0 in {update_dtype}, so a weight "
                f"whose gradient is 0 gets 0/0: raise optimizer.eps (e.g. to 1e-7)")
    if dtype == _FLOAT16:
        return (f"in float16 any value past 65,504 overflows to inf (activations, logits or "
                f"the weights {name} updates with {lr}): lower optimizer.lr, standardize the "
                "inputs (data.standardize = true) or use train.dtype = \"float32\"")
    if "eps" in groups[0] or "alpha" in groups[0]:  # adaptive: Adam, AdamW, RMSprop
        return (f"{name} moves every weight by up to about lr per step whatever the "
                f"gradient's size, and {lr} is large: lower optimizer.lr")
    momenta = sorted({group.get("momentum", 0.0) for group in groups})
    momentum = f" or momentum (now {momenta[-1]:g})" if momenta[-1] else ""
    return (f"{name}'s step is lr times the gradient and {lr} overshoots: lower "
            f"optimizer.lr{momentum}, or standardize the inputs (data.standardize = true)")
