"""The configuration tree: one pydantic model per section, every field defaulted.

With no file at all it describes the main job, Andrew Ng's planar network:
2 -> 4 tanh -> 1 sigmoid, cross-entropy, SGD lr 1.2, full batch, 10,000 steps,
under ``deferred``. Files may be TOML, YAML or JSON; ``--set a.b=value``
overrides any field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (BaseModel, ConfigDict, Field, Strict, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from minidl.configfile import (MAX_DEPTH, check_depth, parse_config_text, parse_set_value,
                               read_config_text, tomllib)
from minidl.data.datasets import DATASETS
from minidl.data.options import validate_options
from minidl.errors import ConfigError, ConfigTextError
from minidl.strategy import NormalizationConfig

# Strict: a bool is not a number (``epochs = true`` is a mistake, not 1), nor is text.
Int = Annotated[int, Strict()]
#: Finite floats only; ints are accepted (``lr = 1``), bools and text are not.
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Bool = Annotated[bool, Strict()]
__all__ = ["Config", "ConfigError", "load_config", "tomllib", "validate_config"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    dataset: str = Field("planar", description=f"a built-in dataset ({', '.join(DATASETS)}) "
                         "or the path of a .csv or .npz file")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="arguments of a built-in dataset, e.g. n, noise")
    target: Int | str = Field(-1, description="CSV target column: index or header name")
    val_fraction: Float = Field(0.0, ge=0.0, lt=1.0,
                                description="held-out share for validation")
    standardize: Bool = Field(False, description="scale features to zero mean, unit variance "
                              "(statistics of the training split)")
    allow_nonfinite: Bool = Field(False, description="accept NaN and inf in the data (refused "
                                  "by default, naming the row)")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value in DATASETS:
            return value
        if not value.endswith((".csv", ".npz")):
            raise ValueError(f"unknown dataset {value!r}; use one of {', '.join(DATASETS)} or "
                             "the path of a .csv or .npz file")
        path = Path(value)
        if not path.is_file():  # checked now, so `config` and `train` agree
            what = "is a directory, not a file" if path.is_dir() else "file not found"
            raise ValueError(f"{value}: {what} (current directory: {Path.cwd()})")
        return value

    @field_validator("options")
    @classmethod
    def _dataset_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        dataset = info.data.get("dataset")
        if dataset in DATASETS:
            return validate_options(dataset, options)
        if options:
            raise ValueError(f"options are for built-in datasets; a data file takes none, got "
                             f"{sorted(map(str, options))}")
        return options


class ModelConfig(Section):
    name: str | None = Field(None, description="a named model: mlp (built in, the default), "
                             "lenet (built in) or one a plugin provides (minidl_models)")
    factory: str | None = Field(None, description="or your own: \"package.module:function\" "
                                "or \"file.py:function\" returning an nn.Module")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword options of the "
                                    "named model or factory (the fields below are the mlp's)")
    hidden: list[Int] = Field(default_factory=lambda: [4], max_length=1000,
                              description="hidden layer sizes")
    activation: Literal["tanh", "relu", "sigmoid"] = "tanh"
    init: Literal["auto", "xavier", "he", "xavier_uniform", "he_uniform", "small"] = Field(
        "auto", description="hidden layers' weight init (nn.init; the output layer is "
        "xavier); auto picks he for relu, xavier otherwise; small = N(0, 1) * 0.01")
    dropout: Float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer")
    outputs: Int | None = Field(None, ge=1, description="output units; inferred from the labels")

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, sizes: list[int]) -> list[int]:
        if any(size < 1 for size in sizes):
            raise ValueError(f"hidden layer sizes must be positive, got {sizes}")
        return sizes

    @model_validator(mode="after")
    def _one_kind_of_model(self) -> ModelConfig:
        if self.name is not None and self.factory is not None:
            raise ValueError("set model.name or model.factory, not both")
        if self.is_mlp():
            if self.options:
                raise ValueError("model.options are for a named model or a factory; the "
                                 "built-in mlp takes model.hidden, activation, init, dropout")
            return self
        defaults = ModelConfig.model_fields
        changed = [key for key in MLP_FIELDS if getattr(self, key) != defaults[key].get_default(
            call_default_factory=True)]
        if changed:
            raise ValueError(f"model.{', model.'.join(changed)} appl(ies) to the built-in mlp "
                             "only; give your model's options in model.options")
        return self

    def is_mlp(self) -> bool:
        """True when the config describes the built-in MLP."""
        return self.factory is None and self.name in (None, "mlp")


MLP_FIELDS = ("hidden", "activation", "init", "dropout")


class LossConfig(Section):
    name: Literal["auto", "cross_entropy", "binary_cross_entropy", "mse"] = Field(
        "auto", description="auto: binary_cross_entropy for 2 classes, cross_entropy for more, "
        "mse for real-valued targets")


class OptimizerConfig(Section):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    # Bounds far outside any sensible run, so a typo (1e300, inf) is caught, not trained.
    lr: Float = Field(1.2, gt=0.0, le=1e6)
    momentum: Float = Field(0.0, ge=0.0, lt=1.0, description="sgd, rmsprop")
    nesterov: Bool = Field(False, description="sgd only")
    weight_decay: Float = Field(0.0, ge=0.0, le=1e6)
    betas: tuple[Float, Float] = Field((0.9, 0.999), description="adam, adamw")
    eps: Float = Field(1e-8, gt=0.0, le=1.0, description="adam, adamw, rmsprop")
    alpha: Float = Field(0.99, ge=0.0, lt=1.0, description="rmsprop: smoothing of the "
                         "squared gradients")
    centered: Bool = Field(False, description="rmsprop")

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


SCHEDULER_OPTIONS = {"step": ("step_size", "gamma"), "exponential": ("gamma",),
                     "inverse_time": ("decay_rate",), "cosine": ("T_max", "eta_min"),
                     "none": ()}


class SchedulerConfig(Section):
    """A learning-rate schedule stepped once per epoch, optionally after a linear warmup."""

    name: Literal["none", "step", "exponential", "inverse_time", "cosine"] = Field(
        "none", description="the lr schedule, stepped per epoch (mdl.optim.lr_scheduler); "
        "inverse_time = lr / (1 + decay_rate epoch)")
    step_size: int | None = Field(None, ge=1, description="step: epochs between decays")
    gamma: float | None = Field(None, gt=0.0, description="step (default 0.1), exponential")
    decay_rate: float | None = Field(None, ge=0.0, description="inverse_time")
    T_max: int | None = Field(None, ge=1, description="cosine: epochs of the half cosine "
                              "(default: train.epochs - warmup_epochs)")
    eta_min: float | None = Field(None, ge=0.0, description="cosine: the final lr (default 0)")
    warmup_epochs: int = Field(0, ge=0, description="epochs of linear warmup before the "
                               "schedule (0 = none)")
    warmup_start_factor: float = Field(0.1, ge=0.0, le=1.0, description="warmup: first "
                                       "epoch's share of optimizer.lr")

    @model_validator(mode="after")
    def _options_fit_the_schedule(self) -> SchedulerConfig:
        used = SCHEDULER_OPTIONS[self.name]
        for option in ("step_size", "gamma", "decay_rate", "T_max", "eta_min"):
            if getattr(self, option) is not None and option not in used:
                takers = [n for n, names in SCHEDULER_OPTIONS.items() if option in names]
                raise ValueError(f"{option} does not apply to name = {self.name!r} (it is for "
                                 f"{' and '.join(takers)})")
        required = {"step": "step_size", "exponential": "gamma", "inverse_time": "decay_rate"}
        if self.name in required and getattr(self, required[self.name]) is None:
            raise ValueError(f"name = {self.name!r} needs {required[self.name]}")
        return self


class TrainConfig(Section):
    epochs: Int = Field(10_000, ge=1, le=10**9)
    batch_size: Int | None = Field(None, ge=1, description="examples per micro-batch; "
                                   "unset = full batch")
    accumulate: Int = Field(1, ge=1, le=10**9, description="micro-batches per optimizer step")
    seed: Int = Field(3, ge=0, lt=2**63)
    dtype: Literal["float16", "float32", "float64"] = "float32"
    shuffle: Bool = True
    compile: Bool = Field(True, description="replay each micro-batch's forward, loss and "
                          "backward with mdl.compile (bit-identical to eager; a model or "
                          "loss it cannot replay runs eagerly)")


class OutputConfig(Section):
    dir: str = Field("runs/latest", description="where the model, resolved config, metrics "
                     "and checkpoints go; empty to write nothing")
    checkpoint_every: Int = Field(0, ge=0, description="epochs between checkpoints; "
                                  "0 = ten per run")
    overwrite: Bool = Field(False, description="a new run replaces another run's checkpoint "
                            "in dir (refused by default)")


class Config(Section):
    """Everything one ``minidl train`` run needs.

    >>> Config().optimizer.lr, Config().normalization.strategy
    (1.2, 'deferred')
    """

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    plugins: list[str] = Field(default_factory=list, description="observer plugins to load: "
                               "dotted module paths or .py files")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a TOML, YAML or JSON file (size, depth and encoding checked)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (current directory: {Path.cwd()})")
    try:
        if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
            raise ConfigTextError(f"config file {path} must end in .toml, .yaml, .yml or .json")
        raw = parse_config_text(read_config_text(path), path.suffix, str(path))
    except ConfigTextError as err:
        raise ConfigError(str(err)) from None
    if raw is None:  # an empty YAML file
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``section.key=value`` (value parsed as YAML: 3, 0.1, true, [8, 8], text)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=50), got "
                          f"{_clip(assignment)!r}")
    parts = key.strip().split(".")
    if len(parts) > MAX_DEPTH:
        raise ConfigError(f"--set {_clip(key)}: keys are nested at most {MAX_DEPTH} deep")
    try:
        value = parse_set_value(text, key.strip())
    except ConfigTextError as err:
        raise ConfigError(str(err)) from None
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value
    try:
        check_depth(raw, f"--set {key.strip()}")
    except ConfigTextError as err:
        raise ConfigError(str(err)) from None


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
    """The one validation path of ``train``, ``compare`` and ``config``: types, ranges,
    files, dataset options, then the memory the sizes need."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    from minidl.resources import check_config_memory  # here: resources imports builders

    check_config_memory(config)
    return config


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
        shown = "" if isinstance(given, dict) else f" (got {_clip(repr(given))})"
        lines.append(f"{loc}: {message}{shown}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters: a 1 MB value is not worth echoing back."""
    return text if len(text) <= limit else text[:limit] + "..."


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
