"""Training any model: the one training loop (``Trainer``) and its checkpoints."""

from minidl.training.loop import CHECKPOINT_NAME, Trainer

__all__ = ["CHECKPOINT_NAME", "Trainer"]
