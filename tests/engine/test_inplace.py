"""In-place safety (issue 9, item 6): an array saved for backward that changes before
backward raises GraphError naming the op and the tensor; legal edits stay legal."""

from __future__ import annotations

import numpy as np
import pytest

import minidl as mdl
from minidl.errors import GraphError
from minidl.ops import (activation, conv, elementwise, embedding, linalg, losses, movement, norm,
                        pool, reduce)
from minidl.ops.windows import Geometry
from minidl.strategy.batch import BatchReduce

F32 = np.float32


def _param(values: list[float]) -> mdl.Tensor:
    return mdl.tensor(np.array(values, dtype=F32), requires_grad=True)


# ================================ edits that are detected ===============================


def test_writing_a_parameter_through_data_after_forward_raises_naming_op_and_tensor() -> None:
    w, x = _param([1.0, 2.0]), mdl.tensor([3.0, 4.0])
    loss = (w * x).sum()
    w.data[0] = 5.0
    with pytest.raises(GraphError, match=r"Mul: input 0 \(a leaf tensor that requires grad.*"
                                         r"shape \(2,\), float32\) was modified in place"):
        loss.backward()


def test_changing_the_array_behind_from_numpy_raises() -> None:
    a = np.array([3.0, 4.0], dtype=F32)
    w, x = _param([1.0, 2.0]), mdl.from_numpy(a)
    loss = (w * x).sum()
    a[1] = 0.0
    with pytest.raises(GraphError, match=r"Mul: input 1 \(a constant input tensor"):
        loss.backward()


def test_changing_the_base_of_a_from_numpy_view_raises() -> None:
    base = np.arange(8, dtype=F32).reshape(4, 2)
    x = mdl.from_numpy(base[::2])  # the tensor holds a view; the user holds its base
    w = _param([1.0, 2.0])
    loss = (x * w).sum()
    base[0, 0] = 100.0
    with pytest.raises(GraphError, match="Mul: input 0"):
        loss.backward()


def test_a_reshaped_view_of_from_numpy_memory_is_watched_too() -> None:
    base = np.arange(4, dtype=F32)
    x = mdl.from_numpy(base).reshape(2, 2)
    w = _param([1.0, 2.0])
    loss = (x * w).sum()
    base[3] = -1.0
    with pytest.raises(GraphError, match="Mul: input 0"):
        loss.backward()


def test_writing_an_intermediate_output_raises_naming_its_producer() -> None:
    w = _param([1.0, 2.0])
    h = mdl.tanh(w)
    loss = (h * h).sum()
    h.data[0] = 0.0
    with pytest.raises(GraphError, match=r"Mul: input 0 \(the output of Tanh"):
        loss.backward()


def test_an_output_saved_by_its_own_op_is_checked() -> None:
    w = _param([1.0, 2.0])
    e = mdl.exp(w)
    loss = e.sum()  # Sum saves nothing: only Exp's saved output can go wrong
    e.data *= 2.0
    with pytest.raises(GraphError, match=r"Exp: its output \(the output of Exp"):
        loss.backward()


def test_a_handle_taken_before_forward_is_watched() -> None:
    w = _param([1.0, 2.0])
    handle = w.data
    loss = (w * w).sum()
    handle *= 2.0
    with pytest.raises(GraphError, match="Mul: input 0"):
        loss.backward()


def test_writing_through_a_detached_tensor_raises() -> None:
    w = _param([1.0, 2.0])
    loss = (w * w).sum()
    w.detach().data[1] = 7.0
    with pytest.raises(GraphError, match="Mul"):
        loss.backward()


def test_an_optimizer_step_between_forward_and_backward_raises() -> None:
    model = mdl.nn.Linear(2, 1, generator=np.random.default_rng(0))
    opt = mdl.optim.SGD(model.parameters(), lr=0.1)
    x, y = mdl.tensor([[1.0, 2.0]]), mdl.tensor([[1.0]])
    loss = mdl.nn.MSELoss()(model(x), y)
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(GraphError, match=r"Linear: input 1 .*shape \(1, 2\)"):
        loss.backward()


def test_a_users_own_function_is_watched_without_declaring_anything() -> None:
    class Cube(mdl.Function):
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.x = x
            return x ** 3

        def backward(self, grad: np.ndarray) -> np.ndarray:
            return grad * 3 * self.x ** 2

    w = _param([2.0])
    loss = Cube.apply(w).sum()
    w.data[0] = 3.0
    with pytest.raises(GraphError, match="Cube: input 0"):
        loss.backward()


def test_a_permutation_is_detected_too() -> None:
    a = np.array([1.0, 2.0, 3.0], dtype=F32)
    w = _param([1.0, 1.0, 1.0])
    loss = (w * mdl.from_numpy(a) * mdl.from_numpy(a)).sum()
    a[[0, 2]] = a[[2, 0]]  # the sum is unchanged; the gradient is not
    with pytest.raises(GraphError):
        loss.backward()


# =================================== legal edits ========================================


def test_optimizer_updates_between_steps_and_edits_under_no_grad_stay_legal() -> None:
    rng = np.random.default_rng(1)
    model = mdl.nn.Linear(3, 1, generator=rng)
    opt = mdl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = mdl.from_numpy(rng.standard_normal((5, 3)).astype(F32))
    y = mdl.tensor(rng.standard_normal((5, 1)).astype(F32))
    for _ in range(3):
        opt.zero_grad()
        loss = mdl.nn.MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        with mdl.no_grad():
            model.weight.data[0, 0] += 0.01  # between steps: legal
        x.data[0, 0] += 1.0  # the batch array, after backward: legal
    assert np.isfinite(model.weight.data).all()


def test_reading_data_between_forward_and_backward_is_legal_and_exact() -> None:
    w, x = _param([1.0, 2.0]), mdl.tensor([3.0, 4.0])
    h = w * x
    loss = (h * h).sum()
    seen = (w.data.copy(), h.data.sum(), np.asarray(h).max(), h.numpy().shape)
    loss.backward()
    assert seen[1] == 3.0 + 8.0
    np.testing.assert_array_equal(w.grad, 2 * np.array([3.0, 8.0]) * np.array([3.0, 4.0]))


def test_rebinding_data_keeps_the_saved_array_as_torch_does() -> None:
    w, x = _param([1.0, 2.0]), mdl.tensor([3.0, 4.0])
    loss = (w * x).sum()
    x.data = np.array([100.0, 100.0], dtype=F32)  # a new array: the saved one is unchanged
    loss.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_editing_an_input_the_op_does_not_save_is_legal() -> None:
    a = np.array([3.0, 4.0], dtype=F32)
    w = _param([1.0, 2.0])
    loss = (w + mdl.from_numpy(a)).sum()  # Add saves neither input
    a[:] = 0.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def test_edits_before_forward_and_after_backward_are_legal() -> None:
    w = _param([1.0, 2.0])
    handle = w.data
    handle[0] = 3.0  # before the forward pass
    loss = (w * w).sum()
    loss.backward()
    handle[1] = 5.0  # after backward
    np.testing.assert_array_equal(w.grad, [6.0, 4.0])
    w.grad = None
    (w * w).sum().backward()  # a stale reference point must not raise now
    np.testing.assert_array_equal(w.grad, [6.0, 10.0])


def test_no_checksum_is_taken_in_a_plain_training_step() -> None:
    """The cheap path: arrays only their tensor (and producer) hold need no CRC."""
    rng = np.random.default_rng(2)
    model = mdl.nn.Sequential(mdl.nn.Linear(2, 4, generator=rng), mdl.nn.Tanh(),
                              mdl.nn.Linear(4, 1, generator=rng))
    x = mdl.tensor(rng.standard_normal((8, 2)).astype(F32))
    y = mdl.tensor((rng.random((8, 1)) > 0.5).astype(F32))
    loss = mdl.nn.BCEWithLogitsLoss()(model(x), y)
    fns, stack = [], [loss]
    while stack:
        node = stack.pop()
        if node._ctx is not None:
            fns.append(node._ctx)
            stack.extend(node._ctx.parents)
    assert len(fns) == 5 and all(fn._guards is None for fn in fns)


# ====================== every op declares what its forward keeps ========================

_F = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
_IMAGES = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4) % 7 - 3
_POOL = Geometry(kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
_KERNELS = np.ones((3, 2, 3, 3)) * 0.1
_CASES = [
    (elementwise.Exp, [_F], {}), (elementwise.Log, [np.abs(_F)], {}),
    (elementwise.Tanh, [_F], {}), (elementwise.Sigmoid, [_F], {}),
    (elementwise.Relu, [_F], {}), (elementwise.Abs, [_F], {}),
    (elementwise.Sqrt, [np.abs(_F)], {}), (elementwise.Cast, [_F], {"dtype": np.float32}),
    (elementwise.Add, [_F, _F + 1], {}), (elementwise.Mul, [_F, _F + 1], {}),
    (elementwise.Div, [_F, _F + 3], {}), (elementwise.Pow, [np.abs(_F), _F], {}),
    (elementwise.Maximum, [_F, -_F], {}), (elementwise.Where, [_F > 0, _F, -_F], {}),
    (linalg.MatMul, [_F, _F.T], {}), (linalg.Linear, [_F, _F, _F[:, 0]], {}),
    (losses.LogSoftmax, [_F], {"axis": 1}), (losses.Softmax, [_F], {"axis": 1}),
    (losses.CrossEntropy, [_F, np.array([0, 2])], {}),
    (losses.BinaryCrossEntropyWithLogits, [_F, (_F > 0).astype(float)], {}),
    (reduce.Sum, [_F], {"axes": (1,), "keepdims": False}),
    (reduce.Mean, [_F], {"axes": (1,), "keepdims": False}),
    (reduce.Max, [_F], {"axes": (1,), "keepdims": False}),
    (movement.Reshape, [_F], {"shape": (3, 2)}), (movement.Transpose, [_F], {"axes": None}),
    (movement.GetItem, [_F], {"index": (0,)}), (movement.Concatenate, [_F, _F], {"axis": 0}),
    (movement.Stack, [_F, _F], {"axis": 0}),
    (activation.LeakyRelu, [_F], {"negative_slope": 0.1}),
    (activation.Gelu, [_F], {"approximate": "tanh"}),
    (norm.LayerNorm, [_F, np.ones(3), np.zeros(3)], {"dims": 1, "eps": 1e-5}),
    (embedding.Embedding, [_F, np.array([1, 0])], {"padding_idx": None}),
    (pool.MaxPool2d, [_IMAGES], {"geometry": _POOL}),
    (pool.AvgPool2d, [_IMAGES], {"geometry": _POOL, "count_include_pad": True}),
    (pool.GlobalAvgPool2d, [_IMAGES], {}),
    (conv.Conv2d, [_IMAGES, _KERNELS, np.zeros(3)],
     {"geometry": Geometry((3, 3), (1, 1), (1, 1), (1, 1)), "groups": 1}),
]


@pytest.mark.parametrize("op, arrays, options", _CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_each_op_declares_exactly_the_arrays_its_forward_keeps(op, arrays, options) -> None:
    fn = op()
    fn.needs_input_grad = tuple(a.dtype.kind == "f" for a in arrays)
    out = fn.forward(*arrays, **options)
    kept = [v for v in vars(fn).values() if isinstance(v, np.ndarray)]
    kept_inputs = tuple(i for i, a in enumerate(arrays) if any(v is a for v in kept))
    assert op.saved_inputs is not None and set(kept_inputs) <= set(op.saved_inputs)
    assert op.saves_output is any(v is out for v in kept)


def test_the_batch_reduction_and_batch_norm_declare_what_they_keep() -> None:
    assert BatchReduce.saved_inputs == () and BatchReduce.saves_output is False
    assert norm.BatchNorm.saved_inputs == () and norm.BatchNorm.saves_output is False


def test_data_loader_batches_need_no_checksum_and_edits_are_still_caught() -> None:
    from minidl.data.loader import DataLoader, Dataset

    data = Dataset(np.random.default_rng(3).random((20, 3)).astype(F32), np.arange(20) % 2)
    x, _ = next(iter(DataLoader(data, batch_size=5, shuffle=True, seed=0)))
    w = _param([1.0, 1.0, 1.0])
    loss = (x * w).sum()
    assert loss._ctx.parents[0]._ctx._guards is None  # fresh rows: only the tensor holds them
    x.data[0, 0] = 42.0  # a handle taken after the forward pass: a snapshot catches it
    with pytest.raises(GraphError, match="Mul: input 0"):
        loss.backward()
