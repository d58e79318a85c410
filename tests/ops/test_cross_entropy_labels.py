"""cross_entropy takes labels of shape (m,) only: (m, 1) labels would broadcast to (m, m)."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.nn import functional as F


@pytest.mark.parametrize("labels", [np.array([[0.0], [1.0], [2.0]]),
                                    np.array([[0], [1], [2]]),
                                    np.array([[0, 1, 2]]).T.astype(np.float32)])
def test_labels_of_shape_m_by_1_are_refused_naming_the_shape(labels):
    logits = mdl.tensor(np.zeros((3, 4)))
    for reduction in ("none", "batch"):
        with pytest.raises(mdl.ShapeError, match=r"shape \(m,\) = \(3,\), got shape \(3, 1\)"):
            F.cross_entropy(logits, mdl.tensor(labels), reduction=reduction)


def test_float_labels_of_shape_m_still_work():
    logits = mdl.tensor(np.zeros((3, 4)))
    losses = F.cross_entropy(logits, mdl.tensor([0.0, 1.0, 3.0]), reduction="none")
    np.testing.assert_allclose(losses.data, np.full(3, np.log(4.0)))
