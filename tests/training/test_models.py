"""Models you can name and reuse: factories in config, models a plugin names
(minidl_models), mdl.save / mdl.load, and load_state_dict on the CLI's file."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import minidl as mdl
from minidl.config import load_config
from minidl.errors import CheckpointError, ConfigError, InvalidValueError, PluginError
from minidl.models.files import FORMAT_KEY
from minidl.storage import load_arrays, save_arrays
from minidl.trainer import Trainer

FACTORY_SOURCE = textwrap.dedent('''
    import numpy as np
    import minidl as mdl
    from pydantic import BaseModel


    class Wide(mdl.nn.Module):
        def __init__(self, inputs: int, outputs: int, width: int = 8, generator=None,
                     dtype=None):
            super().__init__()
            self.body = mdl.nn.Linear(inputs, width, generator=generator, dtype=dtype)
            self.head = mdl.nn.Linear(width, outputs, generator=generator, dtype=dtype)

        def forward(self, x):
            return self.head(self.body(x).relu())


    def build(inputs: int, outputs: int, width: int = 8, generator=None, dtype=None):
        return Wide(inputs, outputs, width, generator, dtype)


    class ShallowOptions(BaseModel):
        model_config = {"extra": "forbid"}
        bias: bool = True


    def shallow(inputs, outputs, bias=True, generator=None):
        return mdl.nn.Linear(inputs, outputs, bias=bias, generator=generator)

    shallow.Options = ShallowOptions
''')


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(FACTORY_SOURCE)
    return path


def _config(*overrides: str, epochs: int = 2):
    return load_config(overrides=["data.dataset=moons", f"train.epochs={epochs}", "output.dir=",
                                  "optimizer.lr=0.1", *overrides])


def _outputs(model, features) -> np.ndarray:
    model.eval()
    with mdl.no_grad():
        return model(mdl.tensor(features, dtype="float32")).data


# ---- factories in config -------------------------------------------------------------------
def test_a_factory_file_builds_trains_saves_and_loads(factory_file, tmp_path):
    trainer = Trainer(_config(f"model.factory={factory_file}:build", "model.options={width: 5}",
                              f"output.dir={tmp_path / 'run'}", "data.standardize=true"))
    assert type(trainer.model).__name__ == "Wide" and trainer.model.body.weight.shape == (5, 2)
    trainer.fit()
    loaded = mdl.load(tmp_path / "run")
    assert isinstance(loaded, mdl.nn.Sequential) and isinstance(loaded[0], mdl.nn.Standardize)
    assert type(loaded[1]).__name__ == "Wide" and not loaded.training
    raw = mdl.data.moons()[0]
    with mdl.no_grad():  # raw float64 features: scaled exactly as the training split was
        got = loaded(mdl.tensor(raw, dtype="float64")).data
    np.testing.assert_array_equal(got, _outputs(trainer.model, trainer.data.scale(raw)))


def test_factory_options_are_validated_by_signature_or_declared_model(factory_file):
    with pytest.raises(ConfigError, match=r"model.options.depth: build has no such option; "
                                          r"its options: width"):
        Trainer(_config(f"model.factory={factory_file}:build", "model.options={depth: 3}"))
    with pytest.raises(ConfigError, match=r"model.options.width: Input should be a valid "
                                          r"integer.*'wide'"):
        Trainer(_config(f"model.factory={factory_file}:build", "model.options={width: wide}"))
    with pytest.raises(ConfigError, match="model.options.bias: Input should be a valid boolean"):
        Trainer(_config(f"model.factory={factory_file}:shallow", "model.options={bias: maybe}"))
    with pytest.raises(ConfigError, match="inputs come\\(s\\) from the data"):
        Trainer(_config(f"model.factory={factory_file}:build", "model.options={inputs: 3}"))
    trainer = Trainer(_config(f"model.factory={factory_file}:shallow",
                              "model.options={bias: false}"))
    assert trainer.model.bias is None


def test_a_dotted_factory_path_works_and_a_bad_one_is_named(factory_file, monkeypatch):
    monkeypatch.syspath_prepend(str(factory_file.parent))
    trainer = Trainer(_config("model.factory=my_models:build"))
    assert type(trainer.model).__name__ == "Wide"
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        Trainer(_config("model.factory=no_such_module:build"))
    with pytest.raises(ConfigError, match="has no callable 'nothing'"):
        Trainer(_config("model.factory=my_models:nothing"))


@pytest.mark.parametrize("overrides,message", [
    (["model.name=mlp", "model.factory=a:b"], "set model.name or model.factory, not both"),
    (["model.factory=a:b", "model.hidden=[3]"], "model.hidden appl(ies) to the built-in mlp"),
    (["model.options={width: 3}"], "model.options are for a named model or a factory"),
])
def test_model_sections_that_mix_kinds_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=overrides)


# ---- models a plugin names -----------------------------------------------------------------
class _TinyModels:
    @mdl.hookimpl
    def minidl_models(self):
        def tiny(inputs: int, outputs: int, generator=None):
            return mdl.nn.Linear(inputs, outputs, generator=generator)
        return {"tiny": tiny}


def test_hook_minidl_models(plugin_manager, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown model 'tiny'; known models: lenet, mlp"):
        Trainer(_config("model.name=tiny"))
    plugin_manager.register(_TinyModels(), name="tiny-models")
    trainer = Trainer(_config("model.name=tiny", f"output.dir={tmp_path}"))
    assert isinstance(trainer.model, mdl.nn.Linear) and trainer.model.weight.shape == (1, 2)
    trainer.fit()
    loaded = mdl.load(tmp_path / "model.npz")  # rebuilt by name, through the hook
    np.testing.assert_array_equal(loaded.weight.data, trainer.model.weight.data)
    assert sorted(mdl.models.registered_models()) == ["lenet", "mlp", "tiny"]

    plugin_manager.register(_TinyModels(), name="tiny-again")
    with pytest.raises(PluginError, match="model name 'tiny' is claimed by both"):
        mdl.models.registered_models()


def test_a_config_plugin_can_name_the_model(tmp_path):
    path = tmp_path / "named.py"
    path.write_text("import minidl as mdl\n\n@mdl.hookimpl\ndef minidl_models():\n"
                    "    return {'line': lambda inputs, outputs: mdl.nn.Linear(inputs, outputs)}\n")
    trainer = Trainer(_config("model.name=line", f'plugins=["{path}"]'))
    assert isinstance(trainer.model, mdl.nn.Linear)


def test_a_plugin_returning_no_dict_is_named(plugin_manager):
    class Broken:
        @mdl.hookimpl
        def minidl_models(self):
            return ["tiny"]

    plugin_manager.register(Broken(), name="broken-models")
    with pytest.raises(PluginError, match="'broken-models': minidl_models must return a dict"):
        mdl.models.registered_models()


# ---- save and load -------------------------------------------------------------------------
def test_the_cli_model_file_loads_ready_to_predict(tmp_path):
    trainer = Trainer(_config(f"output.dir={tmp_path}", "model.hidden=[6, 5]",
                              "train.dtype=float64", "model.dropout=0.2"))
    trainer.fit()
    loaded = mdl.load(tmp_path)
    assert [p.dtype for p in loaded.parameters()] == [np.float64] * 6  # precision kept
    features = mdl.data.moons()[0]
    with mdl.no_grad():
        expected = trainer.model.eval()(mdl.tensor(features, dtype="float64")).data
        got = loaded(mdl.tensor(features, dtype="float64")).data
    np.testing.assert_array_equal(got, expected)
    _, meta = load_arrays(tmp_path / "model.npz")
    assert meta["architecture"] == {
        "factory": "mlp", "options": {"hidden": [6, 5], "activation": "tanh", "init": "auto",
                                      "dropout": 0.2},
        "context": {"inputs": 2, "outputs": 1, "dtype": "float64"}}
    assert meta["task"] == "binary" and meta[FORMAT_KEY] == 1


class Scaled(mdl.nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.layer = mdl.nn.Linear(2, width, generator=0)

    def forward(self, x):
        return self.layer(x)


def test_save_a_user_class_with_scaling_and_resave_the_loaded_model(tmp_path):
    model = Scaled(width=4)
    model.layer.weight.data[...] = np.arange(8, dtype=np.float32).reshape(4, 2)
    scaling = {"mean": [1.0, -2.0], "std": [2.0, 0.5]}
    mdl.save(model, tmp_path / "m.npz", options={"width": 4}, scaling=scaling)
    loaded = mdl.load(tmp_path / "m.npz")
    raw = np.array([[3.0, 0.0], [1.0, -2.0]])
    scaled = (raw - np.array(scaling["mean"])) / np.array(scaling["std"])  # [[1, 4], [0, 0]]
    with mdl.no_grad():
        got = loaded(mdl.tensor(raw, dtype="float64")).data
    np.testing.assert_array_equal(got, _outputs(model, scaled))
    np.testing.assert_array_equal(got[1], model.layer.bias.data)
    mdl.save(loaded, tmp_path / "again.npz")  # the Standardize front is saved as scaling
    _, meta = load_arrays(tmp_path / "again.npz")
    assert meta["scaling"] == scaling and meta["architecture"]["options"] == {"width": 4}


def test_save_checks_the_options_rebuild_the_model(tmp_path):
    with pytest.raises(InvalidValueError, match=r"Scaled\(\*\*\{\}\) builds a model whose "
                                                r"parameters differ.*layer.bias.*options="):
        mdl.save(Scaled(width=5), tmp_path / "m.npz")
    with pytest.raises(ConfigError, match="save: options.depth: Scaled has no such option"):
        mdl.save(Scaled(), tmp_path / "m.npz", options={"depth": 2})
    assert not (tmp_path / "m.npz").exists()


def test_files_that_are_no_loadable_model_are_named(tmp_path):
    model = Scaled()
    mdl.save(model, tmp_path / "m.npz")
    arrays, meta = load_arrays(tmp_path / "m.npz")
    save_arrays(tmp_path / "newer.npz", arrays, {**meta, FORMAT_KEY: 2})
    with pytest.raises(CheckpointError, match="format 2, newer than this minidl reads"):
        mdl.load(tmp_path / "newer.npz")
    np.savez(tmp_path / "bare.npz", **arrays)
    with pytest.raises(CheckpointError, match="no architecture.*model.load_state_dict"):
        mdl.load(tmp_path / "bare.npz")
    save_arrays(tmp_path / "ckpt.npz", arrays, {"format": 1})
    with pytest.raises(CheckpointError, match="a training checkpoint, not a model file"):
        mdl.load(tmp_path / "ckpt.npz")
    with pytest.raises(CheckpointError, match="no model file at"):
        mdl.load(tmp_path / "missing.npz")


def test_load_state_dict_takes_the_cli_file_and_names_the_real_mismatch(tmp_path):
    trainer = Trainer(_config(f"output.dir={tmp_path}", "model.hidden=[3]"))
    trainer.fit()
    fresh = Trainer(_config("model.hidden=[3]")).model
    fresh.load_state_dict(tmp_path / "model.npz")  # a path: the metadata is ignored
    np.testing.assert_array_equal(fresh[0].weight.data, trainer.model[0].weight.data)
    with np.load(tmp_path / "model.npz") as archive:  # what a torch user writes
        fresh.load_state_dict(dict(archive))
    other = Trainer(_config("model.hidden=[3, 3]")).model
    with pytest.raises(KeyError, match=r"missing keys \['4.bias', '4.weight'\] \(in the model"):
        other.load_state_dict(tmp_path / "model.npz")
    with pytest.raises(mdl.errors.CheckpointError, match="no file at"):
        other.load_state_dict(tmp_path / "nope.npz")
    assert "__meta__" in json.dumps(list(np.load(tmp_path / "model.npz").files))
