"""The configuration tree: one pydantic model per section, every field defaulted.

With no file at all it describes the main job, Andrew Ng's planar network:
2 -> 4 tanh -> 1 sigmoid, cross-entropy, SGD lr 1.2, full batch, 10,000 steps,
under ``deferred``. Files may be TOML, YAML or JSON; ``--set a.b=value``
overrides any field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from minidl.data.datasets import DATASETS
from minidl.strategy import NormalizationConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    dataset: str = Field("planar", description=f"a built-in dataset ({', '.join(DATASETS)}) "
                         "or the path of a .csv or .npz file")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="arguments of a built-in dataset, e.g. n, noise")
    target: int | str = Field(-1, description="CSV target column: index or header name")
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="held-out share for validation")
    standardize: bool = Field(False, description="scale features to zero mean, unit variance "
                              "(statistics of the training split)")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value in DATASETS or value.endswith((".csv", ".npz")):
            return value
        raise ValueError(f"unknown dataset {value!r}; use one of {', '.join(DATASETS)} or the "
                         "path of a .csv or .npz file")


class ModelConfig(Section):
    name: Literal["mlp", "lenet"] = Field(
        "mlp", description="mlp: Linear layers; lenet: two blocks of 3x3 conv (32, then 64 "
        "channels), activation and 2x2 max-pool on square one-channel images (e.g. 64 "
        "features: 8x8), then the hidden Linear layers")
    hidden: list[int] = Field(default_factory=lambda: [4], description="hidden layer sizes")
    activation: Literal["tanh", "relu", "sigmoid"] = "tanh"
    init: Literal["auto", "xavier", "he"] = Field(
        "auto", description="weight init; auto picks he for relu, xavier otherwise")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer")
    outputs: int | None = Field(None, ge=1, description="output units; inferred from the labels")

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if any(size < 1 for size in sizes):
            raise ValueError(f"hidden layer sizes must be positive, got {sizes}")
        return sizes


class LossConfig(Section):
    name: Literal["auto", "cross_entropy", "binary_cross_entropy", "mse"] = Field(
        "auto", description="auto: binary_cross_entropy for 2 classes, cross_entropy for more, "
        "mse for real-valued targets")


class OptimizerConfig(Section):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(1.2, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="sgd only")
    nesterov: bool = Field(False, description="sgd only")
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = Field((0.9, 0.999), description="adam, adamw")
    eps: float = Field(1e-8, gt=0.0, description="adam, adamw")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov = true needs momentum > 0")
        return self

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas must each be in [0, 1), got {list(betas)}")
        return betas


class TrainConfig(Section):
    epochs: int = Field(10_000, ge=1)
    batch_size: int | None = Field(None, ge=1, description="examples per micro-batch; "
                                   "unset = full batch")
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step")
    seed: int = 3
    dtype: Literal["float16", "float32", "float64"] = "float32"
    shuffle: bool = True


class OutputConfig(Section):
    dir: str = Field("runs/latest", description="where the model, resolved config, metrics "
                     "and checkpoints go; empty to write nothing")
    checkpoint_every: int = Field(0, ge=0, description="epochs between checkpoints; "
                                  "0 = ten per run")


class Config(Section):
    """Everything one ``minidl train`` run needs.

    >>> Config().optimizer.lr, Config().normalization.strategy
    (1.2, 'deferred')
    """

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    plugins: list[str] = Field(default_factory=list, description="observer plugins to load: "
                               "dotted module paths or .py files")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the field and what is allowed."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a TOML, YAML or JSON file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (current directory: {Path.cwd()})")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot parse {path}: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``section.key=value`` (value parsed as YAML: 3, 0.1, true, [8, 8], text)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=50), got {assignment!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read, override and validate a config; ``ConfigError`` says exactly what is wrong.

    >>> load_config(overrides=["train.epochs=5", "optimizer.name=adam"]).train.epochs
    5
    """
    raw = read_config_file(path) if path is not None else {}
    for assignment in overrides:
        apply_override(raw, assignment)
    return validate_config(raw)


def validate_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: the dotted field, what is wrong, the value given."""
    lines = []
    for problem in err.errors():
        loc = ".".join(str(part) for part in problem["loc"]) or "config"
        if problem["type"] == "extra_forbidden":
            section = _section_at(problem["loc"][:-1])
            allowed = ", ".join(section.model_fields) if section else "?"
            lines.append(f"{loc}: unknown key; allowed keys here: {allowed}")
            continue
        message = problem["msg"].removeprefix("Value error, ")
        given = problem.get("input")
        lines.append(f"{loc}: {message}" + ("" if isinstance(given, dict) else f" (got {given!r})"))
    return "invalid config:\n  " + "\n  ".join(lines)


def _section_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def config_to_toml(config: Config) -> str:
    """The config as commented TOML, one section per model (unset fields are left out).

    >>> print(config_to_toml(Config()).splitlines()[0])
    # minidl config: every field shown with its value; delete any line to take the default.
    """
    lines = ["# minidl config: every field shown with its value; delete any line to take the "
             "default."]
    sections = []
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
        else:
            lines.append(_toml_line(name, value, field))
    for name, section in sections:
        lines += ["", f"[{name}]"]
        for key, field in type(section).model_fields.items():
            lines.append(_toml_line(key, getattr(section, key), field))
    return "\n".join(lines) + "\n"


def _toml_line(key: str, value: Any, field: Any) -> str:
    notes = [field.description] if field.description else []
    if get_origin(field.annotation) is Literal:
        notes.append("one of " + ", ".join(get_args(field.annotation)))
    if value is None:  # TOML has no null: show the key commented out
        line = f"# {key} ="
    else:
        line = f"{key} = {_toml_value(value)}"
    return f"{line:<28} # {'; '.join(notes)}" if notes else line


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
