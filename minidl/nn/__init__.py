"""Neural-network building blocks, as ``torch.nn``."""

from minidl.nn import functional, init, utils
from minidl.nn.activations import GELU, Identity, LeakyReLU, Softmax
from minidl.nn.containers import ModuleDict, ModuleList
from minidl.nn.embedding import Embedding
from minidl.nn.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh
from minidl.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from minidl.nn.module import Module, Parameter
from minidl.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from minidl.nn.preprocessing import Standardize
from minidl.nn.recurrent import LSTM, RNN

__all__ = ["BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "CrossEntropyLoss", "Dropout",
           "Embedding", "GELU", "Identity", "LSTM", "LayerNorm", "LeakyReLU", "Linear",
           "MSELoss", "Module", "ModuleDict", "ModuleList", "Parameter", "RNN", "ReLU",
           "Sequential", "Sigmoid", "Softmax", "Standardize", "Tanh", "functional", "init", "utils"]
