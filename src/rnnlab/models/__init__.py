"""Models: the shapes of recurrent tasks, each over any registered cell.

=======================  ===========================================================
LanguageModel            next-token prediction (see ``rnnlab.models.language_model``)
TreeSentimentModel       trees: see ``rnnlab.models.tree_sentiment``
SequenceClassifier       many-to-one: last / mean / max / attention pooling
SequenceTagger           many-to-many, aligned: one output per input step
ConditionalGenerator     one-to-many: a vector (or class) to a sequence
Seq2Seq                  encoder-decoder with optional attention, greedy and beam search
=======================  ===========================================================
"""

from rnnlab.models.classifier import SequenceClassifier
from rnnlab.models.decoder import RecurrentDecoder
from rnnlab.models.encoder import RecurrentEncoder
from rnnlab.models.generator import ConditionalGenerator
from rnnlab.models.seq2seq import Seq2Seq
from rnnlab.models.tagger import SequenceTagger

__all__ = [
    "ConditionalGenerator",
    "RecurrentDecoder",
    "RecurrentEncoder",
    "Seq2Seq",
    "SequenceClassifier",
    "SequenceTagger",
]
