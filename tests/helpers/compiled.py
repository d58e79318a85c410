"""Two identical models, one step run eagerly on one and compiled on the other, compared
bit for bit (for tests/engine/test_compile*.py)."""

from __future__ import annotations

import numpy as np

import minidl as mdl
from minidl.nn import functional as F


def make_net(dtype, dropout=None, adam=False):
    layers = [mdl.nn.Linear(2, 4, generator=1, dtype=dtype), mdl.nn.Tanh()]
    if dropout is not None:
        layers.append(mdl.nn.Dropout(dropout, generator=7))
    layers.append(mdl.nn.Linear(4, 1, generator=2, dtype=dtype))
    net = mdl.nn.Sequential(*layers)
    opt = (mdl.optim.Adam(net.parameters(), lr=0.01) if adam
           else mdl.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    return net, opt


def batches(dtype, count=4, m=16, seed=0, masks=False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.normal(size=(m, 2)).astype(dtype)
        y = (rng.random((m, 1)) > 0.5).astype(dtype)
        extra = {}
        if masks:  # a different count of kept examples per batch
            extra = {"weight": mdl.tensor(rng.random(m) + 0.5, dtype=dtype),
                     "mask": mdl.tensor(rng.random(m) > 0.3)}
        out.append(({"x": mdl.tensor(x, dtype=dtype), "y": mdl.tensor(y, dtype=dtype)}, extra))
    return out


def plain_step(net, opt, head=lambda logits: logits):
    """One SGD step of BCE-with-logits on ``head(net(x))``."""
    def step(x, y):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(head(net(x)), y)
        loss.backward()
        opt.step()
        return loss
    return step


def step_through(head):
    """A ``make_step`` whose logits pass through ``head`` (a user's op, a broadcast)."""
    return lambda net, opt: plain_step(net, opt, head)


def accumulating_step(net, opt):
    def step(x, y):  # two backward passes (micro-batches) per optimizer step
        opt.zero_grad()
        first = F.binary_cross_entropy_with_logits(net(x[:6]), y[:6])
        first.backward()
        second = F.binary_cross_entropy_with_logits(net(x[6:]), y[6:])
        second.backward()
        opt.step()
        return first, second
    return step


def weighted_step(net, opt):
    def step(x, y, weight, mask):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x), y, sample_weight=weight, mask=mask)
        loss.backward()
        opt.step()
        return loss
    return step


def assert_same(eager, compiled):
    (net_e, opt_e), (net_c, opt_c) = eager, compiled
    for (name, a), (_, b) in zip(net_e.named_parameters(), net_c.named_parameters()):
        assert a.dtype == b.dtype and np.array_equal(a.data, b.data), name
        assert np.array_equal(a.grad, b.grad) and a.grad_count == b.grad_count, name
    for state_e, state_c in zip(opt_e.state, opt_c.state):
        for key in state_e:
            assert np.array_equal(state_e[key], state_c[key]), key


def flat(result):
    return [t.data for t in (result if isinstance(result, tuple) else (result,))]


def run_both(make_step, dtype, data, strategy="deferred", adam=False, dropout=None):
    eager, compiled = make_net(dtype, dropout, adam), make_net(dtype, dropout, adam)
    step_e, step_c = make_step(*eager), mdl.compile(make_step(*compiled))
    with mdl.normalization(strategy):
        for args, extra in data:
            out_e, out_c = step_e(**args, **extra), step_c(**args, **extra)
            for a, b in zip(flat(out_e), flat(out_c)):
                assert a.dtype == b.dtype and np.array_equal(a, b)
            assert_same(eager, compiled)
    assert step_c.eager_reason is None and len(step_c.traces) == 1
    return step_c, eager, compiled
