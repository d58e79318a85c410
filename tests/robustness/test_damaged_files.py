"""Every file minidl reads is checked before use: one message naming it, exit 2.

Damaged checkpoints (empty, truncated, bit flips, wrong metadata, garbage RNG state,
another config's arrays), damaged NPZ data (empty, no .npy, a lying header, a zip
bomb, bit flips), CSV with enormous fields, absurd labels or NaN, unreadable files.
"""

from __future__ import annotations

import io as stdio
import json
import zipfile

import numpy as np
import pytest
from helpers.cli import assert_one_message, cli  # noqa: F401 (a fixture)

from minidl import storage as io
from minidl.errors import CheckpointError
from minidl.npz import ArchiveError, read_npz


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 4-epoch run (adam, dropout: every kind of state) to damage copies of."""
    from minidl.cli import main

    directory = tmp_path_factory.mktemp("run")
    code = main(["train", "--quiet", "--set", "train.epochs=4", "--set", "optimizer.name=adam",
                 "--set", "model.dropout=0.1", "--set", "data.val_fraction=0.2",
                 "--set", f"output.dir={directory}"])
    assert code == 0
    return directory


def _damaged(tmp_path, data: bytes):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(data)
    return path


def test_an_intact_checkpoint_resumes(cli, run_dir, tmp_path):
    path = _damaged(tmp_path, (run_dir / "checkpoint.npz").read_bytes())
    code, _, err = cli("train", "--quiet", "--resume", path)
    assert code == 0, err


def test_empty_and_truncated_checkpoints_are_one_message(cli, run_dir, tmp_path):
    data = (run_dir / "checkpoint.npz").read_bytes()
    for length in [0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 30,
                   len(data) - 1]:
        code, _, err = cli("train", "--quiet", "--resume", _damaged(tmp_path, data[:length]))
        assert_one_message(code, err, 2, "checkpoint.npz")


def test_bit_flips_anywhere_are_caught_or_harmless(cli, run_dir, tmp_path):
    data = (run_dir / "checkpoint.npz").read_bytes()
    outcomes = set()
    for position in range(0, len(data), max(1, len(data) // 60)):
        flipped = bytearray(data)
        flipped[position] ^= 0x04
        path = _damaged(tmp_path, bytes(flipped))
        try:
            io.load_arrays(path)
            outcomes.add("harmless")  # a zip header field no reader uses
        except CheckpointError as err:
            outcomes.add("refused")
            assert str(path) in str(err)
    assert "refused" in outcomes


def test_a_flip_in_an_array_names_the_member_and_crc(run_dir, tmp_path):
    arrays, _ = io.load_arrays(run_dir / "checkpoint.npz")
    buffer = stdio.BytesIO()
    np.savez(buffer, **{"optimizer/0/m": arrays["optimizer/0/m"]})  # stored, not deflated
    data = bytearray(buffer.getvalue())
    data[data.index(b"NUMPY") + 140] ^= 0x01  # past the 128-byte header: the array's bytes
    with pytest.raises(ArchiveError, match=r"truncated or corrupt \(bad zip CRC in "
                                           r"'optimizer/0/m'\)"):
        read_npz(_damaged(tmp_path, bytes(data)))


def _rewrite(run_dir, tmp_path, change):
    """A copy of the run's checkpoint with ``change(arrays, meta)`` applied, re-checksummed
    (so the semantic checks, not the checksum, must catch it)."""
    arrays, meta = io.load_arrays(run_dir / "checkpoint.npz")
    meta.pop("checksum")
    change(arrays, meta)
    path = tmp_path / "checkpoint.npz"
    io.save_arrays(path, arrays, meta)
    return path


@pytest.mark.parametrize("change,fragment", [
    (lambda a, m: m.pop("rng"), "metadata is malformed (rng: Field required)"),
    (lambda a, m: m.update(epoch="4"), "metadata is malformed (epoch"),
    (lambda a, m: m.update(optimizer=[1, 2]), "metadata is malformed (optimizer"),
    (lambda a, m: m.update(format=1), "not a minidl training checkpoint of format 2"),
    (lambda a, m: m.update(rng=[{"garbage": 1}] * len(m["rng"])), "random generator state 0"),
    (lambda a, m: m.update(rng=m["rng"][:1]), "random generator states for"),
    (lambda a, m: m["rng"][0]["state"].update(state="x"), "random generator state 0"),
    (lambda a, m: a.update({"model/0.weight": np.zeros((8, 2))}),
     "checkpoint from a different model: model/0.weight has shape (8, 2)"),
    (lambda a, m: a.pop(sorted(k for k in a if k.startswith("model/"))[-1]),
     "checkpoint from a different model: it holds model arrays"),
    (lambda a, m: a.update({"optimizer/0/m": np.zeros(3)}), "optimizer/0/m has shape (3,)"),
    (lambda a, m: a.pop("optimizer/1/v"), "adam state is incomplete"),
    (lambda a, m: a.update({"optimizer/9/m": np.zeros(3)}), "unexpected optimizer array"),
    (lambda a, m: a.update({"history/train_loss": np.zeros(2)}), "history/train_loss has"),
    (lambda a, m: a.update({"model/0.bias": np.full(4, np.nan)}), "holds NaN or inf"),
    (lambda a, m: m["config"]["optimizer"].update(lr=True), "does not validate now"),
])
def test_wrong_metadata_or_arrays_are_one_message(cli, run_dir, tmp_path, change, fragment):
    path = _rewrite(run_dir, tmp_path, change)
    code, _, err = cli("train", "--quiet", "--resume", path)
    assert_one_message(code, err, 2, str(path), fragment)


def test_an_edited_checkpoint_fails_its_checksum(cli, run_dir, tmp_path):
    arrays, meta = io.load_arrays(run_dir / "checkpoint.npz")
    arrays["model/0.weight"] = arrays["model/0.weight"] * 2
    buffer = stdio.BytesIO()
    np.savez(buffer, **arrays, __meta__=np.array(json.dumps(meta)))
    path = _damaged(tmp_path, buffer.getvalue())
    code, _, err = cli("train", "--quiet", "--resume", path)
    assert_one_message(code, err, 2, "does not match its checksum")


def test_a_model_file_is_not_a_checkpoint(cli, run_dir):
    code, _, err = cli("train", "--quiet", "--resume", run_dir / "model.npz")
    assert_one_message(code, err, 2, "not a minidl training checkpoint", "model.npz")


# ---- NPZ data files ------------------------------------------------------------------
def _npz_bytes(**arrays) -> bytes:
    buffer = stdio.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _with_member(name: str, header: dict, shape: tuple[int, ...]) -> bytes:
    member = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(member, {**header, "shape": shape})
    member.write(np.zeros((3, 2)).tobytes())
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, member.getvalue())
        archive.writestr("y.npy", _npy(np.zeros(3)))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = stdio.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("make,fragment", [
    (lambda: b"", "the file is empty"),
    (lambda: b"PK\x05\x06" + bytes(18), "the archive holds no arrays"),
    (lambda: _zip_with("notes.txt", b"hello"), "member 'notes.txt' is not a .npy array"),
    (lambda: _with_member("X.npy", np.lib.format.header_data_from_array_1_0(
        np.zeros((3, 2))), (10**12, 2)), "claims shape (1000000000000, 2)"),
    (lambda: _npz_bytes(X=np.zeros((3, 2)), y=np.zeros(3))[:-40], "truncated or corrupt"),
    (lambda: _npz_bytes(X=np.array([[1.0, np.nan]]), y=np.zeros(1)), "'X' row 0"),
    (lambda: _npz_bytes(X=np.zeros((2, 1)), y=np.array([0, 1e12])),
     "label 1e+12 would make"),
])
def test_damaged_npz_data_is_one_message(cli, tmp_path, make, fragment):
    path = tmp_path / "data.npz"
    path.write_bytes(make())
    code, _, err = cli("train", "--quiet", "--set", f"data.dataset={path}",
                       "--set", "output.dir=", "--set", "train.epochs=1")
    assert_one_message(code, err, 2, str(path), fragment)


def _zip_with(name: str, data: bytes) -> bytes:
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_from_its_declared_size(tmp_path):
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("X.npy", bytes(64 << 20))  # 64 MiB of zeros deflate to ~64 kB
    path = tmp_path / "bomb.npz"
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 200_000
    with pytest.raises(ArchiveError, match="would unpack to 67,108,864 bytes, over the limit"):
        read_npz(path, max_bytes=16 << 20)


def test_bit_flips_in_npz_data_are_caught_or_harmless(tmp_path):
    data = _npz_bytes(X=np.arange(12.0).reshape(6, 2), y=np.arange(6) % 2)
    path = tmp_path / "d.npz"
    for position in range(0, len(data), 5):
        flipped = bytearray(data)
        flipped[position] ^= 0x20
        path.write_bytes(bytes(flipped))
        try:
            read_npz(path)
        except ArchiveError as err:
            assert str(path) in str(err)


# ---- CSV data files ------------------------------------------------------------------
@pytest.mark.parametrize("text,fragment", [
    ("a,label\n" + "1" * 200_000 + ",0\n", "line 2: field larger than field limit"),
    ("a,label\n1,0\n2,1000000000000\n", "label 1e+12 would make"),
    ("a,label\n1,0\n2,-1e30\n", "label -1e+30 is negative"),
    ("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(9)) + "nan,1\n",
     "row 11, column 1 ('a'): nan is not a finite number"),
    ("a,label\n1,0\n1e999,1\n", "row 3, column 1 ('a'): inf is not a finite number"),
])
def test_csv_with_enormous_fields_absurd_labels_or_nan_is_one_message(cli, tmp_path, text,
                                                                      fragment):
    path = tmp_path / "d.csv"
    path.write_text(text)
    code, _, err = cli("train", "--quiet", "--set", f"data.dataset={path}",
                       "--set", "output.dir=", "--set", "train.epochs=1",
                       "--set", "data.val_fraction=0.3")
    assert_one_message(code, err, 2, str(path), fragment)


def test_nan_only_in_validation_rows_is_refused_unless_allowed(cli, tmp_path):
    rows = "".join(f"{i / 10},{i % 2}\n" for i in range(20))
    path = tmp_path / "d.csv"
    path.write_text("a,label\n" + rows + "nan,1\n")
    argv = ["train", "--quiet", "--json", "--set", f"data.dataset={path}", "--set",
            "output.dir=", "--set", "train.epochs=2", "--set", "data.val_fraction=0.5"]
    code, _, err = cli(*argv)
    assert_one_message(code, err, 2, "row 22", "data.allow_nonfinite")
    code, out, err = cli(*argv, "--set", "data.allow_nonfinite=true")
    assert code in (0, 1) and "Traceback" not in err  # allowed: trains, or diverges clearly


def test_unreadable_dataset_files_are_one_message(cli, tmp_path):
    (tmp_path / "dir.csv").mkdir()
    code, _, err = cli("train", "--set", f"data.dataset={tmp_path / 'dir.csv'}")
    assert_one_message(code, err, 2, "is a directory")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("caf\xe9,label\n1,0\n".encode("latin-1"))
    code, _, err = cli("train", "--set", f"data.dataset={latin}", "--set", "output.dir=")
    assert_one_message(code, err, 2, str(latin), "not UTF-8 text")

