"""Shared helpers: run the CLI in-process and check the one-message contract."""

from __future__ import annotations

import pytest

from minidl.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``minidl ARGV`` run in this process."""
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_message(code: int, err: str, expected_code: int, *fragments: str) -> None:
    """Exit ``expected_code`` with one error message (no traceback) holding ``fragments``."""
    assert code == expected_code, err
    assert "Traceback" not in err
    assert err.startswith(("error: ", "failed: ")), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def cli(capsys):
    """``cli(*argv)``: run minidl in-process, returning (code, stdout, stderr)."""
    return lambda *argv: run_cli(capsys, *argv)
