"""``python -m minidl`` runs the ``minidl`` command."""

import sys

from minidl.cli import main

sys.exit(main())
