"""The whole engine on random graphs, against central differences of the same graph in numpy.

A seeded generator writes a small program: 5-15 steps over 2-3 inputs, each step
an op applied to earlier nodes (inputs or results, so nodes are reused and
gradients meet). The program runs twice, once through minidl and once through an
independent numpy interpreter; ``check_op`` compares minidl's backward with
finite differences of the numpy version. Steps that would sit within 1e-3 of a
kink (relu, abs, maximum, max) or make values larger than 50 are redrawn, so
finite differences are valid everywhere they are taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from helpers.opcheck import check_op

import minidl as mdl
import minidl.nn.functional as F

Params = dict[str, Any]


@dataclass(frozen=True)
class Op:
    arity: int
    minidl: Callable[..., mdl.Tensor]
    numpy: Callable[..., np.ndarray]
    #: params for these argument values, or None if the op does not apply to them
    params: Callable[[np.random.Generator, list[np.ndarray]], Params | None] = \
        lambda rng, args: {}
    #: distances to the op's kinks for these arguments (redrawn if any is within 1e-3)
    kinks: Callable[..., np.ndarray] | None = None


def _broadcastable(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    try:
        np.broadcast_shapes(*[a.shape for a in args])
    except ValueError:
        return None
    return {}


def _axis(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    ndim = args[0].ndim
    if ndim == 0:
        return {"axis": None, "keepdims": bool(rng.integers(2))}
    choice = rng.integers(3)
    axis: Any = None if choice == 0 else int(rng.integers(-ndim, ndim)) if choice == 1 \
        else tuple(sorted(set(int(a) for a in rng.integers(0, ndim, 2))))
    return {"axis": axis, "keepdims": bool(rng.integers(2))}


def _last_axis(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    return {} if args[0].ndim >= 1 else None


def _rows(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    if args[0].ndim == 0:
        return None
    n = args[0].shape[0]
    rows = rng.integers(-n, n, int(rng.integers(1, 5)))
    rows[0] = rows[-1]  # always at least one repeated row (when more than one is picked)
    return {"rows": rows}


def _mask(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    if _broadcastable(rng, args) is None:
        return None
    return {"mask": rng.random(np.broadcast_shapes(*[a.shape for a in args])) < 0.5}


def _same_shape(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    if args[0].shape != args[1].shape or args[0].ndim == 0:
        return None
    return {"axis": int(rng.integers(-args[0].ndim, args[0].ndim))}


def _stackable(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    if args[0].shape != args[1].shape:
        return None
    return {"axis": int(rng.integers(-args[0].ndim - 1, args[0].ndim + 1))}


def _matmul_t(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    a, b = args
    if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2 and a.shape[-1] == b.shape[-1]):
        return None
    return {}


def _reshape(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    shape = args[0].shape
    options = [(-1,), shape[::-1], (1,) + shape]
    return {"shape": options[int(rng.integers(len(options)))]}


def _max_kinks(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    gaps = np.diff(np.unique(x))  # conservative: any two distinct values close together
    return gaps if gaps.size else np.ones(1)


def _max_axis(rng: np.random.Generator, args: list[np.ndarray]) -> Params | None:
    return None if args[0].size == 0 else _axis(rng, args)


OPS: dict[str, Op] = {
    # ---- unary (compositions keep every value in the op's domain) ----
    "neg": Op(1, lambda a: -a, lambda a: -a),
    "tanh": Op(1, lambda a: a.tanh(), np.tanh),
    "sigmoid": Op(1, mdl.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    "exp": Op(1, lambda a: a.tanh().exp(), lambda a: np.exp(np.tanh(a))),
    "log": Op(1, lambda a: (a * a + 1.0).log(), lambda a: np.log(a * a + 1.0)),
    "sqrt": Op(1, lambda a: (a * a + 0.5).sqrt(), lambda a: np.sqrt(a * a + 0.5)),
    "relu": Op(1, lambda a: a.relu(), lambda a: np.maximum(a, 0.0), kinks=lambda a: np.abs(a)),
    "abs": Op(1, mdl.abs, np.abs, kinks=lambda a: np.abs(a)),
    "square": Op(1, lambda a: a * a, lambda a: a * a),
    "pow_scalar": Op(1, lambda a: (a * a + 0.5) ** 1.5, lambda a: (a * a + 0.5) ** 1.5),
    "scale": Op(1, lambda a: 0.5 * a - 1.0, lambda a: 0.5 * a - 1.0),
    # ---- binary, broadcasting ----
    "add": Op(2, lambda a, b: a + b, np.add, _broadcastable),
    "sub": Op(2, lambda a, b: a - b, np.subtract, _broadcastable),
    "mul": Op(2, lambda a, b: a * b, np.multiply, _broadcastable),
    "div": Op(2, lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0),
              _broadcastable),
    "pow": Op(2, lambda a, b: (a * a + 0.5) ** b.tanh(),
              lambda a, b: (a * a + 0.5) ** np.tanh(b), _broadcastable),
    "maximum": Op(2, mdl.maximum, np.maximum, _broadcastable,
                  kinks=lambda a, b: np.abs(np.subtract(a, b))),
    "where": Op(2, lambda a, b, mask: mdl.where(mdl.tensor(mask), a, b),
                lambda a, b, mask: np.where(mask, a, b), _mask),
    "matmul_t": Op(2, lambda a, b: a @ b.T, lambda a, b: a @ b.T, _matmul_t),
    # ---- reductions ----
    "sum": Op(1, lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
              lambda a, axis, keepdims: np.sum(a, axis=axis, keepdims=keepdims), _axis),
    "mean": Op(1, lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
               lambda a, axis, keepdims: np.mean(a, axis=axis, keepdims=keepdims), _axis),
    "max": Op(1, lambda a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),
              lambda a, axis, keepdims: np.max(a, axis=axis, keepdims=keepdims), _max_axis,
              kinks=_max_kinks),
    # ---- movement ----
    "transpose": Op(1, lambda a: a.T, lambda a: a.T),
    "reshape": Op(1, lambda a, shape: a.reshape(shape), lambda a, shape: a.reshape(shape),
                  _reshape),
    "take_rows": Op(1, lambda a, rows: a[rows], lambda a, rows: a[rows], _rows),
    "slice": Op(1, lambda a: a[..., ::-1][None], lambda a: a[..., ::-1][None], _last_axis),
    "concatenate": Op(2, lambda a, b, axis: mdl.concatenate([a, b], axis=axis),
                      lambda a, b, axis: np.concatenate([a, b], axis=axis), _same_shape),
    "stack": Op(2, lambda a, b, axis: mdl.stack([a, b], axis=axis),
                lambda a, b, axis: np.stack([a, b], axis=axis), _stackable),
    # ---- softmax ----
    "softmax": Op(1, lambda a: F.softmax(a, axis=-1),
                  lambda a: np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True), _last_axis),
    "log_softmax": Op(1, lambda a: F.log_softmax(a, axis=-1),
                      lambda a: a - np.log(np.exp(a).sum(axis=-1, keepdims=True)), _last_axis),
}

INPUT_SHAPES = [(3, 4), (4,), (3, 1), (), (1, 4), (3, 4)]


@dataclass
class Program:
    input_shapes: list[tuple[int, ...]]
    steps: list[tuple[str, tuple[int, ...], Params]] = field(default_factory=list)
    #: nodes (besides the last) whose sums are added to the output
    also_summed: list[int] = field(default_factory=list)

    def run(self, inputs: list[Any], backend: str) -> Any:
        nodes = list(inputs)
        for name, args, params in self.steps:
            op = OPS[name]
            fn = op.minidl if backend == "minidl" else op.numpy
            nodes.append(fn(*[nodes[i] for i in args], **params))
        out = nodes[-1]
        for i in self.also_summed:
            out = out + nodes[i].sum()
        return out

    def describe(self) -> str:
        return "; ".join(f"n{len(self.input_shapes) + k} = {name}"
                         f"({', '.join(f'n{i}' for i in args)})"
                         for k, (name, args, _) in enumerate(self.steps))


def _acceptable(op: Op, args: list[np.ndarray], params: Params, out: np.ndarray) -> bool:
    if not np.isfinite(out).all() or np.abs(out).max(initial=0.0) > 50 or out.size > 200:
        return False
    if op.kinks is not None:
        distances = np.asarray(op.kinks(*args, **params))
        if ((distances > 0) & (distances < 1e-3)).any():
            return False
    return True


def random_program(seed: int) -> tuple[Program, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n_inputs = int(rng.integers(2, 4))
    shapes = [(3, 4)] + [INPUT_SHAPES[int(i)] for i in rng.integers(0, len(INPUT_SHAPES),
                                                                     n_inputs - 1)]
    inputs = [rng.uniform(-1.5, 1.5, shape) for shape in shapes]
    program = Program(shapes)
    values = list(inputs)
    n_steps = int(rng.integers(5, 16))
    names = sorted(OPS)
    attempts = 0
    while len(program.steps) < n_steps:
        attempts += 1
        assert attempts < 10_000, "the generator cannot find applicable ops"
        op_name = names[int(rng.integers(len(names)))]
        op = OPS[op_name]
        # Half the time build on the newest node (depth); otherwise reuse any node (width).
        args = tuple(len(values) - 1 if rng.random() < 0.5 else int(rng.integers(len(values)))
                     for _ in range(op.arity))
        arg_values = [values[i] for i in args]
        params = op.params(rng, arg_values)
        if params is None:
            continue
        out = np.asarray(op.numpy(*arg_values, **params))
        if not _acceptable(op, arg_values, params, out):
            continue
        program.steps.append((op_name, args, params))
        values.append(out)
    # Every result nobody consumed is summed into the output, so every step counts; a
    # few random nodes too, so they are consumed once more.
    consumed = {i for _, args, _ in program.steps for i in args}
    dangling = {i for i in range(n_inputs, len(values) - 1) if i not in consumed}
    extra = rng.choice(len(values) - 1, int(rng.integers(0, 3)), replace=False)
    program.also_summed = sorted(dangling | {int(i) for i in extra})
    return program, inputs


@pytest.mark.parametrize("seed", range(30))
def test_random_graph_gradients_match_finite_differences(seed: int) -> None:
    program, inputs = random_program(seed)
    try:
        check_op(lambda *ts: program.run(list(ts), "minidl"),
                 lambda *arrs: program.run(list(arrs), "numpy"), inputs, seed=seed,
                 rtol=1e-5, atol=1e-6)
    except AssertionError as err:
        raise AssertionError(f"{err}\nprogram (seed {seed}): {program.describe()}") from None


def test_the_generator_builds_varied_graphs_with_reuse() -> None:
    """A guard on the test itself: the 30 graphs exercise most ops and reuse nodes."""
    used: set[str] = set()
    reused = 0
    for seed in range(30):
        program, _ = random_program(seed)
        assert 5 <= len(program.steps) <= 15
        used.update(name for name, _, _ in program.steps)
        consumers: dict[int, int] = {}
        for _, args, _ in program.steps:
            for i in args:
                consumers[i] = consumers.get(i, 0) + 1
        reused += any(c > 1 for c in consumers.values()) or bool(program.also_summed)
    assert len(used) >= 0.8 * len(OPS), sorted(set(OPS) - used)
    assert reused >= 25
