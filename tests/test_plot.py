"""``rnnlab plot --run DIR`` draws a run's metrics to a PNG."""

from __future__ import annotations

import json

from rnnlab.cli.main import main


def test_plot_writes_a_png_with_every_panel(tmp_path, capsys):
    records = [
        {"step": 10, "split": "train", "loss": 2.0, "lr": 1e-3, "clipped": 0.1, "grad_norm": 1.0},
        {"step": 20, "split": "train", "loss": 1.5, "lr": 1e-3, "clipped": 0.0, "grad_norm": 0.5},
        {"step": 20, "split": "valid", "loss": 1.7, "bpc": 2.45},
    ]
    records[0]["grad_norm/layers.0"] = records[1]["grad_norm/layers.0"] = 0.3
    lines = [json.dumps(r) for r in records] + ['{"step": 30, "spl']  # cut by a kill
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["plot", "--run", str(tmp_path)]) == 0
    png = tmp_path / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "loss, valid bpc, learning rate, clip rate, gradient norms" in out


def test_plot_of_a_directory_without_metrics_is_one_line(tmp_path, capsys):
    assert main(["plot", "--run", str(tmp_path)]) == 2
    assert "has no metrics.jsonl" in capsys.readouterr().err
