"""Corpora tokenised once into a token file that training streams from (``rnnlab prepare``).

A prepared directory holds two files:

* ``tokens.bin``: the token ids of the whole corpus in order, a flat array of the narrowest
  unsigned integer type that holds the vocabulary (``uint8`` up to 256 tokens, ``uint16`` up to
  65,536, else ``uint32``); ``np.memmap(path, dtype, mode="r")`` opens it;
* ``prepared.json``: the level, the dtype, the vocabulary in id order, the token range of each
  split, the counts, the sha256 of the source bytes, ``tokens_sha256`` (of ``tokens.bin``,
  hashed while it is written; :func:`verify` checks it), and ``sha256``, which identifies the
  prepared corpus (source, level, splits, vocabulary) and is what a run records.

Levels (``--level``):

* ``char``: one token per character; ids are the characters of the corpus sorted by code point,
  exactly the vocabulary and ids of ``rnnlab train --data FILE`` (:mod:`rnnlab.data.text`);
* ``word``: each line's whitespace-separated words, then ``<eos>`` (as Penn Treebank is read);
  ids most frequent first in the training part (ties by first appearance); a valid or test word
  the training part lacks becomes ``<unk>``.

Several files are read as one text, in the order given. The splits are by position over tokens,
like a text file's in memory: train is the first ``round(N * train)`` tokens, and so on. The
vocabulary is fixed here, once; training reads only what each step needs: a rank reads the
chunk of each of its own streams with one ``pread`` (:class:`PreparedStreams`), so its resident
memory does not grow with the corpus or through an epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnlab.data.batching import StreamBatches
from rnnlab.data.text import parse_splits
from rnnlab.data.words import EOS
from rnnlab.errors import ConfigError, DataError

TOKENS, MANIFEST = "tokens.bin", "prepared.json"
FORMAT = 1
LEVELS = ("char", "word")
UNK = "<unk>"
SPLITS = ("train", "valid", "test")
CHUNK = 16 << 20
"""Bytes read at a time while preparing."""
CODE_POINTS = 0x110000


def is_prepared(path: str | Path | None) -> bool:
    """Whether ``path`` is a directory made by ``rnnlab prepare``."""
    return path is not None and (Path(path) / MANIFEST).is_file()


def narrowest_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type holding ids ``0 .. vocab_size - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise DataError(f"a vocabulary of {vocab_size:,} tokens is too large for a token file")


def _chunks(paths: Sequence[Path]) -> Iterator[tuple[Path, bytes]]:
    """``(path, bytes)`` of ``paths`` in order, cut only between UTF-8 characters; each file
    checked to exist, be non-empty and not binary."""
    for path in paths:
        if not path.is_file():
            raise DataError(f"data file {path} does not exist or is not a file")
        with open(path, "rb") as f:
            head = f.read(CHUNK)
            if not head:
                raise DataError(f"data file {path} is empty")
            if b"\x00" in head[:65536]:
                raise DataError(f"data file {path} looks binary (it contains NUL bytes)")
            rest = b""
            while head:
                data, head = rest + head, f.read(CHUNK)
                cut = len(data)
                if head:  # the last character may be incomplete: it goes to the next chunk
                    start = cut - 1
                    while start > 0 and data[start] & 0xC0 == 0x80:
                        start -= 1
                    cut = start if data[start] >= 0xC0 else cut
                data, rest = data[:cut], data[cut:]
                yield path, data


def _code_points(path: Path, data: bytes) -> np.ndarray:
    """The characters of ``data`` as code points ``[n]`` (uint8 for ASCII, else uint32)."""
    if data.isascii():
        return np.frombuffer(data, dtype=np.uint8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"data file {path} is not UTF-8 text (invalid byte near {error.start} in a chunk); "
            "convert it, e.g. iconv -t utf-8"
        ) from None
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _split_ranges(total: int, splits: tuple[float, float, float]) -> dict[str, list[int]]:
    a = int(round(total * splits[0]))
    b = int(round(total * (splits[0] + splits[1])))
    return {"train": [0, a], "valid": [a, b], "test": [b, total]}


def _prepare_chars(
    paths: Sequence[Path], tmp: Path, source: Any, tokens: Any
) -> tuple[list[str], int]:
    """Two passes: find the characters, then write their ids (hashed into ``tokens``).
    Returns (vocabulary, number of tokens).

    ASCII chunks take byte-string fast paths (``bytes.translate`` finds new characters and maps
    characters to ids), the others go through numpy arrays of code points."""
    present = np.zeros(CODE_POINTS, dtype=bool)
    seen_bytes, total = b"", 0
    for path, data in _chunks(paths):
        source.update(data)
        if data.isascii():
            new = data.translate(None, seen_bytes)
            while new:  # the bytes not seen before, from a sample of what is left
                seen_bytes += bytes(set(new[:4096]))
                new = new.translate(None, seen_bytes)
            total += len(data)
        else:
            codes = _code_points(path, data)
            present[codes] = True
            total += codes.size
    present[np.frombuffer(seen_bytes, dtype=np.uint8)] = True
    chars = np.flatnonzero(present)
    dtype = narrowest_dtype(chars.size)
    table = np.zeros(CODE_POINTS, dtype=dtype)
    table[chars] = np.arange(chars.size, dtype=dtype)
    ascii_ids = bytes(table[:128].astype(np.uint8)) + bytes(128) if dtype == np.uint8 else None
    with open(tmp, "wb") as out:
        for path, data in _chunks(paths):
            if ascii_ids is not None and data.isascii():
                ids = data.translate(ascii_ids)
                out.write(ids)
            else:
                ids = table[_code_points(path, data)]
                ids.tofile(out)
            tokens.update(ids)
    return [chr(c) for c in chars], total


def _prepare_words(
    paths: Sequence[Path],
    tmp: Path,
    source: Any,
    tokens: Any,
    splits: tuple[float, float, float],
) -> tuple[list[str], int]:
    """One pass writes ids in order of first appearance (uint32) into ``tmp``; the training
    part's counts then give the final ids, written over them (and hashed into ``tokens``).
    Returns (vocabulary, number of tokens)."""
    index: dict[str, int] = {}
    total = 0
    with open(tmp, "wb") as out:
        for path, data in _chunks(paths):
            source.update(data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"data file {path} is not UTF-8 text (invalid byte near {error.start} in a "
                    "chunk); convert it, e.g. iconv -t utf-8"
                ) from None
            ids: list[int] = []
            for line in text.split("\n"):
                words = line.split()
                if words:
                    ids.extend([index.setdefault(w, len(index)) for w in words])
                    ids.append(index.setdefault(EOS, len(index)))
            np.asarray(ids, dtype=np.uint32).tofile(out)
            total += len(ids)
    first = np.memmap(tmp, dtype=np.uint32, mode="r+", shape=(total,)) if total else None
    if first is None:
        raise DataError("the data has no words")
    words = list(index)
    train_end = _split_ranges(total, splits)["train"][1]
    counts = np.bincount(first[:train_end], minlength=len(words))
    seen = np.flatnonzero(counts)
    order = seen[np.argsort(-counts[seen], kind="stable")]  # most frequent first, ties by first
    vocab = [words[i] for i in order]
    remap = np.zeros(len(words), dtype=np.uint32)
    remap[order] = np.arange(order.size, dtype=np.uint32)
    if order.size < len(words):  # words only valid or test have
        if UNK not in vocab:
            vocab.append(UNK)
        unseen = np.ones(len(words), dtype=bool)
        unseen[order] = False
        remap[unseen] = vocab.index(UNK)
    dtype = narrowest_dtype(len(vocab))
    final = tmp.with_suffix(".final")
    with open(final, "wb") as out:
        for begin in range(0, total, CHUNK):
            ids = remap[first[begin : begin + CHUNK]].astype(dtype)
            tokens.update(ids)
            ids.tofile(out)
    del first
    os.replace(final, tmp)
    return vocab, total


def prepare(
    paths: Sequence[str | Path], out: str | Path, level: str = "char", splits: str = "90/5/5"
) -> dict[str, Any]:
    """Tokenise ``paths`` into the prepared directory ``out`` (new or empty); returns its
    manifest (the content of ``prepared.json``) with the seconds it took under ``"seconds"``."""
    if level not in LEVELS:
        raise ConfigError(f"unknown --level {level!r}; use char or word")
    fractions = parse_splits(splits)
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("give at least one text file with --data")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty directory; choose another --out")
    started, created = time.perf_counter(), not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{TOKENS}.tmp"
    source, tokens = hashlib.sha256(), hashlib.sha256()
    try:
        if level == "char":
            vocab, total = _prepare_chars(paths, tmp, source, tokens)
        else:
            vocab, total = _prepare_words(paths, tmp, source, tokens, fractions)
        os.replace(tmp, out / TOKENS)
    except BaseException:
        for leftover in (tmp, tmp.with_suffix(".final")):
            leftover.unlink(missing_ok=True)
        if created:
            out.rmdir()
        raise
    ranges = _split_ranges(total, fractions)
    # the tokens are a function of the source bytes, the level and the vocabulary
    identity = json.dumps([source.hexdigest(), level, ranges, vocab], ensure_ascii=False)
    manifest = {
        "format": FORMAT,
        "level": level,
        "dtype": narrowest_dtype(len(vocab)).name,
        "tokens": total,
        "splits": ranges,
        "split_fractions": list(fractions),
        "vocab": vocab,
        "paths": [str(p) for p in paths],
        "bytes": sum(p.stat().st_size for p in paths),
        "source_sha256": source.hexdigest(),
        "tokens_sha256": tokens.hexdigest(),
        "sha256": hashlib.sha256(identity.encode("utf-8")).hexdigest(),
    }
    with open(out / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return {**manifest, "seconds": time.perf_counter() - started}


def verify(directory: str | Path) -> PreparedCorpus:
    """Check that ``tokens.bin`` of the prepared ``directory`` has its recorded size and
    sha256 (reading it once); returns the opened corpus, raises :class:`DataError` if not."""
    corpus = PreparedCorpus(directory)
    expected = corpus.manifest.get("tokens_sha256")
    if expected is None:
        raise DataError(
            f"{corpus.directory / MANIFEST} records no tokens_sha256 (an older rnnlab prepared "
            "it); prepare the corpus again to verify it"
        )
    digest = hashlib.sha256()
    with open(corpus.directory / TOKENS, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DataError(
            f"{corpus.directory / TOKENS} does not match the tokens_sha256 of {MANIFEST} (the file "
            "changed or is damaged); prepare the corpus again"
        )
    return corpus


class PreparedCorpus:
    """A prepared directory, opened for reading; see the module docstring.

    Example::

        corpus = PreparedCorpus("prep", level="char")
        corpus.read("train", 0, 100)   # ids [100], the corpus's own dtype
    """

    def __init__(self, directory: str | Path, level: str | None = None):
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            self.level, self.vocab = manifest["level"], list(manifest["vocab"])
            self.dtype, self.tokens = np.dtype(manifest["dtype"]), int(manifest["tokens"])
            self.ranges = {k: tuple(manifest["splits"][k]) for k in SPLITS}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(
                f"cannot read {path}: {error}; prepare the corpus again with rnnlab prepare"
            ) from None
        if level is not None and self.level != level:
            raise DataError(
                f"{self.directory} holds {self.level} tokens; this task needs {level} tokens "
                f"(rnnlab prepare --level {level})"
            )
        self.manifest = manifest
        size = (
            (self.directory / TOKENS).stat().st_size if (self.directory / TOKENS).is_file() else 0
        )
        if size != self.tokens * self.dtype.itemsize:
            raise DataError(
                f"{self.directory / TOKENS} has {size:,} bytes, not the {self.tokens:,} tokens of "
                f"{MANIFEST}; prepare the corpus again"
            )
        self._fd: int | None = None

    def length(self, split: str) -> int:
        begin, end = self.ranges[split]
        return end - begin

    def read(self, split: str, begin: int, count: int) -> np.ndarray:
        """Tokens ``begin .. begin + count - 1`` of ``split``: ids ``[count]``, one ``pread``."""
        if self._fd is None:  # opened on first use: a forked or unpickled copy opens its own
            self._fd = os.open(self.directory / TOKENS, os.O_RDONLY)
        size = self.dtype.itemsize
        offset = (self.ranges[split][0] + begin) * size
        return np.frombuffer(os.pread(self._fd, count * size, offset), dtype=self.dtype)

    def ids(self, split: str) -> Tensor:
        """All of ``split`` as a ``LongTensor [N]`` (in memory: for the smaller splits)."""
        return torch.from_numpy(self.read(split, 0, self.length(split)).astype(np.int64))

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What a run records in ``data.json``; ``sha256`` identifies the prepared corpus."""
        m = self.manifest
        keys = ("level", "tokens", "splits", "paths", "source_sha256", "sha256")
        return {"source": str(self.directory), "files": len(m["paths"]), **{k: m[k] for k in keys}}

    def describe(self) -> str:
        sizes = "/".join(f"{self.length(k):,}" for k in SPLITS)
        return (
            f"{self.directory} (prepared, {len(self.manifest['paths'])} file(s)): {sizes} "
            f"train/valid/test {self.level}s, vocabulary {len(self.vocab):,}"
        )

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


class PreparedStreams(StreamBatches):
    """:class:`~rnnlab.data.batching.StreamBatches` over a split of a prepared corpus, reading
    only the streams ``rows`` (default: all ``batch_size``) from the file, chunk by chunk.

    Stream ``b`` and chunk ``i`` are those of ``StreamBatches(corpus.ids(split), batch_size,
    seq_len)``; batches are ``(x [T, len(rows)], y [T, len(rows)])`` long tensors, the columns
    ``rows`` of that class's batches.
    """

    def __init__(
        self,
        corpus: PreparedCorpus,
        split: str,
        batch_size: int,
        seq_len: int,
        rows: range | None = None,
        what: str = "training text",
    ):
        n = corpus.length(split)
        needed = batch_size * (seq_len + 1)
        if n < needed:
            raise DataError(
                f"the {what} has {n:,} tokens, fewer than one batch (--batch-size {batch_size} x "
                f"(--seq-len {seq_len} + 1) = {needed:,}); use a smaller --batch-size or "
                "--seq-len, or more text"
            )
        self.corpus, self.split = corpus, split
        self.batch_size, self.seq_len = batch_size, seq_len
        self.stream_length = n // batch_size
        self.rows = rows if rows is not None else range(batch_size)

    def span(self, begin: int, length: int) -> tuple[Tensor, Tensor]:
        end = min(begin + length, self.stream_length - 1)
        L, split = self.stream_length, self.split
        block = np.stack(
            [self.corpus.read(split, row * L + begin, end - begin + 1) for row in self.rows], 1
        )  # [T + 1, rows]
        steps = torch.from_numpy(block.astype(np.int64))
        return steps[:-1], steps[1:]
