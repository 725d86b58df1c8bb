"""Tokenize labels on a hand-written snippet, cell ranking, and the HTML page in a real browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnlab.analysis.cell_page import write_cell_page
from rnnlab.analysis.interpret import label_python, rank_cells, threshold_accuracy

SNIPPET = (
    'x = [1, (2,\n   3)]  # c\nif x:\n    s = "a#b" + f"{x}y"\n    for i in x:\n        pass\n'
)


def row(labels, name):
    return "".join(str(int(v)) for v in labels[name])


def test_tokenize_labels_on_a_snippet():
    labels = label_python(SNIPPET)
    lines = SNIPPET.split("\n")
    assert len(labels["in_string"]) == len(SNIPPET)
    s = SNIPPET.index('"a#b"')
    f = SNIPPET.index('f"{x}y"')
    expected_string = np.zeros(len(SNIPPET), dtype=int)
    expected_string[s : s + 5] = 1
    expected_string[f : f + 7] = 1
    assert row(labels, "in_string") == "".join(map(str, expected_string))
    c = SNIPPET.index("# c")
    # the '#' inside "a#b" is not a comment
    assert np.flatnonzero(labels["in_comment"]).tolist() == [c, c + 1, c + 2]
    # depth: '[' itself is outside, its contents inside; a closing bracket is still inside
    assert row(labels, "bracket_depth")[: len(lines[0])] == "00000111122"
    assert row(labels, "bracket_depth")[len(lines[0]) + 1 :][:7] == "2222210"
    starts = np.cumsum([0] + [len(line) + 1 for line in lines])
    indent = [int(labels["indent_level"][starts[i]]) for i in range(6)]
    assert indent == [0, 0, 0, 1, 1, 2]
    block = [int(labels["in_block"][starts[i]]) for i in range(6)]
    assert block == [0, 0, 0, 1, 1, 1]
    assert labels["column"][starts[3] : starts[3] + 5].tolist() == [0, 1, 2, 3, 4]


def test_block_labels_skip_def_and_class_bodies():
    labels = label_python("def f():\n    return 1\nwhile True:\n    break\n")
    assert labels["in_block"].tolist() == [0] * 22 + [0] * 12 + [1] * 10


def test_threshold_accuracy_and_ranking_find_the_planted_cell():
    rng = np.random.default_rng(0)
    target = (rng.random(500) < 0.3).astype(int)
    acts = rng.normal(size=(500, 6))
    acts[:, 4] = -2.0 * target + 0.1 * rng.normal(size=500)  # cell 4 switches off inside
    accuracy, theta, sign = threshold_accuracy(acts[:, 4], target)
    assert accuracy == 1.0 and sign == -1 and -1.7 < theta < -0.3
    ranking = rank_cells(acts, {"in_string": target, "column": np.arange(500)}, top=2)
    assert ranking["in_string"][0]["cell"] == 4
    assert ranking["in_string"][0]["correlation"] < -0.95
    assert "accuracy" not in ranking["column"][0]


def _chromium_page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("no chromium (apt-get install -y chromium)")
    return sync_api, executable


def test_cell_page_in_a_headless_browser(tmp_path):
    sync_api, executable = _chromium_page()
    text = 'print("hi")  # say\n'
    acts = np.zeros((len(text), 3))
    acts[:, 0] = label_python(text)["in_string"] * 2 - 1
    acts[:, 1] = -acts[:, 0]
    acts[:, 2] = label_python(text)["in_comment"]
    ranking = rank_cells(acts, label_python(text), top=2)
    page_path = write_cell_page(tmp_path / "page.html", text, acts, ranking)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=flags)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            spans = page.locator("#text span")
            assert spans.count() == len(text)
            colours = spans.evaluate_all("els => els.map(e => e.style.backgroundColor)")
            first = str(ranking["in_string"][0]["cell"])
            assert page.evaluate("document.body.dataset.cell") == first
            i_string, i_code = text.index('"hi"') + 1, 0
            assert colours[i_string] != colours[i_code]  # the string cell colours the string
            page.select_option("#cell", "2")
            after = spans.evaluate_all("els => els.map(e => e.style.backgroundColor)")
            assert page.evaluate("document.body.dataset.cell") == "2"
            assert after != colours
            assert after[text.index("#")] != after[0]  # cell 2 lights the comment
            assert page.locator("a.cell").count() == 2 * len(ranking)
            assert not errors
        finally:
            browser.close()
