"""Checks for any cell, built-in or your own: ``rnnlab.testing.check_cell(cell)``.

Runs, on a float64 copy of the cell (the cell itself is not changed):

1. ``torch.autograd.gradcheck`` of the reference loop w.r.t. the input, the initial state and every
   parameter;
2. when the cell has a fast path (``cell.torch_kernel()`` or ``cell.fused_unroll`` gives one):
   that path (``Recurrent(fast=True)``) against the reference loop, forwards and backwards, in
   both directions, with lengths;
3. masking: with ``lengths``, each sequence's outputs are zero past its length and its final state
   equals the state of running that sequence alone, cut to its length (forwards and reversed).

Raises ``AssertionError`` naming the failed check; returns the list of checks that ran.

Example::

    from rnnlab.testing import check_cell
    check_cell(MyCell(input_size=3, hidden_size=4))
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from rnnlab.cells.base import Cell
from rnnlab.layers.unroll import Recurrent, unroll
from rnnlab.sequences import State, map_state


def _flat(state: State) -> Tensor:
    """``[B, N]``: every part of the state, each row flattened."""
    parts = [state] if isinstance(state, Tensor) else list(state)
    return torch.cat([part.reshape(part.shape[0], -1) for part in parts], dim=-1)


def _random_state(cell: Cell, batch: int, generator: torch.Generator) -> State:
    """The initial state with random activations; counters (``[B]`` parts, such as a time step)
    keep their initial value."""
    return map_state(
        lambda s: (
            torch.randn(s.shape, dtype=s.dtype, generator=generator) * 0.5
            if s.dim() > 1 and s.is_floating_point()
            else s
        ),
        cell.init_state(batch, dtype=torch.float64),
    )


def _check_gradcheck(cell: Cell, x: Tensor, state0: State) -> None:
    leaves = map_state(lambda s: s.clone().requires_grad_(), state0)
    state_parts = [leaves] if isinstance(leaves, Tensor) else list(leaves)
    params = [p for p in cell.parameters() if p.requires_grad]

    def run(x, *inputs):
        parts = inputs[: len(state_parts)]
        state = parts[0] if isinstance(leaves, Tensor) else type(leaves)(*parts)
        y, final = unroll(cell, x, state)
        return y, _flat(final)

    ok = torch.autograd.gradcheck(
        run, (x.requires_grad_(), *state_parts, *params), raise_exception=False
    )
    assert ok, "gradcheck failed: the cell's autograd gradients differ from finite differences"


def _check_fast_path(cell: Cell, x: Tensor, state0: State, lengths: Tensor) -> None:
    for reverse in (False, True):
        for lens in (None, lengths):
            results = []
            for fast in (True, False):
                xi = x.detach().clone().requires_grad_()
                y, state = Recurrent(cell, reverse=reverse, fast=fast)(xi, state0, lens)
                weights = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
                loss = (y * weights).sum() + _flat(state).pow(2).sum()
                grads = torch.autograd.grad(loss, [xi, *cell.parameters()], allow_unused=True)
                results.append((y, _flat(state), grads))
            (y1, s1, g1), (y2, s2, g2) = results
            where = f"(reverse={reverse}, lengths={'yes' if lens is not None else 'no'})"
            torch.testing.assert_close(y1, y2, msg=f"fast path outputs differ {where}")
            torch.testing.assert_close(s1, s2, msg=f"fast path final state differs {where}")
            for a, b in zip(g1, g2):
                if a is not None and b is not None:
                    torch.testing.assert_close(a, b, msg=f"fast path gradients differ {where}")


def _check_masking(cell: Cell, x: Tensor, state0: State, lengths: Tensor) -> None:
    for reverse in (False, True):
        y, final = unroll(cell, x, state0, lengths, reverse=reverse)
        for row, length in enumerate(lengths.tolist()):
            assert bool((y[length:, row] == 0).all()), "outputs past a sequence's length are not 0"
            alone = map_state(lambda s, r=row: s[r : r + 1], state0)
            y_alone, final_alone = unroll(cell, x[:length, row : row + 1], alone, reverse=reverse)
            torch.testing.assert_close(
                y[:length, row : row + 1], y_alone, msg="masked outputs differ from the cut run"
            )
            torch.testing.assert_close(
                _flat(map_state(lambda s, r=row: s[r : r + 1], final)),
                _flat(final_alone),
                msg="final state under lengths differs from running the cut sequence alone",
            )


def check_cell(
    cell: Cell,
    steps: int = 5,
    batch: int = 3,
    seed: int = 0,
    input_shape: tuple[int, ...] | None = None,
) -> list[str]:
    """Run gradcheck, fast-vs-reference and masking checks on a float64 copy of ``cell``.

    ``input_shape`` is one step's input for one sequence: ``(cell.input_size,)`` by default,
    ``(C, H, W)`` for a cell over frames."""
    cell = copy.deepcopy(cell).double()
    generator = torch.Generator().manual_seed(seed)
    shape = (steps, batch, *(input_shape or (cell.input_size,)))
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    state0 = _random_state(cell, batch, generator)
    lengths = torch.tensor([steps] + [max(1, steps - 2 - i) for i in range(batch - 1)])
    ran = ["gradcheck"]
    _check_gradcheck(cell, x, state0)
    if cell.torch_kernel() is not None or cell.fused_unroll(x, state0, None, False) is not None:
        _check_fast_path(cell, x, state0, lengths)
        ran.append("fast path == reference loop")
    _check_masking(cell, x, state0, lengths)
    ran.append("masking")
    return ran
