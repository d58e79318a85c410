"""A plugin for the distributed trainer tests, driven by environment variables.

MINIDL_TEST_STOP_AT=E stops training after epoch E (on every rank alike);
MINIDL_TEST_FAIL_RANK=R raises on rank R at its third optimizer step.
"""

from __future__ import annotations

import os

import minidl as mdl


@mdl.hookimpl
def minidl_epoch_end(epoch):
    return epoch == int(os.environ.get("MINIDL_TEST_STOP_AT", "0"))


@mdl.hookimpl
def minidl_step_end(step):
    if step == 3 and str(mdl.distributed.rank()) == os.environ.get("MINIDL_TEST_FAIL_RANK"):
        raise RuntimeError(f"shard {mdl.distributed.rank()} is broken")
