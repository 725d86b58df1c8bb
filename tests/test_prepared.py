"""Prepared corpora: ``rnnlab prepare`` and ``rnnlab train --data DIR`` streaming from it."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.data import prepared
from rnnlab.data.batching import StreamBatches
from rnnlab.data.prepared import PreparedCorpus, PreparedStreams, narrowest_dtype, prepare
from rnnlab.data.text import Vocabulary, file_corpus, parse_splits
from rnnlab.data.words import WordVocabulary
from rnnlab.training import Trainer, distributed, make_config

TINY = dict(hidden=16, embed=8, seq_len=10, batch_size=4, eval_every=3, sample_every=1000)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """Text with multi-byte characters (2, 3 and 4 bytes in UTF-8)."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog é € 😀 naïve".split()
    path = tmp_path / "text.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(1500)), encoding="utf-8")
    return path


def train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "train"]


def fit(task_name: str, run: Path, **flags) -> None:
    config = make_config(task_name, out=str(run), log_every=1, **{**TINY, **flags})
    task = tasks.create(task_name, config)
    Trainer(task, config, run, out=io.StringIO(), progress=False).fit()


def test_char_round_trip_gives_the_in_memory_ids_and_batches(tmp_path, text_file, monkeypatch):
    monkeypatch.setattr(prepared, "CHUNK", 101)  # chunks end inside multi-byte characters
    manifest = prepare([text_file], tmp_path / "prep")
    corpus = PreparedCorpus(tmp_path / "prep", "char")
    memory = file_corpus(text_file, parse_splits("90/5/5"))
    vocab = Vocabulary.from_text(memory.text)
    assert corpus.vocab == vocab.chars and manifest["dtype"] == "uint8"
    for split in ("train", "valid", "test"):
        assert torch.equal(corpus.ids(split), vocab.encode(memory.split(split)))
    expected = list(StreamBatches(vocab.encode(memory.train), 8, 10).iterate())
    streamed = list(PreparedStreams(corpus, "train", 8, 10).iterate())
    assert len(streamed) == len(expected)
    for (x, y), (ex, ey) in zip(streamed, expected, strict=True):
        assert x.dtype == torch.long and torch.equal(x, ex) and torch.equal(y, ey)


def test_narrowest_dtype_and_a_large_vocabulary(tmp_path):
    assert [narrowest_dtype(n).name for n in (2, 256, 257, 65536, 65537)] == [
        "uint8",
        "uint8",
        "uint16",
        "uint16",
        "uint32",
    ]
    path = tmp_path / "wide.txt"
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 3
    path.write_text(text, encoding="utf-8")
    prepare([path], tmp_path / "prep")
    corpus = PreparedCorpus(tmp_path / "prep")
    assert corpus.dtype == np.uint16 and len(corpus.vocab) == 300
    assert "".join(corpus.vocab[i] for i in corpus.ids("train")) == text[: corpus.length("train")]


def test_checksums_are_recorded_and_a_changed_corpus_stops_a_resume(tmp_path, text_file):
    manifest = prepare([text_file], tmp_path / "prep")
    assert manifest["source_sha256"] == hashlib.sha256(text_file.read_bytes()).hexdigest()
    run = tmp_path / "run"
    fit("charlm", run, data=str(tmp_path / "prep"), max_steps=3)
    recorded = json.loads((run / "data.json").read_text())
    assert recorded["sha256"] == manifest["sha256"]
    assert recorded["source_sha256"] == manifest["source_sha256"]

    # the same source prepared with other splits is other training data
    (tmp_path / "prep" / "prepared.json").unlink()
    (tmp_path / "prep" / "tokens.bin").unlink()
    prepare([text_file], tmp_path / "prep", splits="80/10/10")
    saved = json.loads((run / "config.json").read_text())
    config = make_config("charlm", base=saved, max_steps=6)
    task = tasks.create("charlm", config, run)
    with pytest.raises(Exception, match="training data changed"):
        Trainer(task, config, run, resume=True, out=io.StringIO(), progress=False).fit()


@pytest.mark.parametrize("level", ["char", "word"])
def test_verify_checks_the_token_file_against_its_recorded_sha256(
    tmp_path, text_file, capsys, monkeypatch, level
):
    monkeypatch.setattr(prepared, "CHUNK", 101)  # hashed chunk by chunk as it is written
    manifest = prepare([text_file], tmp_path / "prep", level=level)
    tokens = tmp_path / "prep" / "tokens.bin"
    assert manifest["tokens_sha256"] == hashlib.sha256(tokens.read_bytes()).hexdigest()
    assert main(["prepare", "--verify", str(tmp_path / "prep")]) == 0
    assert f"verified {tmp_path / 'prep'}: {manifest['tokens']:,}" in capsys.readouterr().out

    damaged = bytearray(tokens.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # same size: only the checksum sees it
    tokens.write_bytes(bytes(damaged))
    assert main(["prepare", "--verify", str(tmp_path / "prep")]) == 2
    err = capsys.readouterr().err
    assert "does not match the tokens_sha256" in err and err.count("\n") == 1, err
    assert main(["prepare", "--verify", str(tmp_path / "prep"), "--out", "x"]) == 2
    assert "takes no --data or --out" in capsys.readouterr().err
    assert main(["prepare", "--out", str(tmp_path / "o")]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_errors_are_one_line_with_exit_code_2(tmp_path, text_file, capsys):
    empty, binary, latin = tmp_path / "empty.txt", tmp_path / "bin.txt", tmp_path / "latin.txt"
    empty.write_bytes(b"")
    binary.write_bytes(b"abc\x00def")
    latin.write_bytes("caf\xe9".encode("latin-1"))
    prepare([text_file], tmp_path / "words", level="word")
    cases = {
        "does not exist": [
            "prepare",
            "--data",
            str(tmp_path / "nope.txt"),
            "--out",
            str(tmp_path / "o1"),
        ],
        "is empty": ["prepare", "--data", str(empty), "--out", str(tmp_path / "o2")],
        "looks binary": ["prepare", "--data", str(binary), "--out", str(tmp_path / "o3")],
        "not UTF-8": ["prepare", "--data", str(latin), "--out", str(tmp_path / "o4")],
        "not an empty directory": ["prepare", "--data", str(text_file), "--out", str(tmp_path)],
        "needs char tokens": ["train", "--data", str(tmp_path / "words"), "--max-steps", "1"],
    }
    for message, argv in cases.items():
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    for out in ("o2", "o3", "o4"):  # a failed prepare leaves nothing behind
        assert not (tmp_path / out).exists()

    (tmp_path / "words" / "tokens.bin").write_bytes(b"\x01\x02")
    assert main(["train", "--task", "wordlm", "--data", str(tmp_path / "words")]) == 2
    assert "prepare the corpus again" in capsys.readouterr().err
    (tmp_path / "words" / "prepared.json").write_text("{")
    assert main(["train", "--task", "wordlm", "--data", str(tmp_path / "words")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_rank_shards_are_disjoint_and_cover_the_global_batch(tmp_path, text_file):
    prepare([text_file], tmp_path / "prep")
    config = make_config("charlm", data=str(tmp_path / "prep"), **{**TINY, "batch_size": 8})
    whole = list(tasks.create("charlm", config).train_batches(0))
    world = 4
    parts = []
    for rank in range(world):
        task = tasks.create("charlm", config)
        assert task.batches_per_rank(rank, world)
        parts.append(list(task.train_batches(0)))
        assert task._train.rows == range(2 * rank, 2 * rank + 2)  # its own streams only
    for index, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([p[index][0] for p in parts], 1), x)
        assert torch.equal(torch.cat([p[index][1] for p in parts], 1), y)
        for rank in range(world):  # what the trainer would have sliced from the global batch
            own = distributed.shard((x, y), 1, distributed.DistInfo(rank, world))
            assert torch.equal(parts[rank][index][0], own[0])
    # text in memory: the trainer slices, the task does not
    in_memory = make_config("charlm", data=str(text_file), **TINY)
    assert not tasks.create("charlm", in_memory).batches_per_rank(0, 2)


def test_streaming_training_follows_the_in_memory_run(tmp_path, text_file, capsys):
    assert main(["prepare", "--data", str(text_file), "--out", str(tmp_path / "prep")]) == 0
    assert "char tokens (uint8)" in capsys.readouterr().out
    fit("charlm", tmp_path / "streamed", data=str(tmp_path / "prep"), max_steps=5)
    fit("charlm", tmp_path / "memory", data=str(text_file), max_steps=5)
    assert len(train_losses(tmp_path / "streamed")) == 5
    assert train_losses(tmp_path / "streamed") == train_losses(tmp_path / "memory")


def test_words_most_frequent_first_unknown_and_wordlm_trains(tmp_path):
    path = tmp_path / "words.txt"
    lines = ["the cat sat", "the dog sat", "a cat ran"] * 40 + ["zebra the"]
    path.write_text("\n".join(lines) + "\n")
    manifest = prepare([path], tmp_path / "prep", level="word", splits="90/5/5")
    words = " <eos> ".join(lines).split() + ["<eos>"]
    corpus = PreparedCorpus(tmp_path / "prep", "word")
    train = words[: corpus.length("train")]
    assert corpus.vocab == WordVocabulary.by_frequency(train).words + ["<unk>"]
    test = [corpus.vocab[i] for i in corpus.ids("test")]
    assert test[-3:] == ["<unk>", "the", "<eos>"]  # "zebra" is not in the training part
    assert manifest["tokens"] == len(words)
    fit("wordlm", tmp_path / "run", data=str(tmp_path / "prep"), max_steps=3, layers=1)
    assert len(train_losses(tmp_path / "run")) == 3
