"""``save`` and ``load``: a model file holds architecture, weights and input scaling.

One ``.npz`` (``minidl.storage``, written atomically, no pickle): the weights and
buffers by their ``state_dict`` names, and one JSON entry recording the factory that
rebuilds the model and its options, the task it was trained for (for predictions)
and the input scaling, if any.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from minidl import nn, storage
from minidl.errors import CheckpointError, InvalidTypeError, InvalidValueError
from minidl.models.factories import (
    ARCHITECTURE_ATTR,
    build_model,
    factory_spec,
    resolve_factory,
    validate_options,
)

#: The model file format this minidl writes and the newest it reads.
MODEL_FORMAT = 1
FORMAT_KEY = "minidl_model"
MODEL_NAME = "model.npz"
TASKS = ("binary", "multiclass", "regression")


def save(model: nn.Module, path: str | Path, *, factory: str | Callable[..., Any] | None = None,
         options: dict[str, Any] | None = None, scaling: dict[str, Any] | None = None,
         task: str | None = None, stamp: dict[str, int] | None = None) -> None:
    """Write ``model`` to ``path`` (``.npz``): its architecture, weights and input scaling.

    A model built from a factory (``minidl train``, a config's ``model.factory``) knows
    its architecture. Any other model is rebuilt by calling ``factory`` (default: its
    class) with ``options``, checked now: the rebuilt model must have the same
    parameters. ``scaling`` is ``{"mean": [...], "std": [...]}`` of the raw features;
    ``task`` (``binary``, ``multiclass`` or ``regression``) tells ``minidl predict``
    how to read the outputs; ``stamp`` (``minidl train``'s epoch and step) joins the
    metadata.

    >>> import pathlib, tempfile, minidl as mdl
    >>> model = mdl.nn.Linear(3, 2, generator=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "linear.npz"
    >>> mdl.save(model, path, options={"in_features": 3, "out_features": 2})
    >>> mdl.load(path)
    Linear(in_features=3, out_features=2, bias=True)
    """
    model, scaling = _unwrap_scaling(model, scaling)
    if task is not None and task not in TASKS:
        raise InvalidValueError(f"save: task must be one of {', '.join(TASKS)}, got {task!r}")
    meta = {FORMAT_KEY: MODEL_FORMAT, "architecture": _architecture(model, factory, options),
            "task": task, "scaling": _checked_scaling(scaling), **(stamp or {})}
    storage.save_arrays(path, model.state_dict(), meta)


def load(path: str | Path) -> nn.Module:
    """The model ``save`` (or ``minidl train``) wrote, in eval mode, ready to predict.

    ``path`` is a model file or a run directory holding ``model.npz``. A model saved
    with input scaling comes back as ``Sequential(Standardize(mean, std), model)``, so
    it takes raw features (give them in float64 to scale them exactly as in training).
    """
    arrays, meta = read_model_file(path)
    architecture = meta["architecture"]
    context = architecture.get("context") or {}
    model = build_model(architecture["factory"], architecture.get("options"),
                        inputs=context.get("inputs"), outputs=context.get("outputs"),
                        dtype=context.get("dtype"), where=f"{path}: options")
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: the weights do not fit the model its factory "
                              f"{architecture['factory']!r} builds: {err}") from None
    for name, param in model.named_parameters():
        if arrays[name].dtype != param.dtype:  # keep the saved precision (float64, float16)
            param.data = arrays[name].copy()
    if meta.get("scaling"):
        dtypes = [p.dtype for p in model.parameters() if p.dtype.kind == "f"]
        model = nn.Sequential(nn.Standardize(**meta["scaling"], dtype=dtypes[0] if dtypes
                                             else None), model)
    return model.eval()


def model_path(path: str | Path) -> Path:
    """A model file, or the ``model.npz`` of a run directory."""
    path = Path(path)
    return path / MODEL_NAME if path.is_dir() else path


def read_model_file(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The weights and metadata of a model file; one ``CheckpointError`` if it is none."""
    path = model_path(path)
    if not path.is_file():
        raise CheckpointError(f"no model file at {path} (give a model .npz or a run directory "
                              f"holding {MODEL_NAME}; current directory: {Path.cwd()})")
    arrays, meta = storage.load_arrays(path)
    version = meta.get(FORMAT_KEY)
    if version is None:
        if "format" in meta:
            raise CheckpointError(f"{path} is a training checkpoint, not a model file; use the "
                                  f"run's {MODEL_NAME}, or resume training from it")
        raise CheckpointError(f"{path} holds weights but no architecture (written before "
                              "minidl recorded it, or by np.savez): build the model and call "
                              "model.load_state_dict(path)")
    if not isinstance(version, int) or version > MODEL_FORMAT:
        raise CheckpointError(f"{path} is a model file of format {version}, newer than this "
                              f"minidl reads (up to {MODEL_FORMAT}); upgrade minidl")
    if not isinstance(meta.get("architecture"), dict) or "factory" not in meta["architecture"]:
        raise CheckpointError(f"{path}: the model file's architecture entry is damaged")
    return arrays, meta


def _architecture(model: nn.Module, factory: Any, options: dict[str, Any] | None
                  ) -> dict[str, Any]:
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"save: expected an nn.Module, got {type(model).__name__}")
    recorded = getattr(model, ARCHITECTURE_ATTR, None)
    if factory is None and options is None and recorded is not None:
        if recorded["options"] is None:
            raise InvalidValueError("save: the model's factory options are not JSON values, "
                                    "so its architecture cannot be recorded")
        return recorded
    factory = type(model) if factory is None else factory
    callable_ = resolve_factory(factory) if isinstance(factory, str) else factory
    spec = factory if isinstance(factory, str) else factory_spec(factory)
    kwargs, json_options = validate_options(callable_, options, where="save: options")
    if json_options is None:
        raise InvalidValueError("save: options must be JSON values (numbers, strings, lists, "
                                "dicts), so another process can rebuild the model")
    rebuilt = callable_(**kwargs)  # checked now: a file that cannot load is worth nothing
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    rebuilt_shapes = {k: v.shape for k, v in getattr(rebuilt, "state_dict", dict)().items()}
    if shapes != rebuilt_shapes:
        differ = sorted(k for k in shapes.keys() | rebuilt_shapes.keys()
                        if shapes.get(k) != rebuilt_shapes.get(k))
        raise InvalidValueError(
            f"save: {spec.rpartition(':')[2]}(**{options or {}}) builds a model whose "
            f"parameters differ from this one's ({', '.join(differ[:4])}"
            f"{', ...' if len(differ) > 4 else ''}); pass the options it was built with, "
            "e.g. mdl.save(model, path, options={...})")
    return {"factory": spec, "options": json_options, "context": {}}


def _unwrap_scaling(model: nn.Module, scaling: dict[str, Any] | None
                    ) -> tuple[nn.Module, dict[str, Any] | None]:
    """A loaded ``Sequential(Standardize, model)`` saves as the model and its scaling."""
    if (isinstance(model, nn.Sequential) and len(model) == 2
            and isinstance(model[0], nn.Standardize) and scaling is None):
        return model[1], {"mean": model[0].mean.tolist(), "std": model[0].std.tolist()}
    return model, scaling


def _checked_scaling(scaling: dict[str, Any] | None) -> dict[str, list[float]] | None:
    if scaling is None:
        return None
    if not isinstance(scaling, dict) or set(scaling) != {"mean", "std"}:
        raise InvalidValueError("save: scaling must be {'mean': [...], 'std': [...]}, one "
                                "value per feature")
    nn.Standardize(scaling["mean"], scaling["std"])  # the same checks as at load time
    return {key: np.asarray(value, dtype=np.float64).tolist() for key, value in scaling.items()}
