"""A word vocabulary: each distinct word with an integer id, in order of first appearance or
(``by_frequency``) most frequent first."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.errors import DataError
from rnnlab.jsonfile import read_json

EOS = "<eos>"
"""The end-of-sentence token added after every line."""


class WordVocabulary:
    """Words and their ids; ``encode`` refuses words it does not know (PTB has ``<unk>``)."""

    def __init__(self, words: Iterable[str]):
        self.words = list(dict.fromkeys(words))
        self._ids = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_words(cls, words: Iterable[str]) -> WordVocabulary:
        return cls(words)

    @classmethod
    def by_frequency(cls, words: Iterable[str]) -> WordVocabulary:
        """Ids in order of decreasing count, ties in order of first appearance (an adaptive
        softmax puts the lowest ids in its head)."""
        counts = Counter(words)  # keeps first-appearance order, and sorted() is stable
        return cls(sorted(counts, key=counts.__getitem__, reverse=True))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._ids

    def encode(self, words: list[str]) -> Tensor:
        """``[N]`` words -> ``LongTensor [N]``; a ``DataError`` names unknown words."""
        try:
            return torch.tensor([self._ids[w] for w in words], dtype=torch.long)
        except KeyError:
            unknown = sorted({w for w in words if w not in self._ids})
            raise DataError(
                f"{len(unknown)} word(s) are not in the model's vocabulary, e.g. "
                f"{' '.join(unknown[:10])!r}"
            ) from None

    def decode(self, ids: Tensor | list[int]) -> list[str]:
        return [self.words[int(i)] for i in ids]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"words": self.words}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> WordVocabulary:
        return cls(read_json(path, "words", list))
