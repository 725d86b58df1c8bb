"""Tree cells: batched level-by-level evaluation equals node-by-node evaluation; gradients."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data.sst import Tree, parse_tree
from rnnlab.errors import ConfigError
from rnnlab.layers.tree import (
    ChildSumTreeLSTMCell,
    NaryTreeLSTMCell,
    RecursiveCell,
    TreeBatch,
    TreeEncoder,
    encode_node_by_node,
)
from rnnlab.models.tree_sentiment import TreeSentimentModel
from rnnlab.sequences import map_state

LINES = [
    "(3 (2 It) (4 (2 's) (3 (2 a) (4 (3 lovely) (2 film)))))",
    "(1 bad)",
    "(2 (2 (2 The) (2 Rock)) (2 .))",
    "(0 (1 (2 not) (0 (1 very) (0 good))) (2 (2 at) (2 all)))",
]


def _vocab(trees):
    words = sorted({w for tree in trees for w in tree.leaves()})
    return {w: i for i, w in enumerate(words)}


def _check_batched_equals_node_by_node(cell, trees):
    vocab = _vocab(trees)
    embedding = torch.randn(len(vocab), cell.input_size, dtype=torch.float64)
    batch = TreeBatch.from_trees(trees, vocab.__getitem__)
    batched = TreeEncoder(cell)(batch, embedding[batch.leaf_tokens])
    reference = []
    for tree in trees:
        reference += encode_node_by_node(cell, tree, lambda word: embedding[vocab[word]])
    reference = map_state(lambda *parts: torch.cat(parts), *reference)
    batched = map_state(lambda t: t[batch.preorder], batched)
    for got, want in zip(map_state(lambda t: (t,), batched), map_state(lambda t: (t,), reference)):
        torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-12)
    return batch


CELLS = {
    "recursive": lambda: RecursiveCell(6, 6),
    "tree-lstm": lambda: NaryTreeLSTMCell(6, 5),
    "child-sum": lambda: ChildSumTreeLSTMCell(6, 5),
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_batched_equals_node_by_node_on_hand_written_trees(name):
    trees = [parse_tree(line) for line in LINES]
    batch = _check_batched_equals_node_by_node(CELLS[name]().double(), trees)
    assert len(batch.levels) == max(tree.height() for tree in trees)
    assert batch.labels[batch.roots].tolist() == [3, 1, 2, 0]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_batched_equals_node_by_node_on_real_sst_trees(name, data_dir):
    with open(data_dir / "sst" / "dev.txt", encoding="utf-8") as handle:
        trees = [parse_tree(next(handle)) for _ in range(30)]
    _check_batched_equals_node_by_node(CELLS[name]().double(), trees)


def test_unary_and_wide_nodes():
    """Nodes with one child (zero state in the other slot) and child-sum with three children."""
    unary = Tree(2, [Tree(3, [Tree(1, word="a"), Tree(2, word="b")])])
    _check_batched_equals_node_by_node(NaryTreeLSTMCell(4, 3).double(), [unary])
    _check_batched_equals_node_by_node(RecursiveCell(4, 4).double(), [unary])
    wide = Tree(2, [Tree(1, word="a"), Tree(2, word="b"), Tree(4, word="c")])
    _check_batched_equals_node_by_node(ChildSumTreeLSTMCell(4, 3).double(), [wide, unary])
    with pytest.raises(ConfigError, match="twice"):
        TreeBatch.from_trees([unary, unary], {"a": 0, "b": 1}.__getitem__)
    with pytest.raises(ConfigError, match="at most 2"):
        _check_batched_equals_node_by_node(NaryTreeLSTMCell(4, 3).double(), [wide])


def test_forget_gate_per_child():
    """Each child's memory passes through its own forget gate: with the input and output gates
    shut and forget gates that differ by slot, the parent's memory is the gated sum."""
    cell = NaryTreeLSTMCell(2, 3).double()
    size = 3
    with torch.no_grad():
        cell.weight_h.weight.zero_()
        cell.bias.zero_()
        cell.bias[:size] = -1e3  # input gate shut
        cell.bias[3 * size :] = 0.0
        cell.weight_h.weight[3 * size : 4 * size, :size] = torch.eye(size) * 50  # f_1 sees h_1
    h = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    c = torch.tensor([[[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]], dtype=torch.float64)
    parent = cell.compose((h, c))
    torch.testing.assert_close(parent.c, torch.tensor([[2.0, 3.0, 4.0]]).double() + 0.5 * c[:, 1])


@pytest.mark.parametrize("name", ["tree-lstm", "child-sum", "recursive"])
def test_gradcheck(name):
    trees = [parse_tree(line) for line in LINES[:3]]
    vocab = _vocab(trees)
    cell = {
        "tree-lstm": lambda: NaryTreeLSTMCell(3, 2),
        "child-sum": lambda: ChildSumTreeLSTMCell(3, 2),
        "recursive": lambda: RecursiveCell(3, 3),
    }[name]().double()
    encoder = TreeEncoder(cell)
    batch = TreeBatch.from_trees(trees, vocab.__getitem__)
    embedding = torch.randn(len(vocab), 3, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in cell.named_parameters()]

    def run(embedding, *weights):
        params = dict(zip(names, weights))
        state = torch.func.functional_call(
            encoder,
            {f"cell.{k}": v for k, v in params.items()},
            (batch, embedding[batch.leaf_tokens]),
        )
        return cell.hidden(state)

    weights = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (embedding, *weights))


def test_model_output_shape_and_training_step():
    trees = [parse_tree(line) for line in LINES]
    vocab = _vocab(trees)
    batch = TreeBatch.from_trees(trees, vocab.__getitem__)
    model = TreeSentimentModel(len(vocab), 8, 8, cell="tree-lstm")
    logits = model(batch)
    assert logits.shape == (batch.num_nodes, 5)
    loss = torch.nn.functional.cross_entropy(logits, batch.labels)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ConfigError, match="must equal hidden size"):
        TreeSentimentModel(len(vocab), 8, 6, cell="recursive")
