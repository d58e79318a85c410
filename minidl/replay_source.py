"""A recorded step written out as one Python function: the replay as straight-line code.

``minidl.replay.Trace`` hands its record here once; this module writes the source of a
function that makes, in order, exactly the calls a replay must make, and compiles it.
Each table slot is a local variable (``s3``), each op a ``Function`` instance made once
and reused by every replay (its ``forward`` saves on it what its ``backward`` reads, and
``release`` empties it again; a class with its own ``__init__`` is made afresh by each
replay), each constant a global of the function. The backward
pass is unrolled: the gradient of node ``k`` is the local ``g{k}``, and the accumulation
of gradients from several consumers is written where it happens, so a replay walks no
graph, dispatches on no event kind and keeps no dict of gradients.

The calls are ``autograd.run_backward``'s, in its order: the seed from the pass plan,
``unbroadcast`` where shapes differ, the cast to the carried dtype, ``plan.write_leaves``
at the pass's end with arrays that own their memory. Arrays are dropped (``s3 = None``)
after their last use, as eager drops them; ``Trace.source`` shows the function.

Whether an op's output is a numpy scalar, whether its backward returns a tuple, which
inputs it returns None for, whether a gradient needs ``unbroadcast`` and whether a
leaf's gradient must be copied are, for minidl's own ops, matters of shapes and code,
which the trace's guards fix: the first function written notes, at each such check,
which way it went (``SHAPES``, keyed by where the check is), and the trace then writes
a second function without those checks. What follows from them is written out too: a
gradient variable known to be unset is assigned, not tested, and a node no gradient
reaches only releases its op. A user's ``Function`` keeps its checks.
"""

from __future__ import annotations

import keyword
from typing import Any

import numpy as np

from minidl.autograd import PLAIN_CALCULUS, unbroadcast
from minidl.replay_guard import write_guards

TABLE, PARAM, CONST, RECIPE = 0, 1, 2, 3  # as in minidl.replay (which imports this module)


class _Writer:
    """Collects the lines of the function and the objects its globals name.

    ``shapes``: what each shape check of minidl's ops found in an earlier replay (None
    while not known: the checks are written, and note what they find).
    """

    def __init__(self, shapes: dict[str, bool] | None, float16: bool) -> None:
        self.shapes = shapes
        self.float16 = float16  # the trace holds float16 arrays
        self.base = 0  # indentation every line gets (the replay runs inside a ``try``)
        self.seen: dict[str, bool] = {}  # filled by a replay of the noting function
        self.sites = 0  # checks of minidl's ops written so far
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "ndarray": np.ndarray, "asarray": np.asarray, "array": np.array,
            "empty": np.empty, "float64": np.float64, "unbroadcast": unbroadcast,
            "PLAIN": PLAIN_CALCULUS, "SHAPES": self.seen,
        }
        self._by_id: dict[tuple[str, int], str] = {}

    def name(self, obj: Any, prefix: str) -> str:
        """A global naming ``obj`` (one name per object and prefix)."""
        key = (prefix, id(obj))
        found = self._by_id.get(key)
        if found is None:
            found = self._by_id[key] = f"{prefix}{len(self._by_id)}"
            self.names[found] = obj
        return found

    def emit(self, indent: int, line: str) -> None:
        self.lines.append(self.indented(indent, line))

    def indented(self, indent: int, line: str) -> str:
        return "    " * (self.base + indent) + line

    def known(self, ours: bool, site: str) -> tuple[str | None, bool | None]:
        """The check at ``site`` (a key naming where it is): (the site if minidl's op has
        it, else None; which way an earlier replay found it to go, None if not known)."""
        if not ours:
            return None, None
        self.sites += 1
        return site, None if self.shapes is None else self.shapes.get(site)

    def went(self, ours: bool, site: str) -> bool | None:
        """Which way the check at ``site`` went in an earlier replay (None: not known)."""
        return None if not ours or self.shapes is None else self.shapes.get(site)

    def noting(self, site: str | None) -> bool:
        """Whether this function notes the check at ``site``."""
        return site is not None and self.shapes is None

    def check(self, indent: int, ours: bool, site: str, condition: str,
              body: list[str]) -> None:
        """``if condition:`` and ``body``; for minidl's ops, once a replay noted which
        way it goes, the body alone or nothing (until then, the check notes it)."""
        site_or_none, went = self.known(ours, site)
        if went is not None:
            for line in body if went else ():
                self.emit(indent, line)
            return
        self.emit(indent, f"if {condition}:")
        for line in body:
            self.emit(indent + 1, line)
        if self.noting(site_or_none):
            self.emit(indent + 1, f"SHAPES[{site!r}] = True")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"SHAPES[{site!r}] = False")

    def value(self, ref: tuple[int, Any]) -> str:
        """An expression for the array (or option) ``ref`` names."""
        kind, value = ref
        if kind == TABLE:
            return f"s{value}"
        if kind == PARAM:
            return f"{self.name(value, 'P')}._data"  # read when used: SGD updates it in place
        if kind == CONST:
            return self.name(value, "K")
        recipe, refs = value
        return f"{self.name(recipe, 'Q')}({', '.join(self.value(r) for r in refs)})"


def write_replay(trace: Any, shapes: dict[str, bool] | None = None
                 ) -> tuple[str, Any, list[Any], dict[str, bool] | None]:
    """The source of ``trace``'s replay, the compiled function, its ``Function``s, and
    the dict its shape checks fill as it runs (None when it has none left to note).

    The function takes the step's positional and keyword arguments (``args``, ``kwargs``),
    checks the trace's guards (``minidl.replay_guard``; ``MISS`` if one fails), replays,
    and returns what the step returned. ``shapes``: what an earlier function's checks
    noted (see the module doc); a function that notes asks the trace to write the next
    one (``Trace.rewrite``) before it returns.
    """
    writer = _Writer(shapes, trace.float16)
    fns: list[Any] = []
    for op, (cls, needs) in enumerate(zip(trace.op_classes, trace.op_needs)):
        if cls.__init__ is object.__init__:
            fn = cls()
            fn.needs_input_grad = needs
            fns.append(_Reused(writer, fn))
        else:  # its __init__ may set state forward relies on: a fresh one per replay
            fns.append(_Fresh(writer, op, cls, needs))
    in_backward = {node[0] for event in trace.events if event[0] == "backward"
                   for node in event[3] if node[0] is not None}
    released_when_freed = {trace.n_args + op for op in range(trace.n_ops)
                           if op not in in_backward}
    writer.emit(0, "def replay(args, kwargs):")
    write_guards(writer, trace)  # it ends holding the trace's lock
    writer.emit(1, "try:")
    writer.base = 1
    op = 0
    for number, event in enumerate(trace.events):
        kind = event[0]
        if kind == "op":
            _write_op(writer, fns[op], event, trace.n_args + op)
            op += 1
        elif kind == "backward":
            _write_backward(writer, fns, event, trace.n_args, number)
        else:
            writer.emit(1, f"{writer.name(event[1], 'C')}()")
        for slot in trace.frees[number]:
            writer.emit(1, f"s{slot} = None")
            if slot in released_when_freed:  # no backward empties this op: do it now
                writer.emit(1, f"{fns[slot - trace.n_args].release}()")
                released_when_freed.discard(slot)
    for slot in sorted(released_when_freed):
        writer.emit(1, f"{fns[slot - trace.n_args].release}()")
    noting = writer.seen if shapes is None and writer.sites else None
    if noting is not None:  # its checks have run: the trace writes them out
        writer.emit(1, f"{writer.name(trace.rewrite, 'C')}()")
    writer.emit(1, f"return {_result(writer, trace.result)}")
    writer.base = 0
    writer.emit(1, "except BaseException:")  # drop what the failed replay saved on them
    writer.emit(2, f"{writer.name(trace.release_all, 'C')}()")
    writer.emit(2, "raise")
    writer.emit(1, "finally:")
    writer.emit(2, f"{writer.name(trace._running.release, 'C')}()")
    source = "\n".join(writer.lines) + "\n"
    namespace = dict(writer.names)
    exec(compile(source, "<minidl.compile replay>", "exec"), namespace)  # noqa: S102
    return (source, namespace["replay"], [fn.instance for fn in fns if fn.instance is not None],
            noting)


def _result(writer: _Writer, structure: tuple[Any, Any]) -> str:
    """An expression that builds what the step returned (``Trace.result`` describes it)."""
    kind, body = structure
    if kind == CONST:
        return writer.name(body, "K")
    if kind == "tensor":
        if body[0] == PARAM:
            return writer.name(body[1], "P")
        return f"TENSOR._from_op({writer.value(body)}, None)"
    if kind is dict:
        items = ", ".join(f"{writer.name(key, 'K')}: {_result(writer, value)}"
                          for key, value in body.items())
        return f"{{{items}}}"
    items = "".join(f"{_result(writer, value)}, " for value in body)
    return f"({items})" if kind is tuple else f"{writer.name(kind, 'K')}(({items}))"


class _Reused:
    """An op's ``Function`` made once, its bound methods globals of the replay."""

    def __init__(self, writer: _Writer, fn: Any) -> None:
        self.instance, self.name = fn, type(fn).__name__
        self.ours = type(fn).__module__.startswith("minidl.")
        self.setup: list[str] = []
        self.it = writer.name(fn, "N")
        self.forward = writer.name(fn.forward, "F")
        self.backward = writer.name(fn.backward, "B")
        self.release = writer.name(fn.release, "R")


class _Fresh:
    """An op whose class has its own ``__init__``: made afresh by each replay, a local."""

    def __init__(self, writer: _Writer, op: int, cls: Any, needs: tuple[bool, ...]) -> None:
        self.instance, self.name, self.it = None, cls.__name__, f"f{op}"
        self.ours = cls.__module__.startswith("minidl.")
        self.setup = [f"f{op} = {writer.name(cls, 'K')}()",
                      f"f{op}.needs_input_grad = {writer.name(needs, 'K')}"]
        self.forward, self.backward, self.release = (f"f{op}.forward", f"f{op}.backward",
                                                     f"f{op}.release")


def _write_op(writer: _Writer, fn: Any, event: tuple[Any, ...], slot: int) -> None:
    _, cls, refs, opts, _ = event
    arguments = [writer.value(ref) for ref in refs]
    for option, ref in opts:
        if not option.isidentifier() or keyword.iskeyword(option):
            from minidl.replay import Refused

            raise Refused(f"an option named {option!r}")
        arguments.append(f"{option}={writer.value(ref)}")
    writer.emit(1, f"# {cls.__name__}")
    for line in fn.setup:
        writer.emit(1, line)
    writer.emit(1, f"s{slot} = {fn.forward}({', '.join(arguments)})")
    # numpy returns scalars for full reductions
    writer.check(1, fn.ours, f"scalar s{slot}", f"type(s{slot}) is not ndarray",
                 [f"s{slot} = asarray(s{slot})"])


UNSET, SET, MAYBE = "unset", "set", "maybe"  # what the writer knows of a variable g{k}


def _write_backward(writer: _Writer, fns: list[Any], event: tuple[Any, ...],
                    n_args: int, number: int) -> None:
    """``autograd.run_backward``'s calls for one recorded pass (see the module doc)."""
    _, _, grad_ref, nodes, planner_ops, leaves, root_slot = event
    emit = writer.emit
    emit(1, "# backward")
    if planner_ops:
        planners = ", ".join(fns[i].it for i in planner_ops)
        first = fns[planner_ops[0]].it
        emit(1, f"plan = {first}.plan_pass([{planners}], {writer.name(leaves, 'L')})")
    else:
        emit(1, "plan = PLAIN")
    emit(1, f"root = s{root_slot}")
    emit(1, "scale = plan.seed_scale")
    if grad_ref is None:
        emit(1, "g0 = empty(root.shape, dtype=float64)")
        emit(1, "g0.fill(scale)")
    else:
        emit(1, f"g0 = array({writer.value(grad_ref)}, dtype=float64)")
        emit(1, "if scale != 1.0:")
        emit(2, "g0 = g0 * scale")
    emit(1, "if root.ndim > 0:")
    emit(2, "g0 = g0.astype(plan.carry_dtype(root.dtype))")
    emit(1, "root = None")
    if len(nodes) > 1:
        emit(1, " = ".join(f"g{k}" for k in range(1, len(nodes))) + " = None")
    states, before = _gradient_states(writer, fns, nodes)
    # A leaf's copy check is noted only when minidl's ops made every gradient of the pass
    # (so which arrays alias is a matter of code), and for every leaf at once (``handed``
    # must know each array handed out, or none).
    all_ours = all(fns[op].ours for op, *_ in nodes if op is not None)
    leaf_sites = [f"leaf {number}.{k}" for k, (op, *_) in enumerate(nodes)
                  if op is None and states[k] != UNSET]
    leaves_noted = all(writer.went(all_ours, site) is not None for site in leaf_sites)
    # As the engine, the pass writes its leaves together at its end (``write_leaves``): from
    # tuples written out when every leaf's gradient is known to come and how, else from
    # lists the walk fills.
    listed = not leaves_noted or any(states[k] == MAYBE for k, (op, *_) in enumerate(nodes)
                                     if op is None)
    if leaf_sites and listed:
        emit(1, "leaves, leaf_grads = [], []")
        if not leaves_noted:
            emit(1, "handed = set()")
    written: list[tuple[str, str, int]] = []  # (leaf, gradient, k) of the written-out tuples
    for k, (op, leaf, parents, drop_output) in enumerate(nodes):
        if op is None and not listed and states[k] == SET:
            copy = writer.went(True, f"leaf {number}.{k}")
            written.append((writer.name(leaf, "P"), f"array(g{k})" if copy else f"g{k}", k))
        elif op is None:
            _append_leaf(writer, f"leaf {number}.{k}", k, leaf, states[k], leaves_noted)
        else:
            _write_node(writer, fns[op], op, k, parents, states[k], before,
                        drop_output and f"s{n_args + op}")
    if written:
        emit(1, f"plan.write_leaves(({''.join(f'{leaf}, ' for leaf, _, _ in written)}), "
                f"({''.join(f'{grad}, ' for _, grad, _ in written)}))")
        emit(1, " = ".join(f"g{k}" for _, _, k in written) + " = None")
    elif leaf_sites:
        emit(1, "plan.write_leaves(leaves, leaf_grads)")
        emit(1, "leaves = leaf_grads = None")


def _gradient_states(writer: _Writer, fns: list[Any], nodes: list[Any]
                     ) -> tuple[list[str], dict[tuple[int, int], str]]:
    """For each node of the pass, whether its gradient variable is set when the walk
    reaches it; and for each gradient a backward hands an input, keyed (op, input),
    whether the variable it goes into is set just before. Both follow from the noted
    None-returns of the backwards walked before."""
    states = [UNSET] * len(nodes)
    states[0] = SET
    before: dict[tuple[int, int], str] = {}
    for k, (op, _, parents, _) in enumerate(nodes):
        if op is None or states[k] == UNSET:
            continue
        ours = fns[op].ours
        for index, parent in enumerate(parents):
            if parent is None:
                continue
            returned = writer.went(ours, f"none {op}.{index}")  # True: noted non-None
            if returned is False:
                continue
            key = parent[0]
            before[op, index] = states[key]
            certain = states[k] == SET and returned is True
            states[key] = SET if certain or states[key] == SET else MAYBE
    return states, before


def _write_node(writer: _Writer, fn: Any, op: int, k: int, parents: tuple[Any, ...],
                have: str, before: dict[tuple[int, int], str], drop: str | None) -> None:
    emit = writer.emit
    emit(1, f"# {fn.name}")
    if drop:
        emit(1, f"{drop} = None")
    if have == UNSET:  # every consumer returned None for it (a zero gradient)
        emit(1, f"{fn.release}()")
        return
    indent = 1
    if have == MAYBE:
        emit(1, f"if g{k} is None:")
        emit(2, f"{fn.release}()")
        emit(1, "else:")
        indent = 2
    emit(indent, f"r = {fn.backward}(g{k})")
    emit(indent, f"g{k} = None")
    # A backward noted to return one array, not a tuple: that array is its input's gradient.
    single = writer.went(fn.ours, f"tuple {op}") is True
    if not single:
        writer.check(indent, fn.ours, f"tuple {op}", "type(r) is not tuple", ["r = (r,)"])
    for index, parent in enumerate(parents):
        if parent is not None:
            _write_parent(writer, indent, op, index, parent, fn, before.get((op, index)),
                          returned_value="r" if single else f"r[{index}]")
    emit(indent, f"{fn.release}()")


def _write_parent(writer: _Writer, indent: int, op: int, index: int, parent: tuple[Any, ...],
                  fn: Any, have: str | None, returned_value: str) -> None:
    """Add input ``index``'s gradient into its variable, which is ``have`` (``UNSET``,
    ``SET`` or ``MAYBE``) just before; None: noted never to come (nothing to write)."""
    key, ref, is_op_output = parent
    emit = writer.emit
    site, returned = writer.known(fn.ours, f"none {op}.{index}")
    if have is None:  # noted: this backward returns None for this input
        return
    emit(indent, f"pg = {returned_value}")
    first_line = len(writer.lines)
    inner = indent
    if returned is None:
        emit(indent, "if pg is not None:")
        inner = indent + 1
        if writer.noting(site):
            emit(inner, f"SHAPES[{site!r}] = True")
    # ``d`` is read by the shape check and the cast (unless a replay found they never fire).
    lines_before = len(writer.lines)
    writer.check(inner, fn.ours, f"broadcast {op}.{index}", "pg.shape != d.shape",
                 [f"pg = unbroadcast(pg, d.shape, {fn.name!r})"])
    if is_op_output:  # leaves are written from the gradient as computed
        # Which dtype a gradient arrives in depends on the pass's count only through
        # float16's wider carry (``carry_dtype``): without float16 the check is noted.
        writer.check(inner, fn.ours and not writer.float16, f"cast {op}.{index}",
                     "pg.dtype != d.dtype and pg.ndim > 0",
                     ["target = plan.carry_dtype(d.dtype)", "if pg.dtype != target:",
                      "    pg = pg.astype(target)"])
    if len(writer.lines) > lines_before:
        writer.lines.insert(lines_before, writer.indented(inner, f"d = {writer.value(ref)}"))
    if have == UNSET and len(writer.lines) == first_line:  # nothing between: no ``pg``
        writer.lines[-1] = writer.indented(indent, f"g{key} = {returned_value}")
    elif have == UNSET:
        emit(inner, f"g{key} = pg")
    elif have == SET:  # out of place: a backward may hand the same array to two inputs
        emit(inner, f"g{key} = g{key} + pg")
    else:
        emit(inner, f"g{key} = pg if g{key} is None else g{key} + pg")
    if returned is None and writer.noting(site):
        emit(indent, "else:")
        emit(indent + 1, f"SHAPES[{site!r}] = False")


def _append_leaf(writer: _Writer, site: str, k: int, leaf: Any, have: str,
                noted: bool) -> None:
    """Add the leaf and its gradient to the pass's lists: each ``.grad`` an array that owns
    its memory, handed to one leaf only."""
    if have == UNSET:
        return
    emit = writer.emit
    indent = 1
    if have == MAYBE:
        emit(1, f"if g{k} is not None:")
        indent = 2
    emit(indent, f"leaves.append({writer.name(leaf, 'P')})")
    if noted:
        copy = writer.went(True, site)
        emit(indent, f"leaf_grads.append({f'array(g{k})' if copy else f'g{k}'})")
        emit(indent, f"g{k} = None")
        return
    emit(indent, f"g = g{k}")
    emit(indent, f"g{k} = None")
    emit(indent, "if id(g) in handed or g.base is not None or type(g) is not ndarray:")
    emit(indent + 1, "g = array(g)")
    if writer.noting(writer.known(True, site)[0]):
        emit(indent + 1, f"SHAPES[{site!r}] = True")
        emit(indent, "else:")
        emit(indent + 1, f"SHAPES[{site!r}] = False")
    emit(indent, "handed.add(id(g))")
    emit(indent, "leaf_grads.append(g)")
