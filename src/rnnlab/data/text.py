"""Text corpora for character-level language models, and their character vocabulary.

Three sources, all giving a :class:`Corpus` of train / valid / test strings with a fingerprint:

* the default: the top-level ``*.py`` files of the running Python's standard library
  (``sysconfig.get_paths()["stdlib"]``), split **by file** in proportion to ``--splits`` (files
  ordered by the sha256 of their names, so the split is the same on every machine with the
  same Python);
* ``--data PATH``: any UTF-8 text file, split **by position**: the first 90%, the next 5%, the
  last 5% by default (``--splits 90/10/0`` is nanoGPT's shakespeare_char protocol);
* ``--data NAME`` for a registered text dataset (``tinyshakespeare``), found through
  :func:`rnnlab.data.registry.fetch` and split by position like a file.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import rnnlab.data.tinyshakespeare  # noqa: F401  (registers the dataset)
from rnnlab.data.registry import fetch, registered_datasets
from rnnlab.errors import ConfigError, DataError
from rnnlab.jsonfile import read_json

TEXT_DATASETS = {"tinyshakespeare": "input.txt"}
"""Registered datasets that are one text file, and that file's name."""


def parse_splits(spec: str) -> tuple[float, float, float]:
    """``"90/5/5"`` -> ``(0.9, 0.05, 0.05)``; three non-negative percentages that sum to 100,
    with a positive train and valid part."""
    try:
        parts = [float(p) for p in spec.split("/")]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 0 or parts[0] <= 0 or parts[1] <= 0:
        raise ConfigError(
            f"--splits must be three numbers train/valid/test with positive train and valid "
            f"parts, like 90/5/5; got {spec!r}"
        )
    if abs(sum(parts) - 100.0) > 1e-6:
        raise ConfigError(
            f"--splits {spec} sums to {sum(parts):g}, not 100: give percentages, like 90/5/5"
        )
    return parts[0] / 100.0, parts[1] / 100.0, parts[2] / 100.0


@dataclass
class Corpus:
    """Train / valid / test text and a fingerprint describing where it came from."""

    train: str
    valid: str
    test: str
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> str:
        if name not in ("train", "valid", "test"):
            raise ConfigError(f"unknown split {name!r}; use train, valid or test")
        return getattr(self, name)

    @property
    def text(self) -> str:
        return self.train + self.valid + self.test


def read_text_file(path: str | Path) -> str:
    """The contents of a UTF-8 text file; a ``DataError`` if missing, empty, binary or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    raw = path.read_bytes()
    if not raw:
        raise DataError(f"data file {path} is empty")
    if b"\x00" in raw[:65536]:
        raise DataError(f"data file {path} looks binary (it contains NUL bytes); give a text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"data file {path} is not UTF-8 text (invalid byte at offset {error.start}); "
            "convert it, e.g. iconv -t utf-8"
        ) from None


def split_by_position(text: str, splits: tuple[float, float, float]) -> tuple[str, str, str]:
    n = len(text)
    a = int(round(n * splits[0]))
    b = int(round(n * (splits[0] + splits[1])))
    return text[:a], text[a:b], text[b:]


def file_corpus(path: str | Path, splits: tuple[float, float, float]) -> Corpus:
    path = Path(path)
    text = read_text_file(path)
    train, valid, test = split_by_position(text, splits)
    fingerprint = {
        "source": str(path),
        "files": 1,
        "characters": len(text),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "split": "by position",
        "splits": list(splits),
    }
    return Corpus(train, valid, test, fingerprint)


def stdlib_files() -> list[Path]:
    """The top-level ``*.py`` files of the running Python's standard library, sorted by name."""
    return sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))


def stdlib_corpus(splits: tuple[float, float, float]) -> Corpus:
    """The default corpus: Python's standard library sources, split by file.

    The files are put in the order of the sha256 of their names (a shuffle that is the same on
    every machine) and cut by characters: a file goes to the split its middle character falls in.
    """
    texts: dict[str, str] = {}
    for path in stdlib_files():
        try:
            texts[path.name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    if not texts:
        raise DataError(
            f"found no readable *.py files in {sysconfig.get_paths()['stdlib']}; pass --data PATH"
        )
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(name.encode() + b"\x00" + texts[name].encode("utf-8"))
    total = sum(map(len, texts.values()))
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    files: dict[str, int] = {"train": 0, "valid": 0, "test": 0}
    offset = 0
    for name in sorted(texts, key=lambda n: hashlib.sha256(n.encode("utf-8")).hexdigest()):
        middle = (offset + len(texts[name]) / 2) / total
        split = (
            "train" if middle < splits[0] else "valid" if middle < splits[0] + splits[1] else "test"
        )
        parts[split].append(texts[name])
        files[split] += 1
        offset += len(texts[name])
    fingerprint = {
        "source": "python-stdlib",
        "directory": sysconfig.get_paths()["stdlib"],
        "python": sysconfig.get_python_version(),
        "files": len(texts),
        "characters": total,
        "sha256": digest.hexdigest(),
        "split": "by file",
        "splits": list(splits),
        "split_files": files,
        "split_characters": {k: sum(map(len, v)) for k, v in parts.items()},
    }
    return Corpus(*("".join(parts[k]) for k in ("train", "valid", "test")), fingerprint)


def load_corpus(data: str | None, splits: str, data_dir: str | None = None) -> Corpus:
    """The corpus for ``--data`` (``None``: the stdlib sources; a registered dataset name; a
    path) split by ``--splits``."""
    fractions = parse_splits(splits)
    if data is None:
        return stdlib_corpus(fractions)
    if data in TEXT_DATASETS and not Path(data).exists():
        corpus = file_corpus(fetch(data, TEXT_DATASETS[data], data_dir), fractions)
        corpus.fingerprint["dataset"] = data
        return corpus
    if data in registered_datasets() and not Path(data).exists():
        raise DataError(f"dataset {data!r} is not a single text file; give a text file path")
    return file_corpus(data, fractions)


class Vocabulary:
    """The characters of a corpus, each with an integer id (sorted by code point)."""

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        self._order = np.argsort(self._codes)

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.chars

    def encode(self, text: str) -> Tensor:
        """``str -> LongTensor [len(text)]``; a ``DataError`` names characters it does not know."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        sorted_codes = self._codes[self._order]
        position = np.searchsorted(sorted_codes, codes).clip(max=max(len(self.chars) - 1, 0))
        known = sorted_codes[position] == codes if len(self.chars) else codes < 0
        if not known.all():
            unknown = sorted({chr(c) for c in codes[~known]})
            raise DataError(
                f"{len(unknown)} character(s) are not in the model's vocabulary, e.g. "
                f"{''.join(unknown[:10])!r}"
            )
        return torch.from_numpy(self._order[position])

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"chars": self.chars}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(read_json(path, "chars", list))
