"""``ptb-char``: the character-level language model on Penn Treebank, in bits per character.

The ``charlm`` task (truncated BPTT, :class:`~rnnlab.models.language_model.LanguageModel`) on
PTB's own character splits (:func:`rnnlab.data.ptb.load_ptb_chars`: 50 symbols, ``_`` between
words, ``"\\n"`` ending each sentence) instead of ``--data``/``--splits``. ``--eval-examples N``
evaluates on the first ``N`` characters of the validation and test text (all by default).
Defaults follow Bai et al.'s LSTM settings: 2x600, embedding 120, clip 0.5.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rnnlab.data.ptb import load_ptb_chars
from rnnlab.data.text import Corpus
from rnnlab.tasks.base import register
from rnnlab.tasks.charlm import CharLM
from rnnlab.tasks.supervised import add_common_arguments


@register("ptb-char")
class PTBChar(CharLM):
    """Character-level PTB; ``bpc`` of the test split is the published number."""

    defaults: ClassVar[dict[str, Any]] = {
        **CharLM.defaults,
        "hidden": 600,
        "layers": 2,
        "embed": 120,
        "clip_norm": 0.5,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        add_common_arguments(parser)

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            limit = getattr(self.config, "eval_examples", None)
            data_dir = self.config.data_dir
            splits = {
                split: load_ptb_chars(split, data_dir)[: None if split == "train" else limit]
                for split in ("train", "valid", "test")
            }
            fingerprint = {
                "source": "ptb (ptb.char.{train,valid,test}.txt)",
                "dataset": "ptb",
                "files": 3,
                "split_characters": {k: len(v) for k, v in splits.items()},
            }
            self._corpus = Corpus(splits["train"], splits["valid"], splits["test"], fingerprint)
        return self._corpus
