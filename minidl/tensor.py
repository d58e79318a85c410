"""``Tensor``, a numpy array that remembers the op that made it, and ``Function``, an op.

As in tinygrad, the two live side by side: ``Function.apply`` builds Tensors and a
Tensor records the Function that made it. The arithmetic lives in ``minidl.ops``
(imported once, at the bottom, because the ops build on these two classes); the
backward pass lives in ``minidl.autograd``, which needs neither at import time.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from minidl import dtypes
from minidl.autograd import run_backward
from minidl.errors import GraphError, InvalidTypeError, InvalidValueError, MinidlError, ShapeError
from minidl.gradmode import anomaly_enabled, check_finite, grad_enabled
from minidl.inplace import guard_input, refcount as _refcount, take_snapshot
from minidl.inplace import state as _inplace_state

ArrayLike = Any  # a Tensor, an ndarray, a Python number or a (nested) list of numbers

#: The recorder of a step being traced by ``minidl.compile`` (``minidl.capture``), else None.
_recorder: Any = None
#: Counts changes of modules' attributes (``minidl.nn.Module`` bumps it), so a compiled step
#: compares the attributes of the modules it called only after some module changed.
_module_changes = 0


def _to_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """A new array (never the caller's: as torch.tensor, building a tensor copies)."""
    if isinstance(data, Tensor):
        array = data._data  # copied below: no handle escapes
    elif isinstance(data, (np.ndarray, np.generic)):
        array = np.asarray(data)
    else:
        try:
            array = np.asarray(data)
        except ValueError as err:  # ragged nested lists
            raise InvalidTypeError(f"cannot build a tensor from {type(data).__name__}: "
                                   f"{err}") from None
        dtypes.check_supported(array, data)
        if dtype is None and array.dtype.kind in "iuf":
            dtype = dtypes.get_default_dtype()  # Python numbers take the default dtype
    dtypes.check_supported(array, data)
    if dtype is not None:
        dtype = dtypes.as_float_dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(dtype)
    return np.array(array, dtype=dtype, copy=True)


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    >>> import minidl as mdl
    >>> w = mdl.Tensor([1.0, -2.0], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad
    array([ 2., -4.], dtype=float32)

    ``.grad`` is a plain numpy array (gradients are data, not graph). Under a
    normalization strategy it is what that strategy wrote (see ``grad_count``).
    """

    # ``_data`` is the array (``data`` hands it out, see minidl.inplace); ``_snapshot`` a CRC
    # taken when it was handed out while a graph held it; ``_external`` marks memory that
    # user code holds without minidl seeing it (``from_numpy``, and views of such memory).
    __slots__ = ("_data", "requires_grad", "_grad", "_grad_record", "_ctx", "_retains_grad",
                 "_snapshot", "_external", "__weakref__")
    # Make ``ndarray + Tensor`` call Tensor.__radd__ instead of broadcasting over objects.
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        array = _to_array(data, dtype)
        if requires_grad and array.dtype.kind != "f":
            raise InvalidTypeError(
                f"only floating tensors can require gradients; this one is {array.dtype}. "
                "Pass dtype=float32 (or float64) to make it differentiable."
            )
        self._data: np.ndarray = array
        self._snapshot: tuple[np.ndarray, int] | None = None
        self._external = False
        self.requires_grad: bool = bool(requires_grad)
        self._grad: np.ndarray | None = None
        # What a normalization strategy keeps about ``_grad`` (its example count, the
        # plain-calculus part); None until a batch-reduced pass writes this leaf. Only
        # the pass plans read it (minidl.autograd and minidl.strategy).
        self._grad_record: Any = None
        self._ctx: Function | None = None
        self._retains_grad = False
        if _recorder is not None:
            _recorder.created(self)

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx: Function | None) -> Tensor:
        """A tensor produced by an op: no validation, this is the hot path."""
        out = object.__new__(Tensor)
        out._data = data
        out._snapshot = None
        out._external = False
        out.requires_grad = ctx is not None
        out._grad = None
        out._grad_record = None
        out._ctx = ctx
        out._retains_grad = False
        return out

    # ---- the array ---------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The underlying numpy array (shared, not copied).

        Changing it in place between a forward pass that used this tensor and the
        backward pass is an error that backward detects (``GraphError``): the
        gradient would be computed from the changed values. Change it after
        ``backward()``, or under ``no_grad`` before the next forward. See
        ``minidl.inplace`` for how it is detected and what is not covered.
        """
        array = self._data
        if _recorder is not None:
            _recorder.read(self, ".data")
        # Held by more than this slot, the local and the argument: a live graph may
        # have saved it, so remember its CRC before user code can write to it.
        if self._snapshot is None and _refcount(array) > 3:
            take_snapshot(self, array)
        return array

    @data.setter
    def data(self, array: np.ndarray) -> None:
        # ``t.data *= 2`` lands here with the same array, changed in place: keep the CRC.
        # Rebinding to another array is safe (ops saved the old one), as in torch.
        if _recorder is not None:
            _recorder.read(self, "assigning .data")
        if array is not self._data:
            self._data = array
            self._snapshot = None

    # ---- array-like properties -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors no recorded op produced (inputs and parameters)."""
        return self._ctx is None

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise InvalidValueError(f"the truth value of a tensor of shape {self.shape} is "
                                    "ambiguous; use .any() on .data or reduce it first")
        if _recorder is not None:
            _recorder.read(self, "bool(tensor)")
        return bool(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied), as ``torch.Tensor.numpy``."""
        return self.data

    def item(self) -> float | int | bool:
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise InvalidValueError(f"item() needs a tensor with one element; this one has shape "
                                    f"{self.shape}")
        if _recorder is not None:
            _recorder.read(self, ".item()")
        return self._data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, never requires grad)."""
        out = Tensor._from_op(self._data, None)
        out._external = self._external
        return out

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extras = ""
        if self._data.dtype != dtypes.get_default_dtype():
            extras += f", dtype={self._data.dtype}"
        if self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    # ---- gradients -------------------------------------------------------------------
    @property
    def grad(self) -> np.ndarray | None:
        """The gradient accumulated here by backward passes since it was last cleared."""
        if _recorder is not None:
            _recorder.read(self, ".grad")
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        """Assigning keeps the example count (so clipping stays normalized); None clears."""
        if _recorder is not None:
            _recorder.read(self, "assigning .grad")
        if value is None:
            self._grad = None
            self._grad_record = None  # clearing the gradient starts a new accumulation
            return
        array = np.array(getattr(value, "data", value), dtype=self._data.dtype)
        if array.shape != self._data.shape:
            raise ShapeError(f"grad of shape {array.shape} assigned to a tensor of shape "
                             f"{self.shape}")
        # The plain-calculus part, if any, stays as it was: the new value minus it is
        # the normalized part (so assigning .grad its own value changes nothing).
        self._grad = array

    @property
    def grad_count(self) -> float:
        """Examples (or their total weight) accumulated into ``.grad`` since it was cleared.

        0 when no batch reduction contributed: the gradient is plain calculus.
        """
        if _recorder is not None:
            _recorder.read(self, ".grad_count")
        record = self._grad_record
        return 0.0 if record is None else record.count

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (e.g. to inspect dZ)."""
        if not self.requires_grad:
            raise GraphError("retain_grad() on a tensor that does not require grad")
        if self._ctx is not None:
            self._retains_grad = True

    def backward(self, grad: ArrayLike = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor into every leaf that requires grad.

        ``grad`` is needed unless this tensor has one element. Leaf gradients
        accumulate until cleared; the graph is freed unless ``retain_graph=True``.
        """
        if _recorder is not None:
            _recorder.backward(self, grad, retain_graph)
            return
        run_backward(self, grad, retain_graph)

    # ---- operators (the maths is in minidl.ops, whose _pair lifts the other operand) -
    def _lift(self, other: ArrayLike) -> Tensor:
        """``other`` as a constant tensor. A number (Python, numpy scalar or 0-d array)
        takes this tensor's floating dtype, as a scalar does in torch."""
        if isinstance(other, Tensor):
            return other
        kind = self._data.dtype.kind
        if kind == "f" and type(other) in (float, int):  # the common case, checked cheaply
            return Tensor._from_op(np.asarray(other, dtype=self._data.dtype), None)
        is_number = isinstance(other, (numbers.Number, np.number, np.bool_)) or (
            isinstance(other, np.ndarray) and other.ndim == 0 and other.dtype.kind in "biuf")
        if is_number and (kind == "f" or (kind in "iu" and isinstance(other, (int, np.integer))
                                          and not isinstance(other, bool))):
            # A float number takes a float tensor's dtype; an integer keeps an integer one's.
            return Tensor._from_op(np.asarray(other, dtype=self._data.dtype), None)
        return Tensor(other)

    def __add__(self, other: ArrayLike) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: ArrayLike) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # Comparisons give bool tensors outside the graph (masks for where, accuracy).
    def __lt__(self, other: ArrayLike) -> Tensor:
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data < self._lift(other)._data)

    def __le__(self, other: ArrayLike) -> Tensor:
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data <= self._lift(other)._data)

    def __gt__(self, other: ArrayLike) -> Tensor:
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data > self._lift(other)._data)

    def __ge__(self, other: ArrayLike) -> Tensor:
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data >= self._lift(other)._data)

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data == self._lift(other)._data)

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        if _recorder is not None:
            _recorder.read(self, "a comparison")
        return Tensor(self._data != self._lift(other)._data)

    __hash__ = object.__hash__  # identity, as in torch: tensors are graph nodes

    # ---- methods mirroring the functional ops -----------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def reshape(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]  # x.transpose((1, 0)) or x.transpose(None); x.transpose(0) is 1-D
        return _ops.transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return _ops.transpose(self, None)

    def astype(self, dtype: Any) -> Tensor:
        """This tensor in another dtype; gradients flow back in the original dtype."""
        return _ops.cast(self, dtype)


class Function:
    """One differentiable primitive: ``forward`` and ``backward`` side by side.

    Subclasses implement ``forward(*arrays, **options) -> ndarray`` (saving on
    ``self`` what backward needs) and ``backward(grad) -> gradient or tuple``, one
    entry per tensor input, ``None`` where ``self.needs_input_grad[i]`` is False.
    ``backward`` may return gradients in the broadcast output shape; the engine
    sums them back to each input's shape. It must not modify ``grad`` in place.

    >>> import numpy as np, minidl as mdl
    >>> class Cube(mdl.Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x ** 3
    ...     def backward(self, grad):
    ...         return grad * 3 * self.x ** 2
    >>> x = mdl.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward(); x.grad
    array([12.], dtype=float32)

    Check a new op with ``mdl.gradcheck`` before trusting it.
    """

    #: Set by an op that plans the backward passes through it (only the batch
    #: reduction): a callable ``plan_pass(planners, leaves) -> PassPlan``, see
    #: ``minidl.autograd.PassPlan``. None for every other op.
    plan_pass: Any = None
    #: Which inputs' arrays ``forward`` keeps for backward (indices), so only those are
    #: watched for in-place changes (``minidl.inplace``); None: any of them may be.
    saved_inputs: tuple[int, ...] | None = None
    #: Whether ``forward`` keeps its own output array for backward; None: it may.
    saves_output: bool | None = None
    # Slots for what the engine reads on every op; ``__dict__`` for what ops save.
    __slots__ = ("parents", "needs_input_grad", "_guards", "_snapshot_mark", "__dict__",
                 "__weakref__")
    parents: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]
    _guards: list[tuple[int, np.ndarray, int]] | None
    _snapshot_mark: int

    def forward(self, *arrays: Any, **options: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(*arrays)")

    def backward(self, grad: np.ndarray) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement backward(grad), returning one gradient "
            "per input (None where needs_input_grad is False)"
        )

    @classmethod
    def apply(cls, *inputs: Tensor, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' data and record the op if any input needs grad."""
        recorder = _recorder
        if recorder is not None and not recorder.paused:
            return recorder.apply(cls, inputs, options)
        fn = cls()
        needs = tuple([t.requires_grad for t in inputs])
        track = True in needs and grad_enabled.get()
        fn.needs_input_grad = needs
        fn._guards = None
        arrays = [t._data for t in inputs]
        if track:
            # In-place safety (minidl.inplace): each input array this op will save, if
            # someone besides its tensor (and the op that made it) holds it, gets a CRC.
            fn._snapshot_mark = _inplace_state.snapshots
            saved = cls.saved_inputs
            for index in range(len(inputs)) if saved is None else saved:
                tensor = inputs[index]
                if tensor._snapshot is not None:
                    tensor._snapshot = None  # older than this save: no reference point now
                # 3 references: the tensor's slot, ``arrays`` and getrefcount's argument.
                if _refcount(arrays[index]) > 3 or tensor._external:
                    guard_input(fn, index, tensor, arrays[index])
        try:
            out = fn.forward(*arrays, **options)
        except MinidlError:
            raise
        except ValueError as err:
            # minidl's own ops raise MinidlErrors for their own complaints, so a ValueError
            # from one is numpy's about shapes, sizes or axes; a user's op keeps its type.
            kind = ShapeError if cls.__module__.startswith("minidl.") else type(err)
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise kind(f"{cls.__name__}: {err} (input shapes: {shapes})") from None
        if type(out) is not np.ndarray:  # numpy returns scalars for full reductions
            out = np.asarray(out)
        if anomaly_enabled.get():
            check_finite(out, f"{cls.__name__} forward")
        if track:
            fn.parents = inputs
            result = Tensor._from_op(out, fn)
        else:
            result = Tensor._from_op(out, None)
        if out.base is not None and True in [t._external for t in inputs]:
            result._external = True  # a view of memory user code holds (from_numpy)
        return result

    def release(self) -> None:
        """Drop saved arrays and parents once backward has run (``retain_graph=False``)."""
        self.__dict__.clear()
        self.parents = None
        self._guards = None


def from_numpy(array: np.ndarray) -> Tensor:
    """A constant tensor that shares ``array``'s memory (no copy), as ``torch.from_numpy``.

    Changing ``array`` in place between a forward pass that used the tensor and the
    backward pass is an error, and backward detects it (``GraphError`` naming the op):
    the gradient would be computed from the changed values. Change it before the
    forward pass or after backward.

    >>> import numpy as np, minidl as mdl
    >>> a = np.zeros(2, dtype=np.float32)
    >>> t = mdl.from_numpy(a); a[0] = 1.0; t
    tensor([1., 0.])
    """
    if not isinstance(array, np.ndarray):
        raise InvalidTypeError(f"from_numpy takes a numpy array, got {type(array).__name__}")
    dtypes.check_supported(array, array)
    out = Tensor._from_op(array, None)
    out._external = True  # the caller holds this memory, maybe through other views
    return out


def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Build a tensor, as ``torch.tensor``.

    A floating ndarray keeps its dtype, Python numbers and lists take the default
    dtype (float32), integer arrays stay integer (class labels), ``dtype=`` overrides.

    >>> import numpy as np, minidl as mdl
    >>> mdl.tensor([1, 2]).dtype, mdl.tensor(np.arange(3)).dtype
    (dtype('float32'), dtype('int64'))
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


from minidl import ops as _ops  # noqa: E402  (the ops build on Tensor and Function)
