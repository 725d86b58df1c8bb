"""``rnnlab analyze``: figures that show how gradients flow and what a network learned.

Subcommands (each writes one file and prints what it wrote and the key numbers)::

    rnnlab analyze compare-gradients   ||dL_T/dh_t|| of RNN vs LSTM vs GRU on one long sequence
    rnnlab analyze grad-flow           the same curve as a heatmap over training steps
    rnnlab analyze spectrum            eigenvalues and singular values of W_hh
    rnnlab analyze scalar              h_t = w h_{t-1} and h_t = tanh(w h_{t-1})
    rnnlab analyze contractivity       measured lambda and the k-step truncation error
    rnnlab analyze cliff               the one-unit RNN's loss surface, with and without clipping
    rnnlab analyze cells               HTML page of cells that track Python syntax
    rnnlab analyze capacity            bits stored per parameter (Collins et al. 2017)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rnnlab.errors import ConfigError


def _cell_flags(parser: argparse.ArgumentParser, cell: str, hidden: int) -> None:
    parser.add_argument("--cell", default=cell, help=f"cell name (default {cell})")
    parser.add_argument("--hidden", type=int, default=hidden, help=f"hidden size ({hidden})")
    parser.add_argument("--input-size", type=int, default=16, help="input size (16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")


def _run_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", type=Path, help="a training run directory: analyse its model's first cell"
    )
    parser.add_argument(
        "--checkpoint", help="checkpoint of --run: best or last (best when it exists)"
    )


def _first_cell(args: argparse.Namespace):
    """The cell to analyse: the first rnnlab cell of ``--run``'s model, or a fresh ``--cell``."""
    import rnnlab.cells

    if getattr(args, "run", None) is not None:
        from rnnlab.analysis.runs import first_cell
        from rnnlab.training.load import load_run

        _, model, _ = load_run(args.run, args.checkpoint, device="cpu")
        return first_cell(model), f"{args.run}"
    torch.manual_seed(args.seed)
    cell = rnnlab.cells.create(args.cell, input_size=args.input_size, hidden_size=args.hidden)
    return cell, f"fresh {args.cell}, hidden {args.hidden}"


def _compare_gradients(args: argparse.Namespace) -> int:
    from rnnlab.analysis.gradients import compare_cells, plot_flows

    names = tuple(n.strip() for n in args.cells.split(",") if n.strip())
    flows = compare_cells(
        names, args.seq_len, args.hidden, args.input_size, args.batch, args.seed, args.device
    )
    title = f"Gradient flow, fresh cells, T={args.seq_len}, hidden {args.hidden}"
    plot_flows(flows, args.out, title)
    print(f"wrote {args.out}")
    print(f"{'cell':8s} {'|dL/dh_T|':>10s} {'|dL/dh_T-10|':>12s} {'|dL/dh_0|':>10s}  per step")
    for name, flow in flows.items():
        h = flow.h
        rate = (h[0] / h[-1]) ** (1 / (len(h) - 1)) if h[0] > 0 else 0.0
        print(f"{name:8s} {h[-1]:10.3g} {h[-11]:12.3g} {h[0]:10.3g}  x{rate:.3f}")
        if flow.c is not None:
            c = flow.c
            print(f"{name + ':c':8s} {c[-1]:10.3g} {c[-11]:12.3g} {c[0]:10.3g}")
    return 0


def _grad_flow(args: argparse.Namespace) -> int:
    from rnnlab.analysis.gradients import grad_flow_during_training, plot_heatmap, read_log

    if args.run is not None:
        log, title = args.run, f"{args.run}"
    else:
        log, loss = grad_flow_during_training(
            args.cell, args.train_steps, args.every, args.seq_len, args.hidden,
            batch=args.batch, run_dir=args.log_dir, seed=args.seed,
        )  # fmt: skip
        title = f"{args.cell}, recall-first-symbol task"
        print(
            f"trained {args.cell} for {args.train_steps} steps (final loss {loss:.3f}); log {log}"
        )
    steps, h, c = read_log(log)
    plot_heatmap(steps, h, args.out, title, c)
    print(f"wrote {args.out}  ({len(steps)} logged steps, {h.shape[1]} time steps)")
    for i in sorted({0, len(steps) - 1}):
        row = h[i]
        print(f"step {steps[i]:>6d}: |dL_T/dh_0| / |dL_T/dh_T| = {row[0] / row[-1]:.3g}")
    return 0


def _spectrum(args: argparse.Namespace) -> int:
    from rnnlab.analysis.dynamics import plot_spectrum

    cell, what = _first_cell(args)
    stats = plot_spectrum(cell, args.out, title=what)
    print(f"wrote {args.out}  ({what})")
    for key, value in stats.items():
        print(f"{key:28s} {value:.4f}")
    return 0


def _scalar(args: argparse.Namespace) -> int:
    from rnnlab.analysis.dynamics import LINEAR_CASES, plot_scalar_systems

    points = plot_scalar_systems(args.out)
    print(f"wrote {args.out}")
    for name, w in LINEAR_CASES.items():
        print(f"h_t = w h_(t-1), {name:40s} w={w:+.1f}: h_40 = {w**40:+.4g}")
    for w, fixed in points.items():
        text = ", ".join(f"{h:+.6f} ({'stable' if s else 'unstable'})" for h, s in fixed)
        print(f"h = tanh({w} h): {text}")
    return 0


def _contractivity(args: argparse.Namespace) -> int:
    from rnnlab.analysis.dynamics import contractivity, plot_contractivity

    if args.run is not None:
        from rnnlab.analysis.runs import default_python_text, first_cell_inputs
        from rnnlab.training.load import load_run

        task, model, _ = load_run(args.run, args.checkpoint, device="cpu")
        text = default_python_text(task)
        chunk = len(text) // args.batch
        texts = [text[i * chunk : i * chunk + args.seq_len] for i in range(args.batch)]
        cell, x = first_cell_inputs(task, model, texts)
        what = f"{args.run}, {args.batch} pieces of its test text"
    else:
        cell, what = _first_cell(args)
        generator = torch.Generator().manual_seed(args.seed)
        x = torch.randn(args.seq_len, args.batch, cell.input_size, generator=generator)
        x = x * args.input_scale
        what += f", inputs N(0, {args.input_scale}^2)"
    result = contractivity(cell, x)
    plot_contractivity(result, args.out, what)
    print(f"wrote {args.out}  ({what})")
    print(f"lambda (max ||d state_t/d state_t-1||_2) = {result['lambda']:.4f}")
    print(f"mean ||d state_t/d state_t-1||_2          = {result['lambda_mean']:.4f}")
    print(f"observed error decay per step            = {result['decay_rate']:.4f}")
    for k, error in zip(result["ks"], result["errors"]):
        print(f"k = {k:4d}: truncation error {error:.3g}")
    return 0


def _cliff(args: argparse.Namespace) -> int:
    from rnnlab.analysis.cliff import plot_cliff

    _, plain, clipped = plot_cliff(
        args.out, tuple(args.start), args.lr, args.steps, args.clip, args.resolution
    )
    print(f"wrote {args.out}")
    for name, traj in (("no clipping", plain), (f"clip {args.clip}", clipped)):
        jump = np.linalg.norm(np.diff(traj.points, axis=0), axis=1).max()
        w, b = traj.points[-1]
        print(
            f"{name:12s}: final (w, b) = ({w:+.3f}, {b:+.3f}), final loss {traj.losses[-1]:.3g}, "
            f"largest step {jump:.3g}, largest |grad| {traj.grad_norms.max():.3g}"
        )
    return 0


def _cells(args: argparse.Namespace) -> int:
    from rnnlab.analysis.cell_page import write_cell_page
    from rnnlab.analysis.interpret import label_prefix, rank_cells
    from rnnlab.analysis.runs import char_activations, default_python_text
    from rnnlab.training.load import load_run

    task, model, _ = load_run(args.run, args.checkpoint, device="cpu")
    source = Path(args.text).read_text() if args.text else default_python_text(task)
    try:
        text, labels = label_prefix(source, args.chars, args.offset)
    except ValueError as error:
        raise ConfigError(f"{error} (--text {args.text})") from None
    activations = char_activations(task, model, text, args.state, args.layer)
    ranking = rank_cells(activations, labels, args.top)
    title = (
        f"{args.run}: {args.state} of layer {args.layer} "
        f"({activations.shape[1]} cells, {len(text)} characters)"
    )
    write_cell_page(args.out, text, activations, ranking, title)
    print(f"wrote {args.out}  ({len(text)} characters, {activations.shape[1]} cells)")
    for prop in labels:
        if prop not in ranking:
            print(f"{prop:14s} constant on this text: not ranked")
            continue
        best = ranking[prop][0]
        extra = (
            f", threshold accuracy {best['accuracy']:.3f} (majority {best['baseline']:.3f})"
            if "accuracy" in best
            else ""
        )
        print(
            f"{prop:14s} top cell {best['cell']:4d}: correlation {best['correlation']:+.3f}{extra}"
        )
    return 0


def _capacity(args: argparse.Namespace) -> int:
    import rnnlab.cells
    from rnnlab.analysis.capacity import PAPER_BITS_PER_PARAMETER, fit_slope, measure, plot_capacity

    cells = [n.strip() for n in args.cells.split(",") if n.strip()]
    sizes = [int(n) for n in args.hidden.split(",") if n.strip()]
    ratios = tuple(float(r) for r in args.examples_per_parameter.split(","))
    for cell in cells:
        rnnlab.cells.get(cell)  # an unknown name is one line before any training
    if not sizes or min(sizes) < 1 or not ratios or min(ratios) <= 0 or args.steps < 1:
        raise ConfigError("--hidden, --examples-per-parameter and --steps must be positive")
    torch.set_num_threads(args.threads)
    print("| cell | hidden | parameters | examples | accuracy | bits | bits/parameter |")
    print("|---|---|---|---|---|---|---|")
    points = []
    for cell in cells:
        for hidden in sizes:
            point = measure(
                cell,
                hidden,
                ratios,
                args.steps,
                args.length,
                args.input_size,
                args.classes,
                args.seed,
            )
            points.append(point)
            print(
                f"| {cell} | {hidden} | {point.parameters:,} | {point.examples:,} | "
                f"{point.accuracy:.3f} | {point.bits:,.0f} | {point.bits_per_parameter:.2f} |",
                flush=True,
            )
    for cell in cells:
        slope = fit_slope([p for p in points if p.cell == cell])
        print(
            f"{cell}: {slope:.2f} bits per parameter (fitted slope; paper: about "
            f"{PAPER_BITS_PER_PARAMETER:g})"
        )
    plot_capacity(points, str(args.out))
    print(f"wrote {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="figures of gradient flow, dynamics and interpretable cells"
    )
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    p = sub.add_parser("compare-gradients", help="||dL_T/dh_t|| of several cells on one sequence")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated cell names")
    p.add_argument("--seq-len", type=int, default=100, help="sequence length T (100)")
    p.add_argument("--hidden", type=int, default=64, help="hidden size (64)")
    p.add_argument("--input-size", type=int, default=16, help="input size (16)")
    p.add_argument("--batch", type=int, default=16, help="sequences averaged over (16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="torch device (default cpu)")
    p.add_argument("--out", type=Path, default=Path("compare_gradients.png"))
    p.set_defaults(func=_compare_gradients)

    p = sub.add_parser("grad-flow", help="gradient flow through time over training (heatmap)")
    p.add_argument("--run", type=Path, help="a run trained with --log-grad-flow (or the jsonl)")
    p.add_argument("--cell", default="rnn", help="without --run: cell of the demo model (rnn)")
    p.add_argument("--hidden", type=int, default=32, help="demo hidden size (32)")
    p.add_argument("--seq-len", type=int, default=50, help="demo sequence length (50)")
    p.add_argument("--batch", type=int, default=32, help="demo batch size (32)")
    p.add_argument("--train-steps", type=int, default=150, help="demo training steps (150)")
    p.add_argument("--every", type=int, default=10, help="log every N steps (10)")
    p.add_argument("--log-dir", type=Path, default=Path("grad_flow_run"), help="demo log folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("grad_flow.png"))
    p.set_defaults(func=_grad_flow)

    p = sub.add_parser("spectrum", help="eigenvalues and singular values of W_hh")
    _cell_flags(p, "rnn", 64)
    _run_flag(p)
    p.add_argument("--out", type=Path, default=Path("spectrum.png"))
    p.set_defaults(func=_spectrum)

    p = sub.add_parser("scalar", help="the scalar systems w h and tanh(w h)")
    p.add_argument("--out", type=Path, default=Path("scalar.png"))
    p.set_defaults(func=_scalar)

    p = sub.add_parser("contractivity", help="measured lambda and k-step truncation error")
    _cell_flags(p, "rnn", 32)
    _run_flag(p)
    p.add_argument("--seq-len", type=int, default=128, help="steps of the trajectory (128)")
    p.add_argument("--batch", type=int, default=4, help="trajectories (4)")
    p.add_argument("--input-scale", type=float, default=1.0, help="std of random inputs (1.0)")
    p.add_argument("--out", type=Path, default=Path("contractivity.png"))
    p.set_defaults(func=_contractivity)

    p = sub.add_parser("cliff", help="loss surface of the one-unit RNN with clipped descent")
    p.add_argument("--start", type=float, nargs=2, default=[6.0, -3.0], metavar=("W", "B"))
    p.add_argument("--lr", type=float, default=2.0, help="learning rate (2.0)")
    p.add_argument("--steps", type=int, default=100, help="gradient steps (100)")
    p.add_argument("--clip", type=float, default=0.5, help="gradient norm threshold (0.5)")
    p.add_argument("--resolution", type=int, default=200, help="grid points per axis (200)")
    p.add_argument("--out", type=Path, default=Path("cliff.png"))
    p.set_defaults(func=_cliff)

    p = sub.add_parser("cells", help="HTML page of cells tracking Python syntax (char LM run)")
    p.add_argument("--run", type=Path, required=True, help="a charlm run directory")
    p.add_argument("--checkpoint", help="best or last (best when it exists)")
    p.add_argument("--text", type=Path, help="Python file to analyse (default: the test split)")
    p.add_argument("--layer", type=int, default=-1, help="recurrent layer, 0-based (-1: top)")
    p.add_argument("--chars", type=int, default=4000, help="characters analysed (4000)")
    p.add_argument("--offset", type=int, default=0, help="start at this character (0)")
    p.add_argument("--state", choices=("h", "c"), default="h", help="LSTM: h or cell state c")
    p.add_argument("--top", type=int, default=5, help="cells listed per property (5)")
    p.add_argument("--out", type=Path, default=Path("cells.html"))
    p.set_defaults(func=_cells)

    p = sub.add_parser("capacity", help="bits stored per parameter (Collins et al. 2017)")
    p.add_argument("--cells", default="rnn,gru,lstm", help="comma-separated cell names")
    p.add_argument("--hidden", default="4,8,16", help="comma-separated hidden sizes (4,8,16)")
    p.add_argument(
        "--examples-per-parameter",
        default="0.5,1,2",
        help="dataset sizes tried, per parameter; the most bits stored is kept (0.5,1,2)",
    )
    p.add_argument("--steps", type=int, default=1500, help="full-batch Adam steps (1500)")
    p.add_argument("--length", type=int, default=4, help="steps per random sequence (4)")
    p.add_argument("--input-size", type=int, default=4, help="features per step (4)")
    p.add_argument("--classes", type=int, default=16, help="label classes (16: 4 bits)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("capacity.png"))
    p.set_defaults(func=_capacity)
