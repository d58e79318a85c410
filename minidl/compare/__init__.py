"""``minidl compare``: every strategy on the same network and batch, measured."""

from minidl.compare.runner import compare, installed_strategies

__all__ = ["compare", "installed_strategies"]
