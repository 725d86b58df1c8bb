"""A token vocabulary with the special symbols every sequence model here uses.

Ids 0-3 are always ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` (the defaults of
:mod:`rnnlab.models.decoder`); the other tokens follow in order of decreasing frequency (ties by
first appearance), so a vocabulary built from the same data is always the same.

Example::

    vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]], min_freq=1)
    vocab.encode(["a", "cow"])  # [4, 3]  (unknown -> <unk>)
    vocab.decode([4, 5])        # ["a", "dog"]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from rnnlab.errors import CheckpointError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


class Vocabulary:
    """Bidirectional map between tokens and ids; see the module docstring."""

    def __init__(self, tokens: Sequence[str]):
        self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None
    ) -> Vocabulary:
        """The tokens of ``sequences`` seen at least ``min_freq`` times (most frequent first)."""
        counts = Counter(token for seq in sequences for token in seq)
        tokens = [t for t, n in counts.most_common() if n >= min_freq]
        return cls(tokens[:max_size] if max_size else tokens)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_list(self) -> list[str]:
        """The non-special tokens in id order (what :class:`Vocabulary` is rebuilt from)."""
        return self.itos[len(SPECIALS) :]

    def save(self, path: str | Path) -> None:
        """Write the tokens as JSON (``{"tokens": [...]}``, specials excluded)."""
        Path(path).write_text(json.dumps({"tokens": self.to_list()}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8"))["tokens"])
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"cannot read the vocabulary {path}: {error}") from None
