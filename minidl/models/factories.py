"""Model factories: how a model is named, found, given its options and rebuilt.

A factory is any callable returning an ``nn.Module`` (a function or the class itself).
It is named by

* a registered name: ``mlp`` (built in) or one a plugin returns from ``minidl_models``;
* ``"package.module:function"``, a dotted import path and an attribute;
* ``"path/to/file.py:function"``, a Python file and an attribute.

Its keyword options are validated by the pydantic model it declares as ``Options`` or,
if it declares none, by its signature (names, defaults and type hints). A few values
come from the run rather than from the options, if the factory asks for them by
parameter name (as pytest fixtures are asked for): ``inputs`` (features per example),
``outputs`` (output units the task needs), ``generator`` (a seeded numpy Generator for
the init) and ``dtype``. A model built here remembers its factory and options, so
``mdl.save`` can record its architecture.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from minidl import nn
from minidl.errors import ConfigError, InvalidTypeError, PluginError
from minidl.models.lenet import lenet
from minidl.models.mlp import mlp
from minidl.pluginloading import file_module_name, import_file

#: Models every installation has, by name.
BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "lenet": lenet}
#: Values a factory may ask for by parameter name; they come from the run, not the options.
CONTEXT = ("inputs", "outputs", "generator", "dtype")
#: Attribute where a built model keeps {"factory", "options", "context"}.
ARCHITECTURE_ATTR = "_minidl_architecture"


# ---- finding a factory ---------------------------------------------------------------------
def registered_models(plugins: Iterable[object] = ()) -> dict[str, Callable[..., nn.Module]]:
    """Every model name: the built-ins, then each plugin's ``minidl_models()`` (registered
    plugins, and ``plugins`` imported for a run but not registered yet).

    >>> sorted(registered_models())
    ['lenet', 'mlp']
    """
    from minidl.pluginmanager import get_plugin_manager

    pm = get_plugin_manager()
    sources = [(impl.plugin_name, impl.function) for impl in
               pm.hook.minidl_models.get_hookimpls()]
    sources += [(getattr(p, "__name__", repr(p)), p.minidl_models) for p in plugins
                if hasattr(p, "minidl_models") and not pm.is_registered(p)]
    models = dict(BUILTIN_MODELS)
    owners = dict.fromkeys(BUILTIN_MODELS, "minidl (built-in)")
    for owner, hook in sources:
        try:
            provided = hook()
        except Exception as err:
            raise PluginError(f"plugin {owner!r} failed in hook minidl_models: "
                              f"{type(err).__name__}: {err}") from err
        if not isinstance(provided, dict) or not all(
                isinstance(k, str) and callable(v) for k, v in provided.items()):
            raise PluginError(f"plugin {owner!r}: minidl_models must return a dict of "
                              f"name: factory (a callable), got {provided!r}")
        for name, factory in provided.items():
            if name in owners and models[name] is not factory:
                raise PluginError(f"model name {name!r} is claimed by both {owners[name]} "
                                  f"and plugin {owner!r}; uninstall one of them")
            models[name], owners[name] = factory, f"plugin {owner!r}"
    return models


def resolve_factory(spec: str, plugins: Iterable[object] = ()) -> Callable[..., nn.Module]:
    """The factory a name, ``"module:attr"`` or ``"file.py:attr"`` stands for."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"a model factory is named by a string, got {spec!r}")
    if ":" not in spec:
        models = registered_models(plugins)
        if spec not in models:
            raise ConfigError(
                f"unknown model {spec!r}; known models: {', '.join(sorted(models))} (a plugin "
                "adds names through the minidl_models hook), or name a factory as "
                "model.factory = \"package.module:function\" or \"file.py:function\"")
        return models[spec]
    where, _, attribute = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            module = _module_from_file(path) or import_file(path)
        else:
            module = importlib.import_module(where)
    except Exception as err:  # the user's code, or no such module
        raise ConfigError(f"model factory {spec!r}: cannot import {where!r}: "
                          f"{type(err).__name__}: {err}") from None
    factory: Any = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ConfigError(f"model factory {spec!r}: {where!r} has no callable {attribute!r}")
    return factory


def _module_from_file(path: Path) -> Any:
    """A module already imported from ``path`` (the running script, say): using it again
    does not run the file's top level a second time."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file.endswith(path.name) and Path(file).resolve() == path:
            return module
    return sys.modules.get(file_module_name(path))


def factory_spec(factory: Callable[..., Any]) -> str:
    """How to name ``factory`` in a file, so another process can import it.

    A class or function of a script run as ``__main__`` is named by the script's path.

    >>> factory_spec(mlp)
    'minidl.models.mlp:mlp'
    """
    module_name = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", "")
    if not module_name or "<" in qualname:
        raise InvalidTypeError(f"cannot record how to rebuild the model: {qualname or factory!r}"
                               " is not defined at the top level of a module; define it there")
    module = sys.modules.get(module_name)
    top = module_name.partition(".")[0]
    # A script run as __main__, or a module imported from a file (not by name from
    # sys.path), is found again by its file.
    if module_name == "__main__" or (top not in sys.builtin_module_names
                                     and not _importable_by_name(top)):
        file = getattr(module, "__file__", None) or _defining_file(factory)
        if not file:
            raise InvalidTypeError(f"cannot record how to rebuild {qualname}: it is defined in "
                                   "an interactive session; define it in a module or a file")
        return f"{Path(file).resolve()}:{qualname}"
    return f"{module_name}:{qualname}"


def _importable_by_name(top: str) -> bool:
    """Whether a fresh process could import ``top`` by name: asks every finder (an
    editable install's too), not ``sys.modules``, and not only ``sys.path``."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None and find_spec(top, None) is not None:
            return True
    return False


def _defining_file(factory: Any) -> str | None:
    """The source file of a function, or of a class's own methods (its module may be gone
    from ``sys.modules``, e.g. a file executed by ``importlib`` without registering it)."""
    functions = [factory] if not isinstance(factory, type) else list(vars(factory).values())
    for function in functions:
        code = getattr(function, "__code__", None)
        if code is not None and not code.co_filename.startswith("<"):
            return code.co_filename
    return None


# ---- options -------------------------------------------------------------------------------
def options_model(factory: Callable[..., Any], context: Iterable[str] = ()) -> type[BaseModel]:
    """The pydantic model of ``factory``'s options: its declared ``Options``, or one read
    from its signature (leaving out the parameters ``context`` fills)."""
    declared = getattr(factory, "Options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # hints naming what cannot be imported here: check names only
        hints = {}
    fields: dict[str, Any] = {}
    extra = "forbid"
    parameters = list(inspect.signature(factory).parameters.values())
    for parameter in parameters:
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = "allow"
        if parameter.name in context or parameter.kind in (
                parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints.get(parameter.name, Any), default)
    name = getattr(factory, "__name__", "factory")
    return create_model(f"{name}_options", __config__=ConfigDict(
        extra=extra, arbitrary_types_allowed=True), **fields)


def validate_options(factory: Callable[..., Any], options: dict[str, Any] | None,
                     context: Iterable[str] = (), where: str = "model.options"
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(keyword arguments, their JSON form)``, or one ``ConfigError`` naming each problem."""
    context = tuple(context)
    options = dict(options or {})
    taken = sorted(set(options) & set(context))
    if taken:
        raise ConfigError(f"{where}: {', '.join(taken)} come(s) from the data and the run, "
                          "not from the options; remove them")
    model = options_model(factory, context)
    try:
        validated = model.model_validate(options)
    except ValidationError as err:
        raise ConfigError(_describe(err, model, factory, where)) from None
    kwargs = {key: getattr(validated, key) for key in validated.model_fields_set}
    kwargs.update(validated.model_extra or {})
    try:
        recorded = validated.model_dump(mode="json", exclude_unset=True)
    except Exception:
        recorded = None  # not JSON: the model can be built, not saved
    return kwargs, recorded


def _describe(err: ValidationError, model: type[BaseModel], factory: Any, where: str) -> str:
    accepted = ", ".join(model.model_fields) or "none"
    name = getattr(factory, "__qualname__", repr(factory))
    lines = []
    for problem in err.errors():
        loc = ".".join([where, *map(str, problem["loc"])])
        if problem["type"] == "extra_forbidden":
            lines.append(f"{loc}: {name} has no such option; its options: {accepted}")
        elif problem["type"] == "missing":
            lines.append(f"{loc}: {name} needs this option")
        else:
            lines.append(f"{loc}: {problem['msg']} (got {problem.get('input')!r})")
    return "invalid model options:\n  " + "\n  ".join(lines)


# ---- building ------------------------------------------------------------------------------
def build_model(factory: str | Callable[..., nn.Module], options: dict[str, Any] | None = None,
                *, inputs: int | None = None, outputs: int | None = None,
                generator: np.random.Generator | int | None = None, dtype: Any = None,
                plugins: Iterable[object] = (), where: str = "model.options") -> nn.Module:
    """Build a model from its factory (a name, a ``"module:attr"`` / ``"file.py:attr"``
    string, or the callable) and options; the model remembers both, for ``mdl.save``.

    >>> model = build_model("mlp", {"hidden": [8]}, inputs=2, outputs=3, generator=0)
    >>> [tuple(p.shape) for p in model.parameters()]
    [(8, 2), (8,), (3, 8), (3,)]
    """
    callable_ = factory if callable(factory) else resolve_factory(factory, plugins)
    spec = factory if isinstance(factory, str) else None
    given = {"inputs": inputs, "outputs": outputs, "generator": generator,
             "dtype": None if dtype is None else np.dtype(dtype).name}
    accepted = _accepted(callable_)
    context = {k: v for k, v in given.items() if v is not None and (k in accepted or
                                                                      "**" in accepted)}
    kwargs, recorded = validate_options(callable_, options, context, where)
    model = callable_(**kwargs, **context)
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"model factory {spec or factory!r} returned "
                               f"{type(model).__name__}, not an nn.Module")
    record_architecture(model, spec or factory_spec(callable_), recorded,
                        {k: v for k, v in context.items() if k != "generator"})
    return model


def record_architecture(model: nn.Module, spec: str, options: dict[str, Any] | None,
                        context: dict[str, Any]) -> None:
    """Note on ``model`` how to rebuild it (read by ``mdl.save``)."""
    object.__setattr__(model, ARCHITECTURE_ATTR,
                       {"factory": spec, "options": options, "context": context})
    nn.module.module_changed()


def _accepted(factory: Callable[..., Any]) -> set[str]:
    parameters = inspect.signature(factory).parameters.values()
    names = {p.name for p in parameters}
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        names.add("**")
    return names
