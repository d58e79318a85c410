"""The layer examples (char_rnn.py, batchnorm_mlp.py) train: shortened cores, seconds each.
Their full runs are in the README; these check that the loss falls."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from unittest import mock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    # The examples pin BLAS threads in os.environ for their own process; keep that out
    # of this one (later tests start subprocesses).
    with mock.patch.dict(os.environ):
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_char_rnn_loss_falls_and_it_samples_text() -> None:
    char_rnn = load("char_rnn")
    text = "\n".join((EXAMPLES / "sonnets.txt").read_text(encoding="utf-8").splitlines()[:14])
    model, vocab, history = char_rnn.train(epochs=6, batch_size=7, hidden=24, lr=0.02,
                                           text=text, verbose=False)
    assert history[-1] < 0.8 * history[0], history
    lines = char_rnn.sample(model, vocab, lines=2, max_chars=20)
    assert len(lines) == 2 and all(set(line) <= set(text) for line in lines)
    # the padded batch's mask keeps exactly the real next characters
    seqs = [vocab.encode("\nab\n"), vocab.encode("\nabcde\n")]
    inputs, targets, mask = char_rnn.pad_batch(seqs)
    assert inputs.shape == (2, 6) and mask.sum() == 3 + 6
    assert (targets.data[~mask] == char_rnn.PAD).all()


def test_batch_norm_mlp_trains_faster_with_batch_norm() -> None:
    example = load("batchnorm_mlp")
    plain, _ = example.train(False, epochs=3, limit=600, verbose=False)
    normed, accuracy = example.train(True, epochs=3, limit=600, verbose=False)
    assert normed[-1] < normed[0] and normed[-1] < plain[-1], (plain, normed)
    assert accuracy > 0.5
