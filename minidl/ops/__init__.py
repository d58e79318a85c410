"""Every differentiable op, grouped by kind; ``minidl`` re-exports the functions.

The batch reduction, the one op with a say in normalization, lives in
``minidl.strategy``.
"""

from minidl.ops.elementwise import (
                                    abs,
                                    add,
                                    as_tensor,
                                    cast,
                                    div,
                                    exp,
                                    log,
                                    maximum,
                                    mul,
                                    neg,
                                    pow,
                                    relu,
                                    sigmoid,
                                    sqrt,
                                    sub,
                                    tanh,
                                    where,
)
from minidl.ops.linalg import linear, matmul
from minidl.ops.movement import concatenate, getitem, reshape, stack, transpose
from minidl.ops.reduce import max, mean, sum

__all__ = ["abs", "add", "as_tensor", "cast", "concatenate", "div", "exp",
           "getitem", "linear", "log", "matmul", "max", "maximum", "mean", "mul", "neg", "pow",
           "relu", "reshape", "sigmoid", "sqrt", "stack", "sub", "sum", "tanh", "transpose",
           "where"]
