"""Interpretable cells: label each character of Python source and find the cells that track it.

:func:`label_python` computes, from Python's own ``tokenize``, one value per character:

================  ==========================================================================
in_string         1 inside a string literal (quotes and f-string parts included)
in_comment        1 inside a ``#`` comment
bracket_depth     number of ``( [ {`` open before the character (a closing bracket counts as
                  still inside)
indent_level      the INDENT level of the character's line (0 at module level)
column            position of the character in its line (0-based)
in_block          1 on the lines of the body of an ``if``/``elif``/``for``/``while`` statement
================  ==========================================================================

:func:`rank_cells` scores every hidden unit's activation ``[T, H]`` against every property:
the Pearson correlation and, for the 0/1 properties, the accuracy of the best one-cell threshold
classifier (``act > theta`` or ``act < theta``). The notes' quote-detection cell is the top cell
of ``in_string``.
"""

from __future__ import annotations

import io
import tokenize

import numpy as np

PROPERTIES = ("in_string", "in_comment", "bracket_depth", "indent_level", "column", "in_block")
BINARY = ("in_string", "in_comment", "in_block")
BLOCK_KEYWORDS = {"if", "elif", "for", "while"}
OPEN, CLOSE = "([{", ")]}"
_STRING_TYPES = {tokenize.STRING}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _line_offsets(text: str) -> list[int]:
    offsets, total = [0], 0
    for line in text.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


def label_python(text: str) -> dict[str, np.ndarray]:
    """Per-character labels (each ``[len(text)]``, int) of Python source ``text``.

    ``text`` must tokenize (e.g. whole files); :func:`label_prefix` labels a part of a text."""
    n = len(text)
    labels = {name: np.zeros(n, dtype=np.int64) for name in PROPERTIES}
    offsets = _line_offsets(text)

    def pos(row_col: tuple[int, int]) -> int:
        return offsets[row_col[0] - 1] + row_col[1]

    for start, end in zip(offsets[:-1], offsets[1:]):
        labels["column"][start:end] = np.arange(end - start)

    depth_events = np.zeros(n + 1, dtype=np.int64)
    line_indent = np.zeros(len(offsets), dtype=np.int64)
    line_block = np.zeros(len(offsets), dtype=np.int64)
    blocks: list[bool] = []  # one per open INDENT: does it belong to an if/for/while body?
    line_first_word: str | None = None
    header_word: str | None = None
    fstring_starts: list[int] = []
    at_line_start = True
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.INDENT:
            blocks.append(header_word in BLOCK_KEYWORDS)
            continue
        if tok.type == tokenize.DEDENT:
            blocks.pop()
            continue
        if tok.type == tokenize.NEWLINE:
            header_word, at_line_start = line_first_word, True
            continue
        if tok.type in (tokenize.NL, tokenize.ENDMARKER):
            continue
        a, b = pos(tok.start), pos(tok.end)
        if at_line_start and tok.type != tokenize.COMMENT:
            line_first_word, at_line_start = tok.string, False
        for row in range(tok.start[0], tok.end[0] + 1):
            line_indent[row - 1] = max(line_indent[row - 1], len(blocks))
            line_block[row - 1] |= any(blocks)
        if tok.type in _STRING_TYPES:
            labels["in_string"][a:b] = 1
        elif _FSTRING_START is not None and tok.type == _FSTRING_START:
            fstring_starts.append(a)
        elif _FSTRING_END is not None and tok.type == _FSTRING_END:
            labels["in_string"][fstring_starts.pop() : b] = 1
        elif tok.type == tokenize.COMMENT:
            labels["in_comment"][a:b] = 1
        elif tok.type == tokenize.OP and tok.string in OPEN:
            depth_events[b] += 1
        elif tok.type == tokenize.OP and tok.string in CLOSE:
            depth_events[b] -= 1
    labels["bracket_depth"] = np.cumsum(depth_events)[:n]
    for row, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
        labels["indent_level"][start:end] = line_indent[row]
        labels["in_block"][start:end] = line_block[row]
    return labels


def label_prefix(text: str, max_chars: int, offset: int = 0) -> tuple[str, dict[str, np.ndarray]]:
    """Up to ``max_chars`` characters of ``text`` from the line start at or after ``offset``
    (cut at a line end), and their labels.

    The labels come from tokenizing the whole ``text`` when it tokenizes, so a cut inside a
    string or a block is labelled right; otherwise (offset 0 only) from the longest prefix of
    ``text`` that tokenizes."""
    if offset > 0:
        newline = text.find("\n", offset - 1)
        offset = newline + 1 if newline >= 0 else len(text)
    lines = text[offset : offset + max_chars].splitlines(keepends=True)
    if len(lines) > 1 and not lines[-1].endswith("\n"):
        lines.pop()
    part = "".join(lines)
    try:
        labels = label_python(text)
        return part, {name: v[offset : offset + len(part)] for name, v in labels.items()}
    except (tokenize.TokenError, IndentationError, SyntaxError):
        if offset > 0:
            raise ValueError("the text does not tokenize as Python; use offset 0") from None
    while lines:
        candidate = "".join(lines)
        try:
            return candidate, label_python(candidate)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            lines.pop()
    raise ValueError("no prefix of the text tokenizes as Python")


def threshold_accuracy(activation: np.ndarray, target: np.ndarray) -> tuple[float, float, int]:
    """Best accuracy of ``sign * (activation - theta) > 0`` predicting 0/1 ``target``:
    ``(accuracy, theta, sign)`` over all thresholds and both signs (O(T log T))."""
    order = np.argsort(activation, kind="stable")
    a, y = activation[order], target[order].astype(np.int64)
    total_pos = int(y.sum())
    n = len(y)
    # predict 1 for the top n-i values (index >= i): correct = zeros below + ones above
    zeros_below = np.concatenate([[0], np.cumsum(1 - y)])
    ones_above = total_pos - np.concatenate([[0], np.cumsum(y)])
    correct_up = zeros_below + ones_above
    correct_down = n - correct_up
    # a threshold may only fall between distinct values
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = a[1:] != a[:-1]
    best_up, best_down = np.where(valid, correct_up, -1), np.where(valid, correct_down, -1)
    i_up, i_down = int(best_up.argmax()), int(best_down.argmax())
    edges = np.concatenate([[a[0] - 1], (a[:-1] + a[1:]) / 2, [a[-1] + 1]]) if n else np.zeros(1)
    if best_up[i_up] >= best_down[i_down]:
        return best_up[i_up] / n, float(edges[i_up]), 1
    return best_down[i_down] / n, float(edges[i_down]), -1


def correlations(activations: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``activations [T, H]`` with ``target [T]`` (0 where
    either is constant)."""
    a = activations - activations.mean(0)
    y = target - target.mean()
    denom = np.sqrt((a * a).sum(0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * y[:, None]).sum(0) / denom
    return np.nan_to_num(r)


def rank_cells(
    activations: np.ndarray, labels: dict[str, np.ndarray], top: int = 5
) -> dict[str, list[dict]]:
    """For each property, the ``top`` cells by ``|correlation|``: ``[{"cell", "correlation",
    "accuracy", "baseline"}]``; ``accuracy`` (one-cell threshold classifier) and ``baseline``
    (always predicting the majority class) only for the 0/1 properties. Properties that are
    constant on this text are left out."""
    activations = np.asarray(activations, dtype=np.float64)
    ranking = {}
    for name, target in labels.items():
        target = target.astype(np.float64)
        if target.min() == target.max():
            continue
        r = correlations(activations, target)
        best = np.argsort(-np.abs(r), kind="stable")[:top]
        rows = []
        for cell in best:
            row = {"cell": int(cell), "correlation": float(r[cell])}
            if name in BINARY:
                row["accuracy"] = threshold_accuracy(activations[:, cell], target)[0]
                row["baseline"] = float(max(target.mean(), 1 - target.mean()))
            rows.append(row)
        ranking[name] = rows
    return ranking
