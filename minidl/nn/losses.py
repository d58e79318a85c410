"""Loss modules. Their default ``reduction="batch"`` goes through the active
normalization strategy; ``strategy=`` pins one for this loss."""

from __future__ import annotations

from typing import Any

from minidl.nn import functional as F
from minidl.nn.module import Module
from minidl.tensor import Tensor


class _Loss(Module):
    _function = staticmethod(F.mse_loss)

    def __init__(self, reduction: str = "batch", strategy: Any = None) -> None:
        super().__init__()
        F.check_reduction(reduction)
        self.reduction, self.strategy = reduction, strategy

    def forward(self, prediction: Tensor, target: Any, sample_weight: Any = None,
                mask: Any = None) -> Tensor:
        return self._function(prediction, target, reduction=self.reduction,
                              sample_weight=sample_weight, mask=mask, strategy=self.strategy)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (m, C) and integer labels (m,).

    >>> import minidl as mdl
    >>> mdl.nn.CrossEntropyLoss()(mdl.tensor([[0.0, 0.0]]), mdl.tensor([1], dtype="int64"))
    tensor(0.6931472)
    """

    _function = staticmethod(F.cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (the sigmoid is inside, stable for any logit).

    >>> import minidl as mdl
    >>> mdl.nn.BCEWithLogitsLoss()(mdl.tensor([[0.0]]), mdl.tensor([[1.0]]))
    tensor(0.6931472)
    """

    _function = staticmethod(F.binary_cross_entropy_with_logits)


class MSELoss(_Loss):
    """Mean squared error per example, batch-reduced by the strategy.

    >>> import minidl as mdl
    >>> mdl.nn.MSELoss()(mdl.tensor([2.0]), mdl.tensor([0.0]))
    tensor(4.)
    """
