"""The ``minidl`` command line: ``train``, ``config``, ``compare``, ``plugins``,
``new-strategy``, ``predict``, ``evaluate``.

Exit codes: 0 success, 1 a failure while running (e.g. a NaN loss), 2 bad usage
or config (one clear message, never a traceback).
"""

from minidl.cli.main import main

__all__ = ["main"]
