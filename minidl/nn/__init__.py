"""Neural-network building blocks, as ``torch.nn``."""

from minidl.nn import functional, init, utils
from minidl.nn.activations import GELU, Identity, LeakyReLU, Softmax
from minidl.nn.containers import ModuleDict, ModuleList
from minidl.nn.conv import Conv1d, Conv2d
from minidl.nn.embedding import Embedding
from minidl.nn.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from minidl.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from minidl.nn.module import Module, Parameter
from minidl.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from minidl.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, Flatten, MaxPool2d, Unflatten
from minidl.nn.preprocessing import Standardize
from minidl.nn.recurrent import LSTM, RNN

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
           "Conv1d", "Conv2d", "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GELU",
           "Identity", "LSTM", "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "MaxPool2d",
           "Module", "ModuleDict", "ModuleList", "Parameter", "RNN", "ReLU", "Sequential",
           "Sigmoid", "Softmax", "Standardize", "Tanh", "Unflatten", "functional", "init",
           "utils"]
