"""Optimizers, as ``torch.optim``: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, with
parameter groups; learning-rate schedules in ``minidl.optim.lr_scheduler``."""

from minidl.errors import HyperparameterError
from minidl.optim import lr_scheduler
from minidl.optim.adam import Adam, AdamW
from minidl.optim.optimizer import Optimizer
from minidl.optim.rmsprop import RMSprop
from minidl.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "HyperparameterError", "Optimizer", "RMSprop",
           "lr_scheduler"]
