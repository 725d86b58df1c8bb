"""MNIST handwritten digits: the IDX file reader, the loaders and the two split protocols.

Files (dataset ``mnist``; ``--data-dir DIR`` finds them in ``DIR/mnist/`` or ``DIR/``, else they
are downloaded and verified): ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.

Checksums: every file is verified by the sha256 of its gzip archive. The canonical archives (as
served by the mirrors below, identical to LeCun's) are accepted everywhere. For
``t10k-images-idx3-ubyte.gz`` a second archive digest is accepted too: the copy in
``/work/shared/data/mnist`` was re-gzipped by its source repository, so its archive bytes differ,
while its decompressed content (7,840,016 bytes, sha256
``0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7``) is the original file. That
second digest names exactly that one known re-compressed copy; any other archive is rejected.

Protocols (:func:`load_mnist_split`):

* ``"standard"``: train = the 60,000 training images, valid = test = the 10,000 test images
  (the protocol of the sequential-MNIST papers; needs the training images).
* ``"test-split"`` (the *mnist-test-split* protocol): only the 10,000 test images, split without
  randomness: image ``i`` is held out when ``i % 5 == 4`` (2,000 images, from both halves of the
  test set, whose writers differ), the other 8,000 are for training; valid = test = the 2,000
  held-out images. Numbers measured this way are labelled ``mnist-test-split`` and are not
  comparable to the paper's protocol.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset
from rnnlab.errors import DataError

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        # re-gzipped copy (kelas/mnist@283b387) whose decompressed content is the original
        "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}

MNIST = register_dataset(
    DatasetInfo(
        name="mnist",
        files=tuple(
            RemoteFile(name, tuple(mirror + name for mirror in MIRRORS), digests)
            for name, digests in _SHA256.items()
        ),
        citation=(
            "Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits, "
            "http://yann.lecun.com/exdb/mnist/; LeCun et al., Gradient-based learning applied "
            "to document recognition, Proc. IEEE 1998"
        ),
        license="no licence stated by the source",
        description="70,000 handwritten digits, 28x28 grey levels, labels 0-9 (IDX format)",
    )
)

PROTOCOLS = ("standard", "test-split")
SPLITS = ("train", "valid", "test")
_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (gzip-compressed when its name ends in ``.gz``) into a tensor.

    IDX: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the values
    big-endian in C order. Returns a tensor of that shape in native byte order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read IDX file {path}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (incomplete IDX header)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise DataError(
            f"{path} holds {len(data) - header} data bytes, its header promises "
            f"{count * dtype.itemsize}; the file is damaged"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def _check_part(part: str) -> str:
    if part not in _FILE_PREFIX:
        raise DataError(f"MNIST file set must be 'train' or 'test', got {part!r}")
    return _FILE_PREFIX[part]


def load_mnist_images(
    part: str, data_dir: str | Path | None = None, download: bool = True
) -> torch.Tensor:
    """Images of MNIST's ``"train"`` (60,000) or ``"test"`` (10,000) file: uint8 ``[N, 28, 28]``."""
    path = fetch("mnist", f"{_check_part(part)}-images-idx3-ubyte.gz", data_dir, download)
    images = read_idx(path)
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise DataError(f"{path} does not hold 28x28 uint8 images (shape {tuple(images.shape)})")
    return images


def load_mnist_labels(
    part: str, data_dir: str | Path | None = None, download: bool = True
) -> torch.Tensor:
    """The labels of MNIST's ``"train"`` or ``"test"`` file: int64 ``[N]`` with values 0-9."""
    path = fetch("mnist", f"{_check_part(part)}-labels-idx1-ubyte.gz", data_dir, download)
    labels = read_idx(path)
    if labels.dim() != 1 or (labels.numel() and int(labels.max()) > 9):
        raise DataError(f"{path} does not hold digit labels 0-9")
    return labels.long()


def indices_of_test_split(split: str) -> torch.Tensor:
    """Indices into the 10,000 test images of one split of the *mnist-test-split* protocol.

    ``"train"``: the 8,000 indices with ``i % 5 != 4``; ``"valid"``/``"test"``: the 2,000 with
    ``i % 5 == 4``.
    """
    index = torch.arange(10_000)
    held_out = index % 5 == 4
    return index[~held_out] if split == "train" else index[held_out]


def load_mnist_split(
    split: str,
    protocol: str = "standard",
    data_dir: str | Path | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 ``[N, 28, 28]`` and labels int64 ``[N]`` of ``split`` under ``protocol``.

    ``protocol`` is ``"standard"`` or ``"test-split"`` (see the module docstring).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if protocol == "standard":
        part = "train" if split == "train" else "test"
        images = load_mnist_images(part, data_dir, download)
        labels = load_mnist_labels(part, data_dir, download)
    elif protocol == "test-split":
        images = load_mnist_images("test", data_dir, download)
        labels = load_mnist_labels("test", data_dir, download)
        if len(images) != 10_000:
            raise DataError(f"the MNIST test file holds {len(images)} images, expected 10,000")
        index = indices_of_test_split(split)
        images, labels = images[index], labels[index]
    else:
        raise DataError(f"unknown MNIST protocol {protocol!r}; choose one of {PROTOCOLS}")
    if len(images) != len(labels):
        raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels
