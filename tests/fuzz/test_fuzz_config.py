"""Fuzz: generated config files and --set values through `minidl config` and `train`.

`config` runs the same validation path as `train` and `compare`, so it is the fast way
to put hundreds of configs through it; a smaller batch of small-sized overrides is
trained for real (one or two epochs). Every case that ever failed is an ``@example``.
"""

from __future__ import annotations

import json

import pytest
import yaml
from helpers.fuzzing import FUZZ, KEYS, check_outcome, configs, set_texts, values
from hypothesis import example, given
from hypothesis import strategies as st

from minidl.config import Config, config_to_toml

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

BOMB = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
DEFAULT_TOML = config_to_toml(Config())


@FUZZ
@given(config=configs, form=st.sampled_from(["json", "yaml"]))
@example(config={"train": {"epochs": True}}, form="json")
@example(config={"optimizer": {"lr": float("inf")}}, form="json")
@example(config={"data": {"options": {"n": "400"}}}, form="yaml")
@example(config={"data": {"options": {"noise": 1e308 * 10}}}, form="yaml")
@example(config={"data": {"options": None}}, form="json")
@example(config={"model": {"hidden": [10**12]}}, form="json")
@example(config={"train": {"seed": 10**40}}, form="yaml")
@example(config={"data": {"dataset": "x.csv", "options": {"n": 3}}}, form="json")
def test_structured_config_files(capsys, tmp_path_factory, config, form):
    path = tmp_path_factory.mktemp("cfg") / f"c.{form}"
    text = json.dumps(config) if form == "json" else yaml.safe_dump(config)
    path.write_text(text, encoding="utf-8")
    assert check_outcome(["config", path], capsys) in (0, 2)


@FUZZ
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       suffix=st.sampled_from([".toml", ".yaml", ".json", ".yml"]))
@example(data=b'{"a": ' * 5000 + b"1" + b"}" * 5000, suffix=".json")
@example(data=b"a = " + b"[" * 5000 + b"]" * 5000, suffix=".toml")
@example(data=b"a: " + b"[" * 5000 + b"]" * 5000, suffix=".yaml")
@example(data=BOMB.encode(), suffix=".yaml")
@example(data="[train]\nepochs = 3 # caf\xe9\n".encode("latin-1"), suffix=".toml")
@example(data="[train]\nepochs = 3\n".encode("utf-16"), suffix=".toml")
@example(data=b"train: {epochs: " + b"9" * 5000 + b"}", suffix=".yaml")
@example(data=b"x: 2020-13-45", suffix=".yaml")
@example(data=b"? [a]\n: 1", suffix=".yaml")
@example(data=b"!!python/object/apply:os.system ['true']", suffix=".yaml")
@example(data=b"\x00", suffix=".toml")
def test_raw_config_bytes(capsys, tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("raw") / f"c{suffix}"
    path.write_bytes(data)
    assert check_outcome(["config", path], capsys) in (0, 2)


@FUZZ
@given(position=st.integers(0, len(DEFAULT_TOML)), insert=st.text(max_size=8),
       cut=st.integers(0, 8))
def test_edited_default_toml(capsys, tmp_path_factory, position, insert, cut):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    path.write_text(DEFAULT_TOML[:position] + insert + DEFAULT_TOML[position + cut:])
    assert check_outcome(["config", path], capsys) in (0, 2)


@FUZZ
@given(assignments=st.lists(
    st.tuples(st.sampled_from(KEYS) | st.text(max_size=12), set_texts), max_size=4))
@example(assignments=[("model.hidden", "[" * 5000 + "]" * 5000)])
@example(assignments=[("train.epochs", "9" * 5000)])
@example(assignments=[("model.hidden", BOMB)])
@example(assignments=[("optimizer.lr", "true")])
@example(assignments=[("data.options", "{seed: 1.5}")])
@example(assignments=[("train", "3"), ("train.epochs", "2")])
@example(assignments=[("a" + ".a" * 40, "1")])
@example(assignments=[("", "1")])
def test_set_values(capsys, assignments):
    argv = ["config"]
    for key, text in assignments:
        argv += ["--set", f"{key}={text}"]
    assert check_outcome(argv, capsys) in (0, 2)


SMALL = {
    "data.dataset": st.sampled_from(["planar", "moons", "xor", "spirals", "digits", "nope"]),
    "data.options": st.fixed_dictionaries({}, optional={
        "n": st.integers(-2, 60) | values, "noise": st.floats(-1, 2) | values,
        "seed": st.integers(-1, 5), "classes": st.integers(0, 4) | values}),
    "data.val_fraction": st.floats(-0.5, 1.5) | values,
    "data.standardize": st.booleans() | values,
    "model.hidden": st.lists(st.integers(-1, 6), max_size=3) | values,
    "model.activation": st.sampled_from(["tanh", "relu", "sigmoid", "gelu"]),
    "model.dropout": st.floats(-0.5, 1.5),
    "model.outputs": st.integers(-1, 12) | st.none(),
    "loss.name": st.sampled_from(["auto", "cross_entropy", "binary_cross_entropy", "mse"]),
    "optimizer.name": st.sampled_from(["sgd", "adam", "adamw", "rmsprop"]),
    "optimizer.lr": st.floats(-1, 1e7) | values,
    "optimizer.momentum": st.floats(-1, 2),
    "optimizer.nesterov": st.booleans(),
    "optimizer.eps": st.floats(0, 2) | values,
    "train.batch_size": st.integers(-1, 80) | st.none(),
    "train.accumulate": st.integers(0, 4),
    "train.dtype": st.sampled_from(["float16", "float32", "float64", "int8"]),
    "normalization.strategy": st.sampled_from(["deferred", "absorbed", "sum", "median"]),
}


@FUZZ
@given(overrides=st.fixed_dictionaries({}, optional=SMALL), epochs=st.integers(1, 2))
@example(overrides={"data.dataset": "spirals", "data.options": {"classes": 2.5}}, epochs=1)
@example(overrides={"optimizer.lr": 1e6, "train.dtype": "float16"}, epochs=2)
@example(overrides={"data.options": {"n": 3}, "data.val_fraction": 0.5}, epochs=1)
@example(overrides={"loss.name": "mse", "model.outputs": 3}, epochs=1)
def test_training_small_configs(capsys, tmp_path_factory, overrides, epochs):
    out = tmp_path_factory.mktemp("run")
    argv = ["train", "--quiet", "--set", f"train.epochs={epochs}", "--set", f"output.dir={out}"]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={json.dumps(value, allow_nan=True)}"]
    check_outcome(argv, capsys)
