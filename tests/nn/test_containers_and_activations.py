"""ModuleList, ModuleDict (parameters found, state_dict, train/eval) and the activation
modules LeakyReLU, GELU, Softmax, Identity (forward and backward through check_op)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.opcheck import check_op

import minidl as mdl


class Tower(mdl.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = mdl.nn.ModuleList([mdl.nn.Linear(3, 3, generator=k) for k in range(2)])
        self.blocks.append(mdl.nn.BatchNorm1d(3))
        self.heads = mdl.nn.ModuleDict({"a": mdl.nn.Linear(3, 1, generator=5),
                                        "b": mdl.nn.Linear(3, 2, generator=6)})

    def forward(self, x: mdl.Tensor, head: str) -> mdl.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.heads[head](x)


def test_containers_register_parameters_buffers_and_modes() -> None:
    tower = Tower()
    names = [name for name, _ in tower.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                     "blocks.2.weight", "blocks.2.bias", "heads.a.weight", "heads.a.bias",
                     "heads.b.weight", "heads.b.bias"]
    assert "blocks.2.running_mean" in tower.state_dict()
    tower.eval()
    assert not tower.blocks[2].training and not tower.heads["b"].training

    # the gradient reaches every parameter used, through both containers
    tower.train()
    x = mdl.tensor(np.random.default_rng(0).standard_normal((4, 3)))
    tower(x, "b").sum().backward()
    grads = {name: p.grad for name, p in tower.named_parameters()}
    assert all(grads[n] is not None for n in names if not n.startswith("heads.a"))
    assert grads["heads.a.weight"] is None

    # a state_dict round trip through a fresh model gives the same outputs
    other = Tower()
    other.load_state_dict(tower.state_dict())
    with mdl.no_grad():
        np.testing.assert_array_equal(other.eval()(x, "a").data, tower.eval()(x, "a").data)


def test_module_list_behaves_as_a_list() -> None:
    layers = mdl.nn.ModuleList()
    layers.extend([mdl.nn.ReLU(), mdl.nn.Tanh()])
    layers[0] = mdl.nn.Identity()
    assert [type(m).__name__ for m in layers] == ["Identity", "Tanh"]
    assert isinstance(layers[-1], mdl.nn.Tanh) and len(layers[:1]) == 1
    with pytest.raises(IndexError, match="out of range for 2"):
        layers[2]
    with pytest.raises(TypeError, match="not a Module"):
        layers.append(lambda x: x)
    with pytest.raises(NotImplementedError, match="container"):
        layers(mdl.tensor([1.0]))


def test_module_dict_behaves_as_a_dict() -> None:
    heads = mdl.nn.ModuleDict()
    heads["x"] = mdl.nn.Linear(2, 2, generator=0)
    assert "x" in heads and list(heads) == ["x"] and len(heads) == 1
    heads["y"] = mdl.nn.ReLU()
    heads["x"] = mdl.nn.Tanh()  # replacing keeps the place, as torch's
    assert heads.keys() == ["x", "y"] and isinstance(heads.x, mdl.nn.Tanh)
    del heads["x"]
    assert len(list(heads.parameters())) == 0 and heads.keys() == ["y"]
    with pytest.raises(KeyError, match="has no module 'z'"):
        heads["z"]
    with pytest.raises(KeyError, match="hide"):
        heads["keys"] = mdl.nn.ReLU()
    with pytest.raises(KeyError, match="'.'"):
        heads["a.b"] = mdl.nn.ReLU()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_modules(dtype: type) -> None:
    rng = np.random.default_rng(1)
    x = (rng.uniform(0.2, 2.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))).astype(dtype)
    erf = np.vectorize(math.erf)
    check_op(mdl.nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x), [x])
    check_op(mdl.nn.GELU(), lambda x: x * 0.5 * (1 + erf(x / math.sqrt(2))), [x])
    check_op(mdl.nn.Softmax(axis=1), lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True),
             [x])
    assert check_op(lambda x: mdl.nn.Identity(7, any="thing")(x) * 1.0, lambda x: x,
                    [x]).op == "Mul"
    assert repr(mdl.nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    with pytest.raises(ValueError, match="approximate"):
        mdl.nn.GELU("erf")
