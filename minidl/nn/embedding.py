"""``Embedding``: a learned lookup table from integer tokens to vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.dtypes import as_float_dtype, get_default_dtype
from minidl.errors import InvalidValueError
from minidl.nn.module import Module, Parameter
from minidl.ops.embedding import embedding
from minidl.tensor import Tensor


class Embedding(Module):
    """Rows of a (num_embeddings, embedding_dim) weight, drawn N(0, 1) as torch's.

    Integer indices of any shape give vectors of shape ``indices.shape + (dim,)``;
    ``padding_idx`` names a row that starts at zero and never receives a gradient.

    >>> import minidl as mdl
    >>> emb = mdl.nn.Embedding(5, 3, padding_idx=0, generator=0)
    >>> emb(mdl.tensor([[4, 0]], dtype="int64")).shape, emb.weight.data[0]
    ((1, 2, 3), array([0., 0., 0.], dtype=float32))
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 generator: Any = None, dtype: Any = None) -> None:
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings),
                            ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or value < 1:
                raise InvalidValueError(f"Embedding: {name} must be a positive integer, got "
                                        f"{value!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise InvalidValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                        f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        dtype = as_float_dtype(dtype) if dtype is not None else get_default_dtype()
        weight = np.random.default_rng(generator).standard_normal((num_embeddings,
                                                                   embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(weight, dtype=dtype)

    def forward(self, indices: Any) -> Tensor:
        return embedding(indices, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
