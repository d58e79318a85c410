"""Optimizers, as ``torch.optim``: ``SGD``, ``Adam``, ``AdamW``."""

from minidl.optim.adam import Adam, AdamW
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
