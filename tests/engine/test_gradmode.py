"""Grad modes as ContextDecorators: every way to use them, and threads that do not interfere.

(test_backward.py has the basics: no graph under no_grad, enable_grad inside it,
restoring after an exception, no leak into a thread started inside the block.)
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import minidl as mdl


def _double(x: mdl.Tensor) -> tuple[mdl.Tensor, bool]:
    return x * 2.0, mdl.is_grad_enabled()


@pytest.mark.parametrize("form", ["bare decorator", "called decorator", "with block",
                                  "one instance, entered twice"])
def test_no_grad_in_every_form_builds_no_graph_and_restores_the_mode(form):
    x = mdl.tensor([1.0, -2.0], requires_grad=True)
    if form == "bare decorator":
        y, enabled = mdl.no_grad(_double)(x)
    elif form == "called decorator":
        y, enabled = mdl.no_grad()(_double)(x)
    elif form == "with block":
        with mdl.no_grad():
            y, enabled = _double(x)
    else:
        guard = mdl.no_grad()
        with guard:
            with guard:
                y, enabled = _double(x)
            assert not mdl.is_grad_enabled()  # the inner exit restored the outer block's
    assert not enabled and not y.requires_grad and y._ctx is None
    np.testing.assert_array_equal(y.data, [2.0, -4.0])
    assert mdl.is_grad_enabled()
    z, enabled = _double(x)
    assert enabled and z.requires_grad


def test_a_decorated_function_keeps_its_name_and_doc_and_returns_its_value():
    @mdl.no_grad
    def infer(x):
        """Runs the model."""
        return x * 3.0

    @mdl.enable_grad()
    def train(x):
        """Builds a graph."""
        return x * 3.0

    assert (infer.__name__, infer.__doc__) == ("infer", "Runs the model.")
    assert (train.__name__, train.__doc__) == ("train", "Builds a graph.")
    x = mdl.tensor([2.0], requires_grad=True)
    with mdl.no_grad():
        built = train(x)
    assert built.requires_grad
    built.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0])
    assert infer(x).item() == 6.0 and not infer(x).requires_grad


def test_one_decorated_function_in_two_threads_at_once_keeps_each_threads_mode():
    """Thread A enters first and leaves first while B is still inside: were the two calls
    to share one token stack, A would pop B's token (a ValueError from the ContextVar)."""
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, list[bool]] = {"A": [], "B": [], "C": []}
    errors: list[BaseException] = []

    @mdl.no_grad
    def work(name: str, wait_for: threading.Event, then_set: threading.Event) -> None:
        seen[name].append(mdl.is_grad_enabled())
        then_set.set()
        assert wait_for.wait(10)
        seen[name].append(mdl.is_grad_enabled())
        seen[name].append((mdl.tensor([1.0], requires_grad=True) * 2).requires_grad)

    def thread_a() -> None:
        work("A", b_inside, a_inside)
        seen["A"].append(mdl.is_grad_enabled())  # after its call: on again in A
        a_left.set()

    def thread_b() -> None:
        assert a_inside.wait(10)
        work("B", a_left, b_inside)
        seen["B"].append(mdl.is_grad_enabled())

    def thread_c() -> None:  # never decorated: grad stays on while A and B are inside
        assert a_inside.wait(10) and b_inside.wait(10)
        seen["C"].append(mdl.is_grad_enabled())

    def guarded(target):
        def run() -> None:
            try:
                target()
            except BaseException as err:  # surfaced in the main thread below
                errors.append(err)
                for event in (a_inside, b_inside, a_left):
                    event.set()
        return run

    threads = [threading.Thread(target=guarded(t)) for t in (thread_a, thread_b, thread_c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert seen["A"] == [False, False, False, True]
    assert seen["B"] == [False, False, False, True]
    assert seen["C"] == [True]
    assert mdl.is_grad_enabled()


def test_detect_anomaly_as_a_decorator_checks_only_inside():
    x = mdl.tensor([0.0], requires_grad=True)

    @mdl.detect_anomaly
    def log_of(t):
        return mdl.log(t)

    with np.errstate(divide="ignore"):
        assert np.isneginf(mdl.log(x).data).all()  # unchecked outside
        with pytest.raises(mdl.AnomalyError, match="Log forward produced -inf"):
            log_of(x)
