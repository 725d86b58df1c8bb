"""SST tree parsing: exact round trips on hand-written and real lines, clear errors."""

from __future__ import annotations

import pytest

from rnnlab.data.sst import SPLITS, Tree, binary_label, load_sst, parse_tree
from rnnlab.errors import DataError


@pytest.mark.parametrize(
    "line",
    [
        "(2 word)",
        "(3 (2 It) (4 lovely))",
        "(1 (2 (2 A) (2 (2 mimetic) (2 approximation))) (1 (2 of) (1 (4 better) (2 films))))",
        "(2 (2 8\xa01\\/2) (2 -LRB-))",
        "(0 (1 (2 ``) (1 Bad)) (2 ''))",
    ],
)
def test_hand_written_lines_round_trip(line):
    assert parse_tree(line).to_string() == line


def test_structure_of_a_parsed_tree():
    tree = parse_tree("(3 (2 It) (4 (2 's) (4 lovely)))")
    assert tree.label == 3 and tree.word is None and len(tree.children) == 2
    assert tree.leaves() == ["It", "'s", "lovely"]
    assert tree.sentence() == "It 's lovely"
    assert [n.label for n in tree.nodes()] == [3, 2, 4, 2, 4]
    assert tree.height() == 2
    assert tree.children[0] == Tree(2, word="It")


@pytest.mark.parametrize(
    "line", ["(3 (2 It) (4 lovely)", "(3 (2 It)) )", "(7 word)", "(2 two words)", "word", ""]
)
def test_malformed_lines_raise_data_error(line):
    with pytest.raises(DataError):
        parse_tree(line)


def test_binary_labels_drop_neutral():
    assert [binary_label(k) for k in range(5)] == [0, 0, None, 1, 1]


def test_real_sst_lines_round_trip(data_dir):
    sizes = {"train": 8544, "dev": 1101, "test": 2210}
    for split in SPLITS:
        with open(data_dir / "sst" / f"{split}.txt", encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for line in handle]
        assert len(lines) == sizes[split]
        step = 1 if split == "dev" else 10
        for line in lines[::step]:
            assert parse_tree(line).to_string() == line


def test_load_sst_reads_a_split(data_dir):
    trees = load_sst("dev", data_dir=data_dir, download=False)
    assert len(trees) == 1101
    assert trees[0].sentence().startswith("It 's a lovely film with lovely performances")
    assert all(0 <= node.label <= 4 for tree in trees[:50] for node in tree.nodes())
