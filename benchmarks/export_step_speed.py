"""Time of one generation step of an exported language model: PyTorch vs TorchScript vs ONNX.

Exports the run's model (both formats, into a temporary folder) and times one step at batch 1
(the generation case) and batch 32, each feeding its state back, one thread each. Reports the
median microseconds per step over ``--steps`` steps (after 20 warm-up steps) and the ratio to
the PyTorch model's own forward pass (``model(token [1, B], state)``), all in the same run::

    PYTHONPATH=src python benchmarks/export_step_speed.py --run runs/shk --steps 500
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnlab.training.export import (
    OnnxRuntimeStep,
    export_onnx,
    export_torchscript,
    flatten_state,
    unflatten_state,
    zero_state,
)
from rnnlab.training.load import load_run


def time_steps(step, token: torch.Tensor, state: list, steps: int) -> float:
    """Median seconds of ``step(token, *state)``, feeding the state back."""
    times = []
    with torch.no_grad():
        for i in range(steps + 20):
            start = time.perf_counter()
            _, *state = step(token, *state)
            if i >= 20:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a charlm run directory")
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, model, config = load_run(args.run, device="cpu")
    print(f"model: {config.cell} {config.layers}x{config.hidden}, vocabulary {model.vocab_size}")

    _, leaves = zero_state(model)

    def pytorch(token, *state):
        logits, new = model(token.view(1, -1), unflatten_state(state, leaves))
        return (logits[0], *flatten_state(new))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scripted, _ = export_torchscript(model, folder / "step.pt")
        export_onnx(model, folder / "step.onnx")
        engines = {
            "pytorch": pytorch,
            "torchscript": scripted,
            "onnxruntime": OnnxRuntimeStep(folder / "step.onnx", threads=1),
        }
        for batch in (1, 32):
            state, _ = zero_state(model, batch)
            token = torch.zeros(batch, dtype=torch.long)
            base = None
            for name, step in engines.items():
                seconds = time_steps(step, token, state, args.steps)
                base = base or seconds
                print(
                    f"batch {batch:3d} | {name:12s} {seconds * 1e6:8.1f} us/step | "
                    f"x{base / seconds:.2f} the speed of pytorch"
                )


if __name__ == "__main__":
    main()
