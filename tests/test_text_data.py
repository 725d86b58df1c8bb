"""Corpora and the character vocabulary (rnnlab.data.text)."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data.text import (
    Vocabulary,
    load_corpus,
    parse_splits,
    read_text_file,
    split_by_position,
    stdlib_corpus,
)
from rnnlab.errors import ConfigError, DataError


def test_parse_splits():
    assert parse_splits("90/5/5") == pytest.approx((0.9, 0.05, 0.05))
    assert parse_splits("90/10/0") == pytest.approx((0.9, 0.1, 0.0))
    assert parse_splits("33.5/33.5/33") == pytest.approx((0.335, 0.335, 0.33))
    for bad in ("90/10", "a/b/c", "90/0/10", "0/50/50", "90/-5/15", "90/20/0", "9/1/0"):
        with pytest.raises(ConfigError):
            parse_splits(bad)


def test_split_by_position_is_contiguous_and_complete():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, valid, test = split_by_position(text, (0.9, 0.1, 0.0))
    assert (len(train), len(valid), len(test)) == (900, 100, 0)
    assert train + valid + test == text
    assert valid == text[-100:]  # nanoGPT shakespeare_char: validation is the last 10%


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"ab\x00cd", "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text_file(path)


def test_file_corpus_fingerprint(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo wörld\n" * 50, encoding="utf-8")
    corpus = load_corpus(str(path), "80/10/10")
    assert corpus.text == path.read_text(encoding="utf-8")
    assert corpus.fingerprint["characters"] == 600
    assert len(corpus.fingerprint["sha256"]) == 64


def test_stdlib_corpus_split_by_file_is_deterministic():
    a, b = stdlib_corpus((0.9, 0.05, 0.05)), stdlib_corpus((0.9, 0.05, 0.05))
    assert a.fingerprint == b.fingerprint and a.valid == b.valid
    fp = a.fingerprint
    assert fp["files"] == sum(fp["split_files"].values()) > 10
    assert fp["characters"] == len(a.text)
    assert all(fp["split_files"][k] > 0 for k in ("train", "valid", "test"))
    # whole files: every split starts like a Python source file, not mid-line
    assert 0.8 < len(a.train) / fp["characters"] < 0.97


def test_vocabulary_round_trip_and_unknown(tmp_path):
    vocab = Vocabulary.from_text("hello, wörld\n")
    ids = vocab.encode("wörld, hello")
    assert ids.dtype == torch.long and vocab.decode(ids) == "wörld, hello"
    assert vocab.chars == sorted(vocab.chars)
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").chars == vocab.chars
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        vocab.encode("xyz")


def test_tinyshakespeare_by_name(data_dir):
    corpus = load_corpus("tinyshakespeare", "90/10/0", str(data_dir))
    assert corpus.fingerprint["characters"] == 1115394
    assert len(set(corpus.text)) == 65 and corpus.test == ""
