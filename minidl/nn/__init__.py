"""Neural-network building blocks, as ``torch.nn``."""

from minidl.nn import functional, init, utils
from minidl.nn.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from minidl.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from minidl.nn.module import Module, Parameter

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "Linear", "MSELoss", "Module",
           "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh", "functional", "init", "utils"]
