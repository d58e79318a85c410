"""Models you can name, build, save and load: the built-in ``mlp``, factories named in
config (``"module:function"`` or ``"file.py:function"``), names plugins register
(``minidl_models``), and ``save``/``load`` of architecture, weights and input scaling."""

from minidl.models.factories import build_model, registered_models
from minidl.models.files import load, save
from minidl.models.mlp import mlp

__all__ = ["build_model", "load", "mlp", "registered_models", "save"]
