"""Hypothesis strategies and the outcome contract of the fuzz suite (tests/fuzz/).

The contract (issue 9): whatever the input, ``minidl`` ends in success (0), one message
with exit 2 (bad usage, config or file) or one message with exit 1 (a run failure), in
well under 10 s, and never lets an exception escape ``main``.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from minidl.cli import main
from minidl.config import Config

#: Deterministic in CI: derandomize (examples derived from the test), a 10 s deadline.
#: For a longer hunt: MINIDL_FUZZ_EXAMPLES=2000 MINIDL_FUZZ_RANDOM=1 pytest tests/fuzz
FUZZ = settings(max_examples=int(os.environ.get("MINIDL_FUZZ_EXAMPLES", "100")),
                derandomize=not os.environ.get("MINIDL_FUZZ_RANDOM"),
                deadline=10_000, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

SECTIONS = list(Config.model_fields)
FIELDS = sorted({name for section in Config.model_fields.values()
                 if hasattr(section.annotation, "model_fields")
                 for name in section.annotation.model_fields})
KEYS = sorted(f"{name}.{field}" for name, section in Config.model_fields.items()
              if hasattr(section.annotation, "model_fields")
              for field in section.annotation.model_fields)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**3), st.integers(),
    st.integers(-(10**40), 10**40), st.floats(), st.floats(-10, 10),
    st.text(max_size=12), st.sampled_from(["planar", "moons", "adam", "relu", "float16", ""]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                      max_leaves=12)
sections = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), values, max_size=5)
configs = st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=6),
                          sections | values, max_size=5)

#: YAML-ish text a user might type after ``--set KEY=``.
set_texts = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A[\[\]{}:,&*!|>'\"0-9.eE+-]{0,30}\Z"),
    st.sampled_from(["true", "null", ".inf", "-.nan", "1e999", "[1, [2, [3]]]", "{n: 5}",
                     "&a [1]", "*a", "!!python/object:os.system", "0x10", "1_000",
                     "2020-13-45", "~", "[true]", "'", "{", "9" * 5000]))


def check_outcome(argv: list[str], capsys) -> int:
    """Run ``minidl argv`` in-process and assert the contract; returns the exit code."""
    start = time.perf_counter()
    code = main([str(arg) for arg in argv])
    elapsed = time.perf_counter() - start
    _, err = capsys.readouterr()
    assert elapsed < 10.0, f"{elapsed:.1f} s for {argv!r:.300}"
    assert "Traceback" not in err, err
    if code == 0:
        return code
    assert code in (1, 2), (code, err)
    # Exit 1 must be a classified run failure ("failed: ..."), not main's last-resort
    # "error: SomeError: ..." for an exception nobody mapped to an exit code.
    assert err.startswith("error: " if code == 2 else "failed: "), (code, err[:500])
    return code
