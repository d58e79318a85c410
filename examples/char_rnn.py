"""A character-level LSTM language model on nine of Shakespeare's sonnets (bundled,
public domain: examples/sonnets.txt).

Each line of verse is one sequence, so a batch holds lines of different lengths,
padded with token 0; the loss is the token-level cross-entropy with ``mask=`` keeping
only the real next characters. Under the default ``deferred`` strategy N is the number
of real tokens in the batch, so padding never dilutes the mean. Prints the loss per
epoch, then lines sampled from the trained model.

    python examples/char_rnn.py --epochs 25
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# One BLAS thread, set before numpy loads: this model's matmuls are small (16 x 128 @
# 128 x 512), and on this 2-core machine handing each to two OpenBLAS threads made
# a training step 20x slower (measured: 0.35 s against 17 ms) whenever another process ran.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

import minidl as mdl  # noqa: E402
import minidl.nn.functional as F  # noqa: E402

TEXT = Path(__file__).resolve().parent / "sonnets.txt"
PAD, NEWLINE = 0, "\n"


class Vocabulary:
    """Characters to integer tokens; token 0 is padding."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text) | {NEWLINE})
        self.index = {ch: i + 1 for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[ch] for ch in text], dtype=np.int64)

    def decode(self, tokens: np.ndarray) -> str:
        return "".join(self.chars[t - 1] for t in tokens if t != PAD)


class CharLSTM(mdl.nn.Module):
    def __init__(self, vocab: int, embed: int = 24, hidden: int = 128, layers: int = 1,
                 seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = mdl.nn.Embedding(vocab, embed, padding_idx=PAD, generator=rng)
        self.lstm = mdl.nn.LSTM(embed, hidden, num_layers=layers, batch_first=True,
                                generator=rng)
        self.head = mdl.nn.Linear(hidden, vocab, generator=rng)

    def forward(self, tokens: mdl.Tensor, state: tuple | None = None
                ) -> tuple[mdl.Tensor, tuple]:
        output, state = self.lstm(self.embed(tokens), state)
        return self.head(output), state


def line_sequences(text: str, vocab: Vocabulary) -> list[np.ndarray]:
    """Every non-empty line as newline + line + newline: the model learns to start a
    line after a newline and to end it."""
    return [vocab.encode(NEWLINE + line + NEWLINE) for line in text.splitlines() if line]


def pad_batch(sequences: list[np.ndarray]) -> tuple[mdl.Tensor, mdl.Tensor, np.ndarray]:
    """Inputs, next-character targets and the mask of real targets, padded with 0."""
    width = max(len(s) for s in sequences) - 1
    inputs = np.full((len(sequences), width), PAD, dtype=np.int64)
    targets = np.full_like(inputs, PAD)
    for row, seq in enumerate(sequences):
        inputs[row, :len(seq) - 1], targets[row, :len(seq) - 1] = seq[:-1], seq[1:]
    return mdl.tensor(inputs), mdl.tensor(targets), targets != PAD


def token_loss(model: CharLSTM, sequences: list[np.ndarray]) -> mdl.Tensor:
    inputs, targets, mask = pad_batch(sequences)
    logits, _ = model(inputs)
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1),
                           mask=mask.reshape(-1))


def train(epochs: int = 25, batch_size: int = 16, hidden: int = 128, lr: float = 0.01,
          seed: int = 0, text: str | None = None, verbose: bool = True
          ) -> tuple[CharLSTM, Vocabulary, list[float]]:
    """Train on the lines of ``text`` (the sonnets by default); return the model, its
    vocabulary and the mean token loss of each epoch."""
    text = TEXT.read_text(encoding="utf-8") if text is None else text
    vocab = Vocabulary(text)
    sequences = line_sequences(text, vocab)
    model = CharLSTM(len(vocab), hidden=hidden, seed=seed)
    optimizer = mdl.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(sequences))
        total, tokens = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = [sequences[i] for i in order[start:start + batch_size]]
            optimizer.zero_grad()
            loss = token_loss(model, batch)
            loss.backward()
            optimizer.step()
            count = sum(len(s) - 1 for s in batch)
            total, tokens = total + loss.item() * count, tokens + count
        history.append(total / tokens)
        if verbose:
            print(f"epoch {epoch:3d}  loss per character {history[-1]:.3f}")
    return model, vocab, history


def sample(model: CharLSTM, vocab: Vocabulary, lines: int = 4, temperature: float = 0.7,
           max_chars: int = 80, seed: int = 0) -> list[str]:
    """Lines generated one character at a time, each starting after a newline."""
    rng = np.random.default_rng(seed)
    newline = vocab.index[NEWLINE]
    out = []
    with mdl.no_grad():
        for _ in range(lines):
            token, state, chars = newline, None, []
            for _ in range(max_chars):
                logits, state = model(mdl.tensor([[token]], dtype="int64"), state)
                z = logits.data[0, -1].astype(np.float64) / temperature
                z[PAD] = -np.inf
                p = np.exp(z - z.max())
                token = int(rng.choice(len(p), p=p / p.sum()))
                if token == newline:
                    break
                chars.append(token)
            out.append(vocab.decode(np.array(chars)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    model, vocab, history = train(args.epochs, hidden=args.hidden, seed=args.seed)
    print(f"loss per character {history[0]:.3f} -> {history[-1]:.3f} in "
          f"{time.perf_counter() - started:.1f} s\nsampled lines:")
    for line in sample(model, vocab, seed=args.seed):
        print("   ", line)


if __name__ == "__main__":
    main()
