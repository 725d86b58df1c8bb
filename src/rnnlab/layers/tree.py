"""Recursion over trees: batched bottom-up evaluation, recursive networks and Tree-LSTMs.

A chain RNN applies one step function along time; a tree network applies one *composition*
function from the leaves to the root: a node's state is computed from its children's states. All
nodes whose children are already known can be computed together, so a batch of trees runs level
by level (level = height above the leaves), one batched composition per level, never node by node.

A tree cell implements two functions:

=====================  =========================================================================
``leaf(x)``            ``x [n, I]`` word inputs -> state of the ``n`` leaves (``[n, H]`` each)
``compose(children)``  children's states ``[n, K, H]`` -> state of the ``n`` parents ``[n, H]``
=====================  =========================================================================

A parent with fewer than ``K`` children sees zero states in the missing slots, which contribute
exactly nothing in every cell here (zero hidden state and zero memory). The state is a tensor or
``LSTMState(h, c)``; ``hidden(state)`` is what a classifier reads.

Shapes of :class:`TreeEncoder` (N = nodes in the batch, L = leaves, I = input size, H = hidden):

===========  ================================================================================
leaf_inputs  ``[L, I]``, one row per leaf in the batch's node order (``batch.leaf_tokens``)
output       ``[N, H]`` hidden state of every node, in the batch's node order
===========  ================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from rnnlab.cells.lstm import LSTMState
from rnnlab.errors import ConfigError
from rnnlab.sequences import State, map_state
from rnnlab.validation import check_positive


class TreeNode(Protocol):
    """What the batching needs of a tree node: its children, and a word at the leaves."""

    children: Sequence[TreeNode]
    word: str | None


@dataclass
class TreeBatch:
    """Trees flattened into levels for batched bottom-up evaluation.

    Nodes are numbered level by level: the ``L`` leaves first (level 0), then every node of
    height 1, and so on, so each node's children come before it. ``levels[k]`` holds, for the
    nodes of height ``k + 1``, the indices of their children ``[n_k, K_k]`` into a table whose row
    0 is a zero state and row ``j + 1`` is node ``j`` (missing children point at row 0).

    Attributes:
        leaf_tokens: ``[L]`` token id of each leaf.
        levels: children index tables, one per height 1, 2, ...
        labels: ``[N]`` label of every node (``-1`` where a tree has none).
        roots: ``[B]`` node index of each tree's root.
        preorder: ``[N]`` node index of every node, tree by tree, each tree in pre-order.
    """

    leaf_tokens: Tensor
    levels: list[Tensor]
    labels: Tensor
    roots: Tensor
    preorder: Tensor

    @property
    def num_nodes(self) -> int:
        return self.labels.shape[0]

    @property
    def num_trees(self) -> int:
        return self.roots.shape[0]

    def to(self, device: torch.device | str) -> TreeBatch:
        return TreeBatch(
            self.leaf_tokens.to(device),
            [level.to(device) for level in self.levels],
            self.labels.to(device),
            self.roots.to(device),
            self.preorder.to(device),
        )

    @classmethod
    def from_trees(
        cls,
        trees: Sequence[TreeNode],
        token_id: Callable[[str], int],
        label: Callable[[TreeNode], int] | None = None,
    ) -> TreeBatch:
        """Flatten ``trees``; ``token_id`` maps each leaf's word to its id, ``label`` each node
        to its target (``node.label`` by default; return ``-1`` for "no label")."""
        if label is None:
            label = _node_label
        by_height: list[list[TreeNode]] = []
        height: dict[int, int] = {}
        preorder: list[TreeNode] = []
        for tree in trees:
            nodes = list(_preorder(tree))
            preorder.extend(nodes)
            for node in reversed(nodes):
                h = 1 + max((height[id(c)] for c in node.children), default=-1)
                height[id(node)] = h
                while len(by_height) <= h:
                    by_height.append([])
                by_height[h].append(node)
        if len(height) != len(preorder):
            raise ConfigError("a node appears twice in the batch; pass distinct trees")
        index: dict[int, int] = {}
        for level in by_height:
            for node in level:
                index[id(node)] = len(index)
        levels = []
        for level in by_height[1:]:
            width = max(len(node.children) for node in level)
            rows = [[index[id(c)] + 1 for c in node.children] for node in level]
            padded = [row + [0] * (width - len(row)) for row in rows]
            levels.append(torch.tensor(padded, dtype=torch.long))
        ordered = [node for level in by_height for node in level]
        leaves = by_height[0] if by_height else []
        return cls(
            leaf_tokens=torch.tensor([token_id(node.word) for node in leaves], dtype=torch.long),
            levels=levels,
            labels=torch.tensor([label(node) for node in ordered], dtype=torch.long),
            roots=torch.tensor([index[id(tree)] for tree in trees], dtype=torch.long),
            preorder=torch.tensor([index[id(node)] for node in preorder], dtype=torch.long),
        )


def _node_label(node: TreeNode) -> int:
    return int(getattr(node, "label", -1))


def _preorder(tree: TreeNode):
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


class TreeCell(nn.Module):
    """A composition function over trees: :meth:`leaf` for words, :meth:`compose` for parents."""

    input_size: int
    hidden_size: int
    arity: int | None
    """The largest number of children a node may have (``None``: any number)."""

    def leaf(self, x: Tensor) -> State:
        """States of leaves with word inputs ``x [n, I]``."""
        raise NotImplementedError

    def compose(self, children: State) -> State:
        """States of parents from their children's states ``[n, K, H]`` (zeros where missing)."""
        raise NotImplementedError

    def hidden(self, state: State) -> Tensor:
        """The part of the state a classifier reads, ``[n, H]``."""
        return state if isinstance(state, Tensor) else state[0]


class RecursiveCell(TreeCell):
    r"""The recursive neural network of Socher et al.: a parent is a squashed linear map of the
    concatenation of its children; a leaf is its word vector.

    .. math::
        h_{leaf} = x, \qquad h = \tanh(W [h_1; \dots; h_N] + b)

    Args:
        input_size: size of the word vectors; must equal ``hidden_size``.
        hidden_size: size of every node's vector.
        arity: ``N``, the number of children slots (2 for binarised trees such as SST's).

    Example::

        cell = RecursiveCell(50, 50)
        h = TreeEncoder(cell)(batch, embedding(batch.leaf_tokens))   # [N, 50]
    """

    def __init__(self, input_size: int, hidden_size: int, arity: int = 2) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, arity=arity)
        if input_size != hidden_size:
            raise ConfigError(
                f"the recursive network uses word vectors as leaf states: input size "
                f"{input_size} must equal hidden size {hidden_size} (set --embed to --hidden)"
            )
        self.input_size, self.hidden_size, self.arity = input_size, hidden_size, arity
        self.compose_linear = nn.Linear(arity * hidden_size, hidden_size)

    def leaf(self, x: Tensor) -> Tensor:
        return x

    def compose(self, children: Tensor) -> Tensor:
        return torch.tanh(self.compose_linear(_fill_slots(children, self.arity).flatten(1)))


class NaryTreeLSTMCell(TreeCell):
    r"""The N-ary (constituency, "binary" for N = 2) Tree-LSTM of Tai et al. (2015).

    Each child slot ``l`` has its own recurrent matrices and each child its own forget gate:

    .. math::
        i &= \sigma(W^{(i)} x + \textstyle\sum_l U^{(i)}_l h_l + b^{(i)}) \\
        f_k &= \sigma(W^{(f)} x + \textstyle\sum_l U^{(f)}_{kl} h_l + b^{(f)}) \\
        o &= \sigma(W^{(o)} x + \textstyle\sum_l U^{(o)}_l h_l + b^{(o)}) \\
        u &= \tanh(W^{(u)} x + \textstyle\sum_l U^{(u)}_l h_l + b^{(u)}) \\
        c &= i \odot u + \textstyle\sum_l f_l \odot c_l, \qquad h = o \odot \tanh(c)

    Leaves have an input ``x`` and no children; parents (in constituency trees) have children and
    no input, so each uses only its half of the terms. The bias is shared.

    Args:
        input_size: size of the word inputs ``x``.
        hidden_size: size of ``h`` and ``c``.
        arity: ``N``, the number of child slots (2 for SST).
        forget_bias: added to ``b^{(f)}`` at initialisation (default 1.0).

    Example::

        cell = NaryTreeLSTMCell(300, 150)
        h = TreeEncoder(cell)(batch, embedding(batch.leaf_tokens))   # [N, 150]
    """

    def __init__(
        self, input_size: int, hidden_size: int, arity: int = 2, forget_bias: float = 1.0
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, arity=arity)
        self.input_size, self.hidden_size, self.arity = input_size, hidden_size, arity
        self.weight_x = nn.Linear(input_size, 3 * hidden_size, bias=False)  # i, o, u
        self.weight_h = nn.Linear(arity * hidden_size, (3 + arity) * hidden_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))  # i, o, u, f
        with torch.no_grad():
            self.bias[3 * hidden_size :] = forget_bias

    def leaf(self, x: Tensor) -> LSTMState:
        i, o, u = (self.weight_x(x) + self.bias[: 3 * self.hidden_size]).chunk(3, dim=-1)
        c = torch.sigmoid(i) * torch.tanh(u)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)

    def compose(self, children: LSTMState) -> LSTMState:
        h_children, c_children = (_fill_slots(part, self.arity) for part in children)
        size = self.hidden_size
        gates = self.weight_h(h_children.flatten(1))
        i, o, u = (gates[:, : 3 * size] + self.bias[: 3 * size]).chunk(3, dim=-1)
        f = torch.sigmoid(gates[:, 3 * size :].view(-1, self.arity, size) + self.bias[3 * size :])
        c = torch.sigmoid(i) * torch.tanh(u) + (f * c_children).sum(1)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)


class ChildSumTreeLSTMCell(TreeCell):
    r"""The Child-Sum Tree-LSTM of Tai et al. (2015): any number of unordered children, gates
    from the sum of their states, one forget gate per child from that child's own state.

    .. math::
        \tilde h &= \textstyle\sum_k h_k \\
        i &= \sigma(W^{(i)} x + U^{(i)} \tilde h + b^{(i)}), \quad
        o = \sigma(W^{(o)} x + U^{(o)} \tilde h + b^{(o)}), \quad
        u = \tanh(W^{(u)} x + U^{(u)} \tilde h + b^{(u)}) \\
        f_k &= \sigma(W^{(f)} x + U^{(f)} h_k + b^{(f)}) \\
        c &= i \odot u + \textstyle\sum_k f_k \odot c_k, \qquad h = o \odot \tanh(c)

    Leaves have an input and no children; parents have children and no input.

    Args:
        input_size: size of the word inputs ``x``.
        hidden_size: size of ``h`` and ``c``.
        forget_bias: added to ``b^{(f)}`` at initialisation (default 1.0).

    Example::

        cell = ChildSumTreeLSTMCell(300, 150)
        h = TreeEncoder(cell)(batch, embedding(batch.leaf_tokens))   # [N, 150]
    """

    arity = None

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_x = nn.Linear(input_size, 3 * hidden_size, bias=False)  # i, o, u
        self.weight_h_iou = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.weight_h_f = nn.Linear(hidden_size, hidden_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))  # i, o, u, f
        with torch.no_grad():
            self.bias[3 * hidden_size :] = forget_bias

    def leaf(self, x: Tensor) -> LSTMState:
        i, o, u = (self.weight_x(x) + self.bias[: 3 * self.hidden_size]).chunk(3, dim=-1)
        c = torch.sigmoid(i) * torch.tanh(u)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)

    def compose(self, children: LSTMState) -> LSTMState:
        h_children, c_children = children
        size = self.hidden_size
        iou = self.weight_h_iou(h_children.sum(1)) + self.bias[: 3 * size]
        i, o, u = iou.chunk(3, dim=-1)
        f = torch.sigmoid(self.weight_h_f(h_children) + self.bias[3 * size :])
        c = torch.sigmoid(i) * torch.tanh(u) + (f * c_children).sum(1)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)


def _fill_slots(children: Tensor, arity: int) -> Tensor:
    """Pad ``[n, K, H]`` with zero children to ``[n, arity, H]``; more than ``arity`` fails."""
    slots = children.shape[1]
    if slots > arity:
        raise ConfigError(
            f"a node has {slots} children but the cell takes at most {arity}; binarise the "
            "trees or use the child-sum Tree-LSTM"
        )
    if slots == arity:
        return children
    return torch.cat(
        [children, children.new_zeros(children.shape[0], arity - slots, *children.shape[2:])], 1
    )


class TreeEncoder(nn.Module):
    """Runs a :class:`TreeCell` bottom-up over a :class:`TreeBatch`, one batched step per level.

    ``forward(batch, leaf_inputs)`` returns the state of every node (``[N, ...]`` per tensor,
    batch node order); ``cell.hidden(state)`` gives ``[N, H]``.
    """

    def __init__(self, cell: TreeCell) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, batch: TreeBatch, leaf_inputs: Tensor) -> State:
        leaves = self.cell.leaf(leaf_inputs)
        table = map_state(lambda t: torch.cat([t.new_zeros(1, *t.shape[1:]), t]), leaves)
        for children in batch.levels:
            parents = self.cell.compose(map_state(lambda t, index=children: t[index], table))
            table = map_state(lambda t, p: torch.cat([t, p]), table, parents)
        return map_state(lambda t: t[1:], table)


def encode_node_by_node(
    cell: TreeCell, tree: TreeNode, leaf_input: Callable[[str], Tensor]
) -> list[State]:
    """The reference: one node at a time, recursively; states ``[1, ...]`` of ``tree``'s nodes in
    pre-order. ``leaf_input(word)`` is the ``[I]`` input of a leaf."""
    states: dict[int, State] = {}
    for node in reversed(list(_preorder(tree))):
        if not node.children:
            states[id(node)] = cell.leaf(leaf_input(node.word).unsqueeze(0))
        else:
            children = [states[id(child)] for child in node.children]
            states[id(node)] = cell.compose(
                map_state(lambda *parts: torch.stack(parts, 1), *children)
            )
    return [states[id(node)] for node in _preorder(tree)]


TREE_CELLS: dict[str, type[TreeCell]] = {
    "tree-lstm": NaryTreeLSTMCell,
    "child-sum": ChildSumTreeLSTMCell,
    "recursive": RecursiveCell,
}
"""Tree cells by name: ``tree-lstm`` (binary/N-ary Tree-LSTM), ``child-sum``, ``recursive``."""


def create_tree_cell(name: str, input_size: int, hidden_size: int) -> TreeCell:
    """A tree cell by name (see :data:`TREE_CELLS`)."""
    if name not in TREE_CELLS:
        raise ConfigError(f"unknown tree model {name!r}; choose one of: {', '.join(TREE_CELLS)}")
    return TREE_CELLS[name](input_size, hidden_size)
