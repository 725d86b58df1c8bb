"""A self-contained HTML page that colours text by one hidden cell's activation.

Like the notes' quote-detection and if-statement cells: each character's background is green for
a positive activation and red for a negative one, stronger for larger magnitudes (scaled per cell
by its largest absolute activation). A menu and the table of top cells per property switch the
cell. Everything (text, activations as base64 int8, script) is inline: open the file anywhere.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
#text { font-family: monospace; white-space: pre; line-height: 1.35; border: 1px solid #ccc;
        padding: 0.6em; overflow-x: auto; }
table { border-collapse: collapse; margin-bottom: 1em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; font-size: 13px; text-align: right; }
a.cell { cursor: pointer; color: #1a4fb0; }
</style></head>
<body>
<h2>__TITLE__</h2>
<p>Background: <span style="background:rgb(60,180,60)">positive</span> /
<span style="background:rgb(220,60,60)">negative</span> activation of the chosen cell (scaled by
its largest |activation| on this text).
Cell: <select id="cell"></select> <span id="info"></span></p>
<h3>Top cells per property</h3>
<div id="ranking"></div>
<div id="text"></div>
<script>
const DATA = __DATA__;
const raw = atob(DATA.activations);
const T = DATA.text.length, H = DATA.hidden;
const acts = new Int8Array(raw.length);
for (let i = 0; i < raw.length; i++) acts[i] = raw.charCodeAt(i) << 24 >> 24;
const textDiv = document.getElementById("text");
const spans = [];
for (const ch of DATA.text) {
  const s = document.createElement("span");
  s.textContent = ch;
  spans.push(s);
  textDiv.appendChild(s);
}
function colour(q) {
  const a = Math.abs(q) / 127;
  const [r, g, b] = q >= 0 ? [60, 180, 60] : [220, 60, 60];
  const mix = (c) => Math.round(255 + (c - 255) * a);
  return "rgb(" + mix(r) + "," + mix(g) + "," + mix(b) + ")";
}
function show(cell) {
  cell = Number(cell);
  for (let t = 0; t < T; t++) spans[t].style.backgroundColor = colour(acts[t * H + cell]);
  document.getElementById("cell").value = String(cell);
  document.getElementById("info").textContent =
    "max |activation| of cell " + cell + ": " + DATA.scale[cell].toFixed(3);
  document.body.dataset.cell = String(cell);
}
const select = document.getElementById("cell");
for (let h = 0; h < H; h++) {
  const o = document.createElement("option");
  o.value = String(h); o.textContent = "cell " + h;
  select.appendChild(o);
}
select.addEventListener("change", () => show(select.value));
let table = "<table><tr><th>property</th><th>rank</th><th>cell</th><th>correlation</th>" +
            "<th>threshold accuracy</th><th>majority baseline</th></tr>";
for (const [prop, rows] of Object.entries(DATA.ranking)) {
  rows.forEach((r, i) => {
    const acc = r.accuracy === undefined ? "" : r.accuracy.toFixed(3);
    const base = r.baseline === undefined ? "" : r.baseline.toFixed(3);
    table += "<tr><td>" + (i ? "" : prop) + "</td><td>" + (i + 1) + "</td><td><a class='cell' " +
             "data-cell='" + r.cell + "'>" + r.cell + "</a></td><td>" + r.correlation.toFixed(3) +
             "</td><td>" + acc + "</td><td>" + base + "</td></tr>";
  });
}
document.getElementById("ranking").innerHTML = table + "</table>";
document.querySelectorAll("a.cell").forEach((a) =>
  a.addEventListener("click", () => show(a.dataset.cell)));
show(DATA.initial);
</script></body></html>
"""


def write_cell_page(
    path: str | Path,
    text: str,
    activations: np.ndarray,
    ranking: dict[str, list[dict]],
    title: str = "rnnlab: interpretable cells",
    initial_cell: int | None = None,
) -> Path:
    """Write the page for ``text`` (``T`` characters) and ``activations [T, H]``; the page opens
    on ``initial_cell`` (default: the top cell of the first property of ``ranking``)."""
    activations = np.asarray(activations, dtype=np.float64)
    if activations.shape[0] != len(text):
        raise ValueError(f"{activations.shape[0]} activation rows for {len(text)} characters")
    scale = np.abs(activations).max(axis=0)
    scale[scale == 0] = 1.0
    quantized = np.round(activations / scale * 127).astype(np.int8)
    if initial_cell is None:
        first = next(iter(ranking.values()), [])
        initial_cell = first[0]["cell"] if first else 0
    data = {
        "text": text,
        "hidden": int(activations.shape[1]),
        "activations": base64.b64encode(quantized.tobytes()).decode("ascii"),
        "scale": scale.tolist(),
        "ranking": ranking,
        "initial": int(initial_cell),
    }
    payload = json.dumps(data).replace("</", "<\\/")
    page = PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
