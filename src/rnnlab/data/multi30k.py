"""Multi30k task 1: English-German image descriptions (29,000 / 1,014 / 1,000 sentence pairs).

The raw, untokenised, gzip-compressed files of the official repository. :func:`load_multi30k`
returns line-aligned ``(english, german)`` pairs of one split; :func:`tokenize` and
:func:`detokenize` are the simple word/punctuation tokenizer the ``translate`` task uses.

D. Elliott, S. Frank, K. Sima'an, L. Specia, "Multi30K: Multilingual English-German Image
Descriptions", Workshop on Vision and Language 2016.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset
from rnnlab.errors import ConfigError, DataError

SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
"""Split name -> file stem (``test`` is the 2016 Flickr test set)."""

_BASE = (
    "https://raw.githubusercontent.com/multi30k/dataset/"
    "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw"
)
_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}

MULTI30K = register_dataset(
    DatasetInfo(
        name="multi30k",
        files=tuple(
            RemoteFile(name, (f"{_BASE}/{name}",), (digest,)) for name, digest in _SHA256.items()
        ),
        citation=(
            "D. Elliott, S. Frank, K. Sima'an, L. Specia, Multi30K: Multilingual English-German "
            "Image Descriptions, Workshop on Vision and Language 2016"
        ),
        license="non-commercial research and education (Flickr terms of use for the images)",
        description="Multi30k task 1 English-German, raw gzip (train/val/test_2016_flickr)",
    )
)


def load_multi30k(
    split: str, data_dir: str | Path | None = None, download: bool = True
) -> list[tuple[str, str]]:
    """``(english, german)`` sentence pairs of ``split`` (``train``, ``valid`` or ``test``)."""
    if split not in SPLITS:
        raise ConfigError(f"Multi30k split must be one of {', '.join(SPLITS)}, got {split!r}")
    sides = []
    for lang in ("en", "de"):
        path = fetch("multi30k", f"{SPLITS[split]}.{lang}.gz", data_dir, download)
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            sides.append([line.strip() for line in handle.read().splitlines()])
    if len(sides[0]) != len(sides[1]):
        raise DataError(f"Multi30k {split}: English and German files differ in length")
    return list(zip(*sides))


_TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:)\]}'\"])")
_NO_SPACE_AFTER = re.compile(r"([(\[{]) ")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words (with inner hyphens, apostrophes and dots) and single punctuation marks."""
    return _TOKEN.findall(text.lower() if lowercase else text)


def detokenize(tokens: list[str]) -> str:
    """Join tokens with spaces, then remove the spaces before closing punctuation."""
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens)))
