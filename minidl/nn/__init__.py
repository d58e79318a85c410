"""Neural-network building blocks, as ``torch.nn``."""

from minidl.nn import functional
from minidl.nn.conv import Conv1d, Conv2d
from minidl.nn.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from minidl.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from minidl.nn.module import Module, Parameter
from minidl.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d, Unflatten

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "Linear", "MSELoss", "Module",
           "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh", "functional"]
__all__ += ["AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "Flatten", "MaxPool2d",
            "Unflatten"]
