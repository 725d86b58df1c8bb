"""Surnames of 18 languages (the PyTorch "classifying names with a character-level RNN" data).

One file per language, one surname per line (UTF-8, accented letters kept); 20,074 lines in all.
:func:`load_names` returns ``(surname, language)`` pairs, with exact duplicates of a pair
removed (Arabic.txt alone repeats most of its names) so that no pair is both trained on and
tested; :func:`stratified_split` holds out the same fraction of every language.

S. Robertson, PyTorch tutorials, "NLP From Scratch: Classifying Names with a Character-Level RNN".
"""

from __future__ import annotations

import random
from pathlib import Path

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset

LANGUAGES = (
    "Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish",
    "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish",
    "Vietnamese",
)  # fmt: skip

_SHA256 = {
    "Arabic": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese": "49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e",
    "Czech": "145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e",
    "Dutch": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian": "43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3",
    "Scottish": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese": "4761c0de374ebdfd7dea7faa6fbac707d96cad9a6fc91d3626c462cbd08b6c76",
}
_BASE = (
    "https://raw.githubusercontent.com/hungds1996/LSTM-with-pytorch/"
    "9f362e53d6ce41d12c2a54550a15fcc9612fa828/data/names"
)

NAMES = register_dataset(
    DatasetInfo(
        name="names",
        files=tuple(
            RemoteFile(f"{lang}.txt", (f"{_BASE}/{lang}.txt",), (_SHA256[lang],))
            for lang in LANGUAGES
        ),
        citation='S. Robertson, PyTorch tutorials, "Classifying Names with a Character-Level RNN"',
        license="not stated for the data (the PyTorch tutorials repository is BSD-3-Clause)",
        description="20,074 surnames of 18 languages, one file per language",
    )
)


def load_names(data_dir: str | Path | None = None, download: bool = True) -> list[tuple[str, str]]:
    """All distinct ``(surname, language)`` pairs, languages in :data:`LANGUAGES` order."""
    pairs: list[tuple[str, str]] = []
    for lang in LANGUAGES:
        path = fetch("names", f"{lang}.txt", data_dir, download)
        seen = set()
        for line in path.read_text(encoding="utf-8").splitlines():
            name = line.strip()
            if name and name not in seen:
                seen.add(name)
                pairs.append((name, lang))
    return pairs


def stratified_split(
    pairs: list[tuple[str, str]], valid: float = 0.1, test: float = 0.1, seed: int = 0
) -> dict[str, list[tuple[str, str]]]:
    """``{"train", "valid", "test"}``: each language's pairs shuffled (seeded) and split in the
    given fractions (at least one valid and one test example per language)."""
    rng = random.Random(seed)
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:
        by_lang.setdefault(pair[1], []).append(pair)
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    for lang in sorted(by_lang):
        items = by_lang[lang][:]
        rng.shuffle(items)
        n_valid = max(1, round(valid * len(items)))
        n_test = max(1, round(test * len(items)))
        splits["valid"] += items[:n_valid]
        splits["test"] += items[n_valid : n_valid + n_test]
        splits["train"] += items[n_valid + n_test :]
    return splits
