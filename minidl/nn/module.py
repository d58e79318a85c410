"""``Module`` and ``Parameter``: containers that find their own parameters, as in torch."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import numpy as np

from minidl.errors import ArchiveError, CheckpointError, ShapeError, StateDictError
from minidl.npz import read_npz
from minidl.tensor import Tensor

_tensor_module = sys.modules["minidl.tensor"]  # the module (``minidl.tensor`` is also a function)


def module_changed() -> None:
    """Say that a module's attribute changed (``mdl.compile`` re-checks its guards)."""
    _tensor_module._module_changes += 1


#: The entry of a minidl ``.npz""" that holds its JSON metadata, not an array of the model.
METADATA_KEY = "__meta__"


class Parameter(Tensor):
    """A tensor a module learns: a leaf that requires grad.

    >>> import minidl as mdl
    >>> p = mdl.nn.Parameter([0.5, 1.0])
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models. Assign ``Parameter``s and ``Module``s as
    attributes in ``__init__``; implement ``forward``; call the module to run it.

    >>> import minidl as mdl
    >>> class Affine(mdl.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = mdl.nn.Parameter([2.0])
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> model = Affine()
    >>> [name for name, _ in model.named_parameters()], model(mdl.tensor([3.0]))
    (['scale'], tensor([6.], requires_grad=True))
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning attributes")
        module_changed()
        if name in self.__dict__.get("_buffers", {}):  # assigning a buffer keeps it one
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Keep an array that is state but not learned (batch norm's running statistics):
        it is saved by ``state_dict`` and restored by ``load_state_dict``, as in torch."""
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = value
        object.__setattr__(self, name, value)
        module_changed()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(...)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorder = _tensor_module._recorder
        if recorder is not None:  # mdl.compile guards on the modules a step called
            recorder.module_called(self)
        return self.forward(*args, **kwargs)

    # ---- traversal -------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once, with its dotted name (``0.weight``), in definition order."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every buffer (not None) with its dotted name, in definition order."""
        for prefix, module in self.named_modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buffer

    # ---- state -----------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Clear every parameter's gradient (and the example count behind it)."""
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm on batch statistics); returns self."""
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        module_changed()
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off, batch norm on running statistics); returns self."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's data and every buffer by dotted name."""
        state = {name: param.data.copy() for name, param in self.named_parameters()}
        state.update((name, np.array(buffer)) for name, buffer in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, Any] | str | os.PathLike[str],
                        strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers; names and shapes must match
        (``strict``). ``state`` is a dict of arrays or the path of an ``.npz`` (a model
        file or ``np.savez`` output); minidl's metadata entry in it is ignored."""
        if isinstance(state, (str, os.PathLike)):
            state = _read_npz(state)
        state = {name: value for name, value in state.items() if name != METADATA_KEY}
        params: dict[str, Any] = dict(self.named_parameters())
        params.update(self.named_buffers())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if strict and (missing or unexpected):
            problems = []
            if missing:
                problems.append(f"missing keys {missing} (in the model, not in the state)")
            if unexpected:
                problems.append(f"unexpected keys {unexpected} (in the state, not in the "
                                "model)")
            raise StateDictError(f"load_state_dict: {'; '.join(problems)}; the state was "
                                 f"saved from another model than this {type(self).__name__}")
        arrays = {name: np.asarray(value) for name, value in state.items() if name in params}
        for name, array in arrays.items():  # check everything before changing anything
            if array.shape != params[name].shape:
                raise ShapeError(f"load_state_dict: {name} has shape {array.shape} in the "
                                 f"checkpoint but {params[name].shape} in the model")
        for name, array in arrays.items():
            target = params[name]
            if isinstance(target, Tensor):
                target.data = array.astype(target.dtype)  # astype copies
            else:  # a buffer: copied into place, so ops holding it see the new values
                target[...] = array

    # ---- display ---------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (read safely: sizes checked before anything is
    allocated), without minidl's metadata entry."""
    if not os.path.isfile(path):
        raise CheckpointError(f"load_state_dict: no file at {path}")
    try:
        arrays = read_npz(path)
    except ArchiveError as err:
        raise CheckpointError(f"load_state_dict: {err}") from None
    arrays.pop(METADATA_KEY, None)
    return arrays
