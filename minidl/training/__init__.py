"""Training any model: the one training loop (``Trainer``) and its checkpoints."""

from minidl.manifest import CHECKPOINT_NAME
from minidl.training.loop import Trainer

__all__ = ["CHECKPOINT_NAME", "Trainer"]
