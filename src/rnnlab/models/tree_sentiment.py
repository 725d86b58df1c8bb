"""Sentiment of every node of a parse tree: word embeddings, a tree encoder, a per-node classifier.

Shapes (N = nodes in the batch, L = leaves, C = classes):

===========  =====================================================================
batch        a :class:`~rnnlab.layers.tree.TreeBatch` (``leaf_tokens [L]``, levels)
output       ``[N, C]`` logits of every node, in the batch's node order
===========  =====================================================================
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnlab.layers.tree import TreeBatch, TreeEncoder, create_tree_cell


class TreeSentimentModel(nn.Module):
    """Embeddings -> tree cell bottom-up over each tree -> dropout -> linear classifier per node.

    Args:
        vocab_size: number of word ids (including the unknown word).
        embed_size: word vector size (the recursive network needs it equal to ``hidden_size``).
        hidden_size: node state size.
        cell: ``"tree-lstm"`` (binary Tree-LSTM), ``"child-sum"`` or ``"recursive"``.
        num_classes: 5 (fine-grained) or 2 (binary).
        dropout: applied to the word vectors and to the node states before the classifier.

    Example::

        model = TreeSentimentModel(len(vocab), 300, 150)
        logits = model(TreeBatch.from_trees(trees, vocab.__getitem__))   # [N, 5]
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        cell: str = "tree-lstm",
        num_classes: int = 5,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.encoder = TreeEncoder(create_tree_cell(cell, embed_size, hidden_size))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, batch: TreeBatch) -> Tensor:
        words = self.dropout(self.embedding(batch.leaf_tokens))
        states = self.encoder(batch, words)
        return self.classifier(self.dropout(self.encoder.cell.hidden(states)))
