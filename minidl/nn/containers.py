"""``ModuleList`` and ``ModuleDict``: modules held in a list or dict, so that
``parameters()``, ``state_dict()``, ``train()`` and ``zero_grad()`` find them."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from minidl.errors import InvalidTypeError
from minidl.nn.module import Module, module_changed


def _check_module(owner: str, key: Any, module: Any) -> Module:
    if not isinstance(module, Module):
        raise InvalidTypeError(f"{owner}: entry {key!r} is {type(module).__name__}, not a Module")
    return module


def _put(container: Module, name: str, module: Module) -> None:
    """Register ``module`` under ``name``; replacing one keeps its place in the order."""
    container._modules[name] = module  # not setattr, which would move it to the end
    object.__setattr__(container, name, module)
    module_changed()


class ModuleList(Module):
    """A list of modules, registered under the names "0", "1", ... as torch's.

    >>> import minidl as mdl
    >>> layers = mdl.nn.ModuleList([mdl.nn.Linear(2, 2, generator=0) for _ in range(3)])
    >>> len(layers), len(list(layers.parameters())), sorted(layers.state_dict())[:2]
    (3, 6, ['0.bias', '0.weight'])
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index: int) -> str:
        if not isinstance(index, int):
            raise InvalidTypeError(f"ModuleList indices must be integers or slices, got "
                                   f"{type(index).__name__}")
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"ModuleList index {index} is out of range for {size} modules")
        return str(index % size)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        _put(self, self._index(index), _check_module("ModuleList", index, module))

    def append(self, module: Module) -> ModuleList:
        _put(self, str(len(self)), _check_module("ModuleList", len(self), module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList is a container, not a layer: iterate over it "
                                  "in your module's forward (or use Sequential)")


class ModuleDict(Module):
    """Modules by name, in insertion order, as torch's ``ModuleDict``.

    >>> import minidl as mdl
    >>> heads = mdl.nn.ModuleDict({"digit": mdl.nn.Linear(4, 10, generator=0)})
    >>> heads["parity"] = mdl.nn.Linear(4, 2, generator=1)
    >>> list(heads.keys()), [n for n, _ in heads.named_parameters()][-1]
    (['digit', 'parity'], 'parity.bias')
    """

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; it has {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: key {key!r} must be a non-empty string without '.'")
        taken = hasattr(type(self), key) or (key in self.__dict__ and key not in self._modules)
        if taken:
            raise KeyError(f"ModuleDict: key {key!r} would hide ModuleDict's own attribute "
                           "of that name; choose another")
        _put(self, key, _check_module("ModuleDict", key, module))

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018  (raises the readable KeyError)
        del self._modules[key]
        object.__delattr__(self, key)

    def keys(self) -> list[str]:
        return list(self._modules)

    def values(self) -> list[Module]:
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        return list(self._modules.items())

    def update(self, modules: Mapping[str, Module]) -> None:
        for key, module in modules.items():
            self[key] = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict is a container, not a layer: pick its modules "
                                  "in your module's forward")
