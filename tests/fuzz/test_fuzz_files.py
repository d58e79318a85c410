"""Fuzz: generated CSV and NPZ data files and damaged checkpoints through `minidl train`.

Each case trains for one epoch (or resumes a two-epoch run), so a hundred cases take
a few seconds. Every case that ever failed is an ``@example``.
"""

from __future__ import annotations

import io as stdio

import numpy as np
import pytest
from helpers.fuzzing import FUZZ, check_outcome, values
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

cells = st.one_of(
    st.integers(-3, 3).map(str), st.floats(-1e3, 1e3).map(repr), st.floats().map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "1e12", "", " ", "x", '"1"', "1,2",
                     "1" * 300, "0x1"]),
    st.text(max_size=5))


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=1, max_size=4), max_size=12),
       header=st.booleans(), target=st.sampled_from(["-1", "0", "label", "5"]),
       val_fraction=st.sampled_from(["0", "0.3"]))
@example(rows=[["1", "0"], ["2", "1000000000000"]], header=True, target="-1",
         val_fraction="0")
@example(rows=[["1" * 200_000, "0"]], header=True, target="-1", val_fraction="0")
@example(rows=[["1", "0"], ["2", "1"], ["nan", "1"]], header=False, target="-1",
         val_fraction="0.3")
@example(rows=[["1", "-1e30"], ["2", "1"]], header=False, target="-1", val_fraction="0")
def test_csv_data(capsys, tmp_path_factory, rows, header, target, val_fraction):
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    lines = ([",".join(f"c{i}" for i in range(len(rows[0]) - 1)) + ",label"]
             if header and rows else [])
    path.write_text("\n".join(lines + [",".join(row) for row in rows]) + "\n")
    check_outcome(["train", "--quiet", "--set", f"data.dataset={path}", "--set", "output.dir=",
                   "--set", "train.epochs=1", "--set", f"data.target={target}",
                   "--set", f"data.val_fraction={val_fraction}"], capsys)


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_,
                           np.complex64, np.dtype("<U2")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))


def _npz(entries: dict[str, np.ndarray]) -> bytes:
    buffer = stdio.BytesIO()
    np.savez(buffer, **entries)
    return buffer.getvalue()


@FUZZ
@given(X=arrays, y=arrays, names=st.sampled_from([("X", "y"), ("X", "labels"), ("a", "b")]))
@example(X=np.array([[1.0, np.nan]]), y=np.array([0]), names=("X", "y"))
@example(X=np.zeros((3, 0)), y=np.zeros(3), names=("X", "y"))
@example(X=np.zeros((2, 1)), y=np.array([0, 10**12]), names=("X", "y"))
def test_npz_data(capsys, tmp_path_factory, X, y, names):
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    path.write_bytes(_npz({names[0]: X, names[1]: y}))
    check_outcome(["train", "--quiet", "--set", f"data.dataset={path}", "--set", "output.dir=",
                   "--set", "train.epochs=1"], capsys)


VALID_NPZ = _npz({"X": np.arange(20.0).reshape(10, 2), "y": np.arange(10) % 2})


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID_NPZ) - 1), st.integers(1, 255)),
                      min_size=1, max_size=4),
       cut=st.integers(0, len(VALID_NPZ)))
@example(edits=[(612, 64)], cut=40)  # NotImplementedError: zip file version 10.9
def test_damaged_npz_data(capsys, tmp_path_factory, edits, cut):
    data = bytearray(VALID_NPZ)
    for position, mask in edits:
        data[position] ^= mask
    path = tmp_path_factory.mktemp("npzd") / "d.npz"
    path.write_bytes(bytes(data[:cut] if cut < 40 else data))
    check_outcome(["train", "--quiet", "--set", f"data.dataset={path}", "--set", "output.dir=",
                   "--set", "train.epochs=1"], capsys)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    """A two-epoch adam run's checkpoint (momentum, step counts, history, RNG states)."""
    from minidl.cli import main

    directory = tmp_path_factory.mktemp("source")
    assert main(["train", "--quiet", "--set", "train.epochs=2", "--set", "optimizer.name=adam",
                 "--set", "data.val_fraction=0.2", "--set", "output.checkpoint_every=1",
                 "--set", f"output.dir={directory}"]) == 0
    return (directory / "checkpoint.npz").read_bytes()


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                      max_size=3),
       keep=st.floats(0, 1), insert=st.binary(max_size=4))
@example(edits=[], keep=0.0, insert=b"")
@example(edits=[], keep=0.5, insert=b"")
@example(edits=[(0.9, 1)], keep=1.0, insert=b"")
@example(edits=[(0.5, 4)], keep=1.0, insert=b"")
def test_damaged_checkpoints(capsys, tmp_path_factory, checkpoint_bytes, edits, keep, insert):
    data = bytearray(checkpoint_bytes)
    for where, mask in edits:
        data[int(where * len(data))] ^= mask
    cut = int(keep * len(data))
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.npz"
    path.write_bytes(bytes(data[:cut]) + insert + bytes(data[cut:]) if insert
                     else bytes(data[:cut] if keep < 1 else data))
    code = check_outcome(["train", "--quiet", "--resume", path], capsys)
    if not edits and keep == 1.0 and not insert:
        assert code == 0


META_PATHS = [("epoch",), ("step",), ("format",), ("optimizer",), ("optimizer", "lr"),
              ("optimizer", "steps"), ("rng",), ("rng", 0), ("rng", 0, "state"),
              ("rng", 0, "bit_generator"), ("rng", 1, "state", "state"), ("config",),
              ("config", "model", "hidden"), ("config", "train", "dtype"),
              ("config", "optimizer", "name"), ("config", "data", "options")]


@FUZZ
@given(where=st.sampled_from(META_PATHS), value=values,
       array=st.none() | st.tuples(st.sampled_from(["model/0.weight", "optimizer/0/m",
                                                     "optimizer/1/t", "history/epoch",
                                                     "model/9.bias"]), arrays))
@example(where=("rng", 0, "state"), value="garbage", array=None)
@example(where=("optimizer",), value=[1, 2], array=None)
@example(where=("epoch",), value=10**30, array=None)
@example(where=("step",), value=1, array=("history/epoch", np.array([1.0, np.nan])))
def test_rewritten_checkpoint_contents(capsys, tmp_path_factory, checkpoint_bytes, where,
                                       value, array):
    """Checkpoints whose metadata or arrays were changed and re-checksummed: the checks
    of what the data means, not the checksum, must catch them."""
    from minidl import storage as io

    directory = tmp_path_factory.mktemp("rewrite")
    source = directory / "source.npz"
    source.write_bytes(checkpoint_bytes)
    arrays_, meta = io.load_arrays(source)
    meta.pop("checksum")
    node = meta
    try:
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # the path is not there in this checkpoint: leave it as it is
    if array is not None:
        arrays_[array[0]] = array[1]
    path = directory / "checkpoint.npz"
    io.save_arrays(path, arrays_, meta)
    check_outcome(["train", "--quiet", "--resume", path], capsys)
