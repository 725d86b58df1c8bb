"""Forward + backward time of an LSTM over a batch of variable-length sequences: ``rnnlab.LSTM``
with ``lengths`` (segments of torch's padded CPU kernel) as a ratio to ``torch.nn.LSTM`` on a
``PackedSequence`` (torch's own way; the reference), measured in the same run, beside
``torch.nn.LSTM`` on the padded batch (which ignores the lengths).

Lengths are drawn uniformly from ``[T/4, T]`` (seeded). Repeats alternate between the three and
the median is reported::

    OMP_NUM_THREADS=1 python benchmarks/variable_length_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import rnnlab  # noqa: E402


def seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    reference: torch.nn.LSTM, ours: rnnlab.LSTM, steps: int, batch: int, inputs: int, repeats: int
) -> tuple[float, float, float]:
    """Seconds of the packed reference, then the ratios of rnnlab with lengths and of padded."""
    x = torch.randn(steps, batch, inputs, requires_grad=True)
    lengths = torch.randint(steps // 4, steps + 1, (batch,))
    lengths[0] = steps

    def packed():
        out, _ = reference(pack_padded_sequence(x, lengths, enforce_sorted=False))
        out.data.sum().backward()

    def rnnlab_lengths():
        y, _ = ours(x, lengths=lengths)
        y.sum().backward()

    def padded():
        y, _ = reference(x)
        y.sum().backward()

    runs = {"packed": packed, "rnnlab": rnnlab_lengths, "padded": padded}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(3):
        for name, run in runs.items():
            times[name].append(seconds(run, repeats))
    ref = statistics.median(times["packed"])
    return ref, statistics.median(times["rnnlab"]) / ref, statistics.median(times["padded"]) / ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="100x32,250x8,800x8", help="TxB,... to measure")
    parser.add_argument("--input", type=int, default=88)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = torch.nn.LSTM(args.input, args.hidden)
    ours = rnnlab.LSTM(args.input, args.hidden)
    ours.load_state_dict(reference.state_dict())
    print(f"LSTM {args.input}->{args.hidden}, forward + backward, {args.threads} thread(s)")
    print(f"{'T x B':>8} {'packed torch (ref) ms':>22} {'rnnlab lengths':>15} {'padded torch':>13}")
    for shape in args.shapes.split(","):
        steps, batch = (int(v) for v in shape.split("x"))
        ref, rnn, pad = measure(reference, ours, steps, batch, args.input, args.repeats)
        print(f"{shape:>8} {ref * 1e3:>22.1f} {rnn:>15.2f} {pad:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
