"""End to end: the course's planar 2-4-1 network learns the flower with SGD."""

from __future__ import annotations

import numpy as np

import minidl as mdl


def test_planar_network_reaches_85_percent_in_2000_steps():
    features, labels = mdl.data.planar()
    x = mdl.tensor(features.astype(np.float32))
    y = mdl.tensor(labels.reshape(-1, 1).astype(np.float32))
    rng = np.random.default_rng(3)
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 4, generator=rng), mdl.nn.Tanh(),
                              mdl.nn.Linear(4, 1, generator=rng))
    loss_fn = mdl.nn.BCEWithLogitsLoss()
    optimizer = mdl.optim.SGD(model.parameters(), lr=1.2)
    costs = []
    for _ in range(2000):
        optimizer.zero_grad()
        cost = loss_fn(model(x), y)
        cost.backward()
        optimizer.step()
        costs.append(cost.item())
    with mdl.no_grad():
        logits = model(x).data
    # Accuracy and cost computed here in numpy from the logits, not by minidl.
    accuracy = ((logits[:, 0] > 0) == (labels.reshape(-1) > 0.5)).mean()
    z, t = logits[:, 0].astype(np.float64), labels.reshape(-1).astype(np.float64)
    final_cost = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean()
    assert accuracy > 0.85
    assert final_cost < costs[0]
    np.testing.assert_allclose(costs[-1], final_cost, rtol=0.05)
