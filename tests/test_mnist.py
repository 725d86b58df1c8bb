"""The IDX reader on hand-made files and the MNIST loaders on the real files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from rnnlab.data.mnist import indices_of_test_split, load_mnist_split, read_idx
from rnnlab.errors import DataError


def _idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_read_idx_uint8_images_plain_and_gzip(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(0x08, (2, 3, 4), values.tobytes())
    (tmp_path / "x-idx3-ubyte").write_bytes(raw)
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        tensor = read_idx(tmp_path / name)
        assert tensor.dtype == torch.uint8
        assert torch.equal(tensor, torch.from_numpy(values))


def test_read_idx_big_endian_int32(tmp_path):
    payload = struct.pack(">3i", 1, -2, 70000)
    (tmp_path / "y").write_bytes(_idx_bytes(0x0C, (3,), payload))
    assert read_idx(tmp_path / "y").tolist() == [1, -2, 70000]


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(0x08, (5,), b"\x00\x01"))
    with pytest.raises(DataError, match="damaged"):
        read_idx(tmp_path / "short")


def test_test_split_protocol_partitions_the_test_set():
    train, held_out = indices_of_test_split("train"), indices_of_test_split("test")
    assert len(train) == 8000 and len(held_out) == 2000
    assert torch.equal(torch.sort(torch.cat([train, held_out])).values, torch.arange(10_000))
    assert torch.equal(indices_of_test_split("valid"), held_out)


def test_real_mnist_test_split(data_dir):
    images, labels = load_mnist_split("train", "test-split", data_dir, download=False)
    assert images.shape == (8000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (8000,) and set(labels.unique().tolist()) == set(range(10))
    test_images, test_labels = load_mnist_split("test", "test-split", data_dir, download=False)
    assert test_images.shape == (2000, 28, 28)
    # the first test image is the famous 7; image 4 (held out) is a 4
    assert labels[0].item() == 7 and test_labels[0].item() == 4
    assert int(images.max()) == 255 and int(images.min()) == 0


def test_pixel_sequences_and_fixed_permutation():
    from rnnlab.tasks.digits import MEAN, STD, fixed_permutation, pixel_sequences

    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    plain = pixel_sequences(images)
    assert plain.shape == (3, 784)
    assert plain[1, 28 * 5 + 7].item() == pytest.approx((images[1, 5, 7].item() / 255 - MEAN) / STD)
    permutation = fixed_permutation(0)
    assert torch.equal(permutation, fixed_permutation(0))
    assert torch.equal(permutation.sort().values, torch.arange(784))
    assert not torch.equal(permutation, fixed_permutation(1))
    assert torch.equal(pixel_sequences(images, permutation), plain[:, permutation])
