"""nn.Module and nn.Parameter: registration, traversal, modes, state and display."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.nn import Linear, Module, Parameter, Sequential, Tanh


class Block(Module):
    """Own parameters around a nested Sequential and a child Linear."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.body = Sequential(Linear(3, 4, generator=rng), Tanh(), Linear(4, 2, generator=rng))
        self.head = Linear(2, 1, bias=False, generator=rng)

    def forward(self, x):
        return self.head(self.body(x))


def names(module: Module) -> list[str]:
    return [name for name, _ in module.named_parameters()]


# ---- registration ------------------------------------------------------------------------

def test_nested_modules_register_dotted_names_in_definition_order():
    assert names(Block()) == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                              "head.weight"]


def test_own_parameters_come_before_children_as_in_torch():
    class Mixed(Module):
        def __init__(self):
            super().__init__()
            self.first = Parameter([1.0])
            self.child = Linear(1, 1, generator=0)
            self.last = Parameter([2.0])

    assert names(Mixed()) == ["first", "last", "child.weight", "child.bias"]


def test_parameters_match_named_parameters_and_are_the_attributes():
    block = Block()
    params = list(block.parameters())
    assert [p for _, p in block.named_parameters()] == params
    assert params[0] is block.body[0].weight and params[-1] is block.head.weight
    assert all(isinstance(p, Parameter) and p.requires_grad for p in params)


def test_shared_parameter_counted_once():
    class Tied(Module):
        def __init__(self):
            super().__init__()
            self.encoder = Linear(3, 3, generator=0)
            self.decoder = Linear(3, 3, generator=1)
            self.decoder.weight = self.encoder.weight
            self.alias = self.encoder.bias

    tied = Tied()
    # As in torch: the first name a parameter is reached by wins, own parameters first.
    assert names(tied) == ["alias", "encoder.weight", "decoder.bias"]
    assert len(list(tied.parameters())) == 3
    assert len({id(p) for p in tied.parameters()}) == 3


def test_same_module_used_twice_counted_once():
    layer = Linear(2, 2, generator=0)
    net = Sequential(layer, Tanh(), layer)
    assert names(net) == ["0.weight", "0.bias"]


def test_reassigning_an_attribute_unregisters_it():
    layer = Linear(2, 3, generator=0)
    layer.bias = None
    assert names(layer) == ["weight"]
    layer.weight = np.zeros((3, 2))  # a plain array is not a parameter
    assert names(layer) == []


def test_plain_tensor_attribute_is_not_a_parameter():
    class WithConstant(Module):
        def __init__(self):
            super().__init__()
            self.constant = mdl.tensor([1.0, 2.0])
            self.weight = Parameter([3.0])

    assert names(WithConstant()) == ["weight"]


def test_assigning_before_super_init_raises_clear_error():
    class Forgetful(Module):
        def __init__(self):
            self.weight = Parameter([1.0])

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Forgetful()


def test_forward_not_implemented_names_the_class():
    class Empty(Module):
        pass

    with pytest.raises(NotImplementedError, match="Empty"):
        Empty()(mdl.tensor([1.0]))


def test_parameter_is_a_leaf_requiring_grad():
    p = Parameter(np.arange(3.0))
    assert p.requires_grad and p.is_leaf and p.grad is None
    np.testing.assert_array_equal(p.data, np.arange(3.0))


# ---- gradients and modes -----------------------------------------------------------------

def test_zero_grad_clears_grad_and_grad_count():
    block = Block()
    x = mdl.tensor(np.random.default_rng(1).standard_normal((5, 3)))
    mdl.nn.functional.mse_loss(block(x), mdl.tensor(np.zeros((5, 1)))).backward()
    params = list(block.parameters())
    assert all(p.grad is not None and p.grad_count == 5 for p in params)
    block.zero_grad()
    assert all(p.grad is None and p.grad_count == 0 for p in params)


def test_train_and_eval_propagate_to_every_submodule():
    block = Block()
    modules = [m for _, m in block.named_modules()]
    assert len(modules) == 6 and all(m.training for m in modules)
    assert block.eval() is block
    assert not any(m.training for m in modules)
    assert block.train() is block
    assert all(m.training for m in modules)
    block.train(False)
    assert not any(m.training for m in modules)


def test_eval_turns_off_dropout_inside_a_sequential():
    net = Sequential(mdl.nn.Dropout(0.5, generator=0))
    x = np.arange(1.0, 101.0, dtype=np.float32)
    net.eval()
    np.testing.assert_array_equal(net(mdl.tensor(x)).data, x)
    net.train()
    assert (net(mdl.tensor(x)).data == 0).any()


# ---- state_dict --------------------------------------------------------------------------

def test_state_dict_holds_copies_of_every_parameter():
    block = Block()
    state = block.state_dict()
    assert list(state) == names(block)
    for name, param in block.named_parameters():
        np.testing.assert_array_equal(state[name], param.data)
        assert state[name] is not param.data
    before = block.head.weight.data.copy()
    state["head.weight"] += 100.0
    np.testing.assert_array_equal(block.head.weight.data, before)
    block.head.weight.data += 1.0
    np.testing.assert_array_equal(state["head.weight"], before + 100.0)


def test_load_state_dict_round_trips_weights_and_outputs():
    source, target = Block(seed=0), Block(seed=1)
    x = mdl.tensor(np.random.default_rng(2).standard_normal((4, 3)))
    assert not np.allclose(source(x).data, target(x).data)
    state = source.state_dict()
    target.load_state_dict(state)
    for name, param in target.named_parameters():
        np.testing.assert_array_equal(param.data, state[name])
        assert param.data is not state[name]
        assert param.dtype == np.float32
    np.testing.assert_array_equal(source(x).data, target(x).data)
    state["head.weight"][...] = 7.0  # the model does not alias the dict it loaded
    assert not np.any(target.head.weight.data == 7.0)


def test_load_state_dict_casts_to_the_parameter_dtype():
    layer = Linear(2, 2, generator=0)
    layer.load_state_dict({"weight": np.ones((2, 2), dtype=np.float64),
                           "bias": np.zeros(2, dtype=np.float64)})
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32


def test_load_state_dict_missing_key_is_named():
    block = Block()
    state = block.state_dict()
    del state["body.2.bias"]
    with pytest.raises(KeyError, match=r"missing.*body\.2\.bias"):
        block.load_state_dict(state)


def test_load_state_dict_unexpected_key_is_named():
    block = Block()
    state = block.state_dict()
    state["tail.weight"] = np.zeros((1, 1))
    with pytest.raises(KeyError, match=r"unexpected.*tail\.weight"):
        block.load_state_dict(state)


def test_load_state_dict_not_strict_loads_what_matches():
    block = Block(seed=0)
    state = Block(seed=1).state_dict()
    del state["body.0.bias"]
    state["extra"] = np.zeros(3)
    old_bias = block.body[0].bias.data.copy()
    block.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(block.head.weight.data, state["head.weight"])
    np.testing.assert_array_equal(block.body[0].bias.data, old_bias)


def test_load_state_dict_shape_mismatch_names_key_and_shapes():
    block = Block()
    state = block.state_dict()
    state["head.weight"] = np.zeros((2, 2))
    with pytest.raises(mdl.ShapeError, match=r"head\.weight.*\(2, 2\).*\(1, 2\)") as info:
        block.load_state_dict(state)
    assert isinstance(info.value, ValueError)


# ---- display -----------------------------------------------------------------------------

def test_sequential_repr_is_exact():
    net = Sequential(Linear(2, 4, generator=0), Tanh(),
                     Sequential(Linear(4, 1, bias=False, generator=0), mdl.nn.Dropout(0.25)),
                     mdl.nn.Sigmoid())
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=4, bias=True)\n"
        "  (1): Tanh()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=1, bias=False)\n"
        "    (1): Dropout(p=0.25)\n"
        "  )\n"
        "  (3): Sigmoid()\n"
        ")"
    )


def test_custom_module_repr_lists_named_children():
    assert repr(Block()) == (
        "Block(\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "    (1): Tanh()\n"
        "    (2): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        "  (head): Linear(in_features=2, out_features=1, bias=False)\n"
        ")"
    )


def test_load_state_dict_changes_nothing_when_one_shape_is_wrong():
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 3, generator=0), mdl.nn.Linear(3, 1, generator=1))
    before = model.state_dict()
    state = {name: np.zeros_like(value) for name, value in before.items()}
    state["1.weight"] = np.zeros((2, 2))
    with pytest.raises(mdl.ShapeError, match="1.weight"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_slicing_a_sequential_gives_a_sequential():
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 3, generator=0), mdl.nn.Tanh(),
                              mdl.nn.Linear(3, 1, generator=1))
    head = model[:2]
    assert isinstance(head, mdl.nn.Sequential) and len(head) == 2
    assert head[0] is model[0]
    assert head(mdl.tensor([[1.0, 2.0]])).shape == (1, 3)
