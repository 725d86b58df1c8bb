"""Dataset file resolution: local dir, environment, cache, checksum errors."""

from __future__ import annotations

import hashlib

import pytest

from rnnlab.data import registry
from rnnlab.errors import DataError


@pytest.fixture
def toy_dataset():
    payload = b"hello rnn\n"
    info = registry.register_dataset(
        registry.DatasetInfo(
            name="toy-registry-test",
            files=(
                registry.RemoteFile(
                    "toy.txt",
                    ("file:///nonexistent/toy.txt",),
                    (hashlib.sha256(payload).hexdigest(),),
                ),
            ),
        )
    )
    return info, payload


def test_fetch_prefers_local_dir_and_verifies(tmp_path, monkeypatch, toy_dataset):
    _, payload = toy_dataset
    monkeypatch.setenv("RNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "local" / "toy-registry-test").mkdir(parents=True)
    good = tmp_path / "local" / "toy-registry-test" / "toy.txt"
    good.write_bytes(payload)
    assert registry.fetch("toy-registry-test", "toy.txt", data_dir=tmp_path / "local") == good
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(tmp_path / "local"))
    assert registry.fetch("toy-registry-test", "toy.txt") == good
    good.write_bytes(b"tampered")
    with pytest.raises(DataError, match="does not match the published checksum"):
        registry.fetch("toy-registry-test", "toy.txt")


def test_fetch_reports_failed_download_and_leaves_nothing(tmp_path, monkeypatch, toy_dataset):
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("RNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="could not download toy.txt"):
        registry.fetch("toy-registry-test", "toy.txt")
    assert list((tmp_path / "cache" / "toy-registry-test").iterdir()) == []
    with pytest.raises(DataError, match="not available locally"):
        registry.fetch("toy-registry-test", "toy.txt", download=False)
    with pytest.raises(DataError, match="unknown dataset"):
        registry.fetch("no-such-dataset", "x")
