"""Config files and --set values: every bad one is one message and exit 2, found fast.

One test per failure class of issue 9: deep nesting, encodings, integers too long,
the YAML alias bomb, bools taken as numbers, unbounded numbers, `config` and `train`
disagreeing, wrong types in data.options, sizes that cannot be allocated.
"""

from __future__ import annotations

import time

import pytest
from helpers.cli import assert_one_message, cli  # noqa: F401 (a fixture)

from minidl.configfile import MAX_CONFIG_BYTES

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")])


@pytest.mark.parametrize("suffix,text", [
    (".json", '{"a": ' * 50_000 + "1" + "}" * 50_000),
    (".yaml", "a: " + "[" * 50_000 + "]" * 50_000),
    (".toml", "a = " + "[" * 50_000 + "]" * 50_000),
    (".json", '{"train": ' + "[" * 20 + "]" * 20 + "}"),  # parses, then too deep
])
def test_deeply_nested_config_files_are_refused(cli, tmp_path, suffix, text):
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    code, _, err = cli("config", path)
    assert_one_message(code, err, 2, str(path), "nested more than 16 levels")


def test_deeply_nested_set_values_and_keys_are_refused(cli):
    code, _, err = cli("config", "--set", "model.hidden=" + "[" * 50_000 + "]" * 50_000)
    assert_one_message(code, err, 2, "--set model.hidden", "nested more than 16 levels")
    code, _, err = cli("config", "--set", ".".join(["a"] * 40) + "=1")
    assert_one_message(code, err, 2, "nested at most 16 deep")


@pytest.mark.parametrize("data,fragment", [
    ("[train]\n# café\nepochs = 3\n".encode("latin-1"), "byte 0xe9 at offset 13"),
    ("[train]\nepochs = 3\n".encode("utf-16"), "looks like UTF-16"),
    (bytes(range(256)), "not UTF-8 text"),
])
def test_config_files_that_are_not_utf8_are_named(cli, tmp_path, data, fragment):
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    code, _, err = cli("config", path)
    assert_one_message(code, err, 2, str(path), "not UTF-8", fragment)


def test_a_utf8_config_with_a_byte_order_mark_is_fine(cli, tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes("\ufeff[train]\nepochs = 3\n".encode("utf-8"))
    code, out, _ = cli("config", path)
    assert code == 0 and "epochs = 3" in out


def test_oversized_config_files_are_refused_before_reading(cli, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    code, _, err = cli("config", path)
    assert_one_message(code, err, 2, str(path), "the limit is 1,048,576")


@pytest.mark.parametrize("suffix,template", [
    (".json", '{{"train": {{"epochs": {}}}}}'), (".yaml", "train: {{epochs: {}}}"),
    (".toml", "[train]\nepochs = {}\n")])
def test_integers_too_long_to_convert_are_one_message(cli, tmp_path, suffix, template):
    path = tmp_path / f"c{suffix}"
    path.write_text(template.format("9" * 5000))
    code, _, err = cli("config", path)
    assert_one_message(code, err, 2, str(path), "more than 4,300 digits")
    code, _, err = cli("config", "--set", "train.epochs=" + "9" * 5000)
    assert_one_message(code, err, 2, "--set train.epochs", "more than 4,300 digits")
    assert len(err) < 300  # the value is not echoed back


def test_the_yaml_alias_bomb_is_refused_in_under_a_second(cli, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    start = time.perf_counter()
    code, _, err = cli("config", path)
    code_set, _, err_set = cli("train", "--set", f"model.hidden={BOMB}")
    elapsed = time.perf_counter() - start
    assert_one_message(code, err, 2, "anchors and aliases")
    assert_one_message(code_set, err_set, 2, "--set model.hidden", "anchors and aliases")
    assert elapsed < 1.0


@pytest.mark.parametrize("assignment,field", [
    ("train.epochs=true", "train.epochs"), ("train.batch_size=true", "train.batch_size"),
    ("optimizer.lr=true", "optimizer.lr"), ("model.hidden=[true]", "model.hidden.0"),
    ("train.shuffle=1", "train.shuffle"), ("optimizer.lr='0.1'", "optimizer.lr"),
])
def test_bools_are_not_numbers_and_numbers_not_bools(cli, assignment, field):
    for command in ("config", "train"):
        code, _, err = cli(command, "--set", assignment)
        assert_one_message(code, err, 2, field)


@pytest.mark.parametrize("assignment,fragment", [
    ("optimizer.lr=.inf", "finite number"), ("optimizer.eps=.inf", "finite number"),
    ("optimizer.lr=.nan", "finite number"),
    ("optimizer.weight_decay=1e300", "less than or equal to 1000000"),
    ("optimizer.eps=2.0", "less than or equal to 1"),
    ("train.seed=-1", "greater than or equal to 0"),
    ("data.dataset=missing.csv", "missing.csv: file not found"),
])
def test_config_and_train_agree_on_what_is_valid(cli, tmp_path, assignment, fragment):
    for command in ("config", "train"):
        code, _, err = cli(command, "--set", assignment, "--set", f"output.dir={tmp_path}")
        assert_one_message(code, err, 2, fragment)
    assert list(tmp_path.iterdir()) == []  # train refused before writing anything


def test_exponent_floats_without_a_dot_are_numbers(cli):
    code, out, _ = cli("config", "--set", "optimizer.lr=1e-3", "--set",
                       "optimizer.weight_decay=5E2")
    assert code == 0 and "lr = 0.001" in out and "weight_decay = 500.0" in out


@pytest.mark.parametrize("dataset,options,fragment", [
    ("planar", "{n: '400'}", "n: Input should be a valid integer (got '400')"),
    ("planar", "{n: null}", "n: Input should be a valid integer (got None)"),
    ("planar", "{seed: 1.5}", "seed: Input should be a valid integer (got 1.5)"),
    ("spirals", "{classes: 2.5}", "classes: Input should be a valid integer (got 2.5)"),
    ("spirals", "{noise: 1e999}", "noise: Input should be a finite number"),
    ("moons", "{n: true}", "n: Input should be a valid integer (got True)"),
    ("xor", "{classes: 3}", "classes: unknown option; accepted options: n, noise, seed"),
    ("planar", "{n: 1}", "n: Input should be greater than or equal to 2"),
])
def test_dataset_options_are_checked_naming_the_option(cli, dataset, options, fragment):
    for command in ("config", "train"):
        code, _, err = cli(command, "--set", f"data.dataset={dataset}",
                           "--set", f"data.options={options}")
        assert_one_message(code, err, 2, "data.options", fragment)


@pytest.mark.parametrize("argv", [
    ["train", "--set", "model.hidden=[1000000000000]"],
    ["train", "--set", "data.options={n: 10000000000}"],
    ["config", "--set", "model.hidden=[100000, 100000, 100000]"],
    ["compare", "--batch-sizes", "1000000000000", "--steps", "1", "--dtypes", "float64"],
])
def test_sizes_that_cannot_be_allocated_are_refused_with_the_estimate(cli, argv):
    start = time.perf_counter()
    code, _, err = cli(*argv)
    assert_one_message(code, err, 2, "needs at least", "of memory, but", "is available")
    assert time.perf_counter() - start < 2.0


def test_the_memory_check_uses_what_is_available(cli, monkeypatch):
    from minidl import resources

    monkeypatch.setattr(resources, "available_memory", lambda: 10_000)
    code, _, err = cli("config")  # the default planar net needs ~58 kB
    assert_one_message(code, err, 2, "needs at least 56.6 KiB", "but 9.77 KiB is available")
