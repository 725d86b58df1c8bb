"""The Stanford Sentiment Treebank: PTB-bracket trees with a sentiment label on every node.

Each line of ``train.txt`` / ``dev.txt`` / ``test.txt`` is one sentence's binarised parse tree,
every node labelled 0 (very negative) .. 4 (very positive)::

    (3 (2 It) (4 (2 's) (3 (2 a) (4 lovely))))

:func:`parse_tree` turns such a line into a :class:`Tree` whose :meth:`Tree.to_string` gives the
line back exactly; :func:`load_sst` reads a whole split (splits: train 8544, dev 1101, test 2210
sentences).

Socher et al., "Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank",
EMNLP 2013.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset
from rnnlab.errors import DataError

NUM_CLASSES = 5
"""Fine-grained labels: 0 very negative, 1 negative, 2 neutral, 3 positive, 4 very positive."""

SPLITS = ("train", "dev", "test")

_COMMIT = "555a0d9d2cf74b0322a3366da927cc0d61dda171"
_BASE = f"https://raw.githubusercontent.com/Shawn1993/cnn-text-classification-pytorch/{_COMMIT}"

SST = register_dataset(
    DatasetInfo(
        name="sst",
        files=(
            RemoteFile(
                "train.txt",
                (f"{_BASE}/trees/train.txt",),
                ("e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",),
            ),
            RemoteFile(
                "dev.txt",
                (f"{_BASE}/trees/dev.txt",),
                ("0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",),
            ),
            RemoteFile(
                "test.txt",
                (f"{_BASE}/trees/test.txt",),
                ("6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",),
            ),
        ),
        citation=(
            "R. Socher, A. Perelygin, J. Wu, J. Chuang, C. D. Manning, A. Ng, C. Potts, "
            '"Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank", '
            "EMNLP 2013"
        ),
        license="no data licence stated by the source (https://nlp.stanford.edu/sentiment/)",
        description="Stanford Sentiment Treebank, fine-grained labels 0-4 on every node",
    )
)


@dataclass
class Tree:
    """One node of a labelled constituency tree.

    A leaf has a ``word`` and no ``children``; an inner node has children and ``word=None``.
    """

    label: int
    children: list[Tree] = field(default_factory=list)
    word: str | None = None

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def leaves(self) -> list[str]:
        """The words of the sentence, left to right."""
        return [node.word for node in self.nodes() if node.word is not None]

    def sentence(self) -> str:
        """The words joined by single spaces."""
        return " ".join(self.leaves())

    def nodes(self) -> Iterator[Tree]:
        """Every node in pre-order (a node before its children, children left to right)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def height(self) -> int:
        """0 for a leaf, else 1 + the largest height of the children."""
        heights: dict[int, int] = {}
        for node in reversed(list(self.nodes())):
            heights[id(node)] = 1 + max((heights[id(c)] for c in node.children), default=-1)
        return heights[id(self)]

    def to_string(self) -> str:
        """The PTB-bracket form; ``parse_tree(line).to_string() == line``."""
        parts: list[str] = []
        stack: list[Tree | str] = [self]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            elif item.is_leaf:
                parts.append(f"({item.label} {item.word})")
            else:
                parts.append(f"({item.label} ")
                stack.append(")")
                for i, child in enumerate(reversed(item.children)):
                    stack.append(child)
                    if i < len(item.children) - 1:
                        stack.append(" ")
        return "".join(parts)

    def __str__(self) -> str:
        return self.to_string()


_TOKEN = re.compile(r"\(|\)|[^ \n\r\t()]+")
"""Brackets and words; words split on ASCII whitespace only (3 SST words hold a no-break space)."""


def parse_tree(line: str) -> Tree:
    """Parse one PTB-bracket line such as ``(3 (2 It) (4 lovely))`` into a :class:`Tree`."""
    text = line.strip(" \n\r\t")
    tokens = _TOKEN.findall(text)
    stack: list[Tree] = []
    root: Tree | None = None
    i = 0
    try:
        while i < len(tokens):
            token = tokens[i]
            if token == "(":
                label = int(tokens[i + 1])
                if not 0 <= label < NUM_CLASSES:
                    raise ValueError(f"label {label} outside 0..{NUM_CLASSES - 1}")
                if tokens[i + 2] not in ("(", ")"):
                    if tokens[i + 3] != ")":
                        raise ValueError("a leaf holds exactly one word")
                    node = Tree(label, word=tokens[i + 2])
                    i += 4
                    if stack:
                        stack[-1].children.append(node)
                    elif root is None:
                        root = node
                    else:
                        raise ValueError("text after the end of the tree")
                    continue
                node = Tree(label)
                if stack:
                    stack[-1].children.append(node)
                elif root is None:
                    root = node
                else:
                    raise ValueError("text after the end of the tree")
                stack.append(node)
                i += 2
            elif token == ")":
                if not stack:
                    raise ValueError("unbalanced ')'")
                stack.pop()
                i += 1
            else:
                raise ValueError(f"unexpected word {token!r} outside a leaf")
    except (IndexError, ValueError) as error:
        raise DataError(f"not a PTB-bracket tree ({error}): {text[:80]!r}") from None
    if root is None or stack:
        raise DataError(f"not a complete PTB-bracket tree: {text[:80]!r}")
    return root


def read_trees(path: str | Path) -> list[Tree]:
    """Every tree of a file with one PTB-bracket tree per line (blank lines skipped)."""
    with open(path, encoding="utf-8") as handle:
        return [parse_tree(line) for line in handle if line.strip()]


def load_sst(split: str, data_dir: str | Path | None = None, download: bool = True) -> list[Tree]:
    """The trees of one SST split (``"train"``, ``"dev"`` or ``"test"``), fetched and verified."""
    if split not in SPLITS:
        raise DataError(f"unknown SST split {split!r}; choose one of: {', '.join(SPLITS)}")
    return read_trees(fetch("sst", f"{split}.txt", data_dir=data_dir, download=download))


def binary_label(label: int) -> int | None:
    """The binary sentiment of a fine-grained label: 0 for 0-1, 1 for 3-4, ``None`` for 2."""
    if label == 2:
        return None
    return int(label > 2)
