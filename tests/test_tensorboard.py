"""``rnnlab train --tensorboard``: event files hold every number of ``metrics.jsonl``."""

from __future__ import annotations

import json
import sys

import pytest

from rnnlab.cli.main import main

TINY = ["--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch-size", "4"]


def _train(tmp_path, *extra: str) -> int:
    data = tmp_path / "text.txt"
    data.write_text("abc abd abe " * 100)
    args = ["train", "--data", str(data), *TINY, "--max-steps", "6", "--log-every", "2"]
    return main([*args, "--eval-every", "3", "--clip-norm", "1", *extra])


def test_event_files_hold_the_metrics_rows(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert _train(tmp_path, "--tensorboard", "--out", str(run)) == 0
    capsys.readouterr()
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        for name, value in row.items():
            if name not in ("step", "split"):
                expected.setdefault(f"{row['split']}/{name}", []).append((row["step"], value))
    # the rows this run must have logged, so that the comparison below covers them
    for tag in ("train/loss", "train/lr", "train/clipped_fraction", "train/grad_norm/layers.0"):
        assert [step for step, _ in expected[tag]] == [2, 4, 6]
    assert [step for step, _ in expected["valid/bpc"]] == [3, 6]
    assert any(tag.startswith("spectrum/") for tag in expected)

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == sorted(expected)
    for tag, rows in expected.items():
        got = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [step for step, _ in got] == [step for step, _ in rows], tag
        assert [value for _, value in got] == pytest.approx(
            [value for _, value in rows], rel=1e-6, abs=1e-9
        ), tag


def test_missing_tensorboard_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises
    run = tmp_path / "run"
    assert _train(tmp_path, "--tensorboard", "--out", str(run)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'rnnlab[tensorboard]'" in err[0]
    assert not run.exists()  # failed before the run directory was made
