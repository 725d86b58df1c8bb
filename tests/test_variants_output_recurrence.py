"""The output-recurrence (Jordan) cell: teacher-forced parallel pass == step-by-step loop fed the
same true outputs, closed loop == Recurrent, gradcheck, errors."""

from __future__ import annotations

import pytest
import torch

import rnnlab


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread avoids waking a thread pool for every kernel (slow on a loaded
    machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(**kwargs):
    kwargs = {"input_size": 3, "hidden_size": 5, "output_size": 4, **kwargs}
    return rnnlab.cells.create("jordan", **kwargs).double()


@pytest.mark.parametrize("feedback", ["identity", "softmax"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_teacher_forced_equals_loop_fed_true_outputs(feedback, nonlinearity):
    cell = make(feedback=feedback, nonlinearity=nonlinearity)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    targets = torch.randn(6, 2, 4, dtype=torch.float64)
    state0 = torch.randn(2, 4, dtype=torch.float64)
    y, final = cell.teacher_forced(x, targets, state0)
    state, ys = state0, []
    for t in range(6):
        y_t, _ = cell(x[t], state)
        ys.append(y_t)
        state = targets[t]
    torch.testing.assert_close(y, torch.stack(ys))
    torch.testing.assert_close(final, targets[-1])


def test_teacher_forced_is_one_batched_pass_without_bptt():
    cell = make()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    y, _ = cell.teacher_forced(x, torch.randn(5, 2, 4, dtype=torch.float64))
    (grad,) = torch.autograd.grad(y[2].sum(), x)
    assert torch.count_nonzero(grad[[0, 1, 3, 4]]) == 0  # step 2 depends on x_2 only


def test_closed_loop_feeds_back_its_own_output():
    cell = make(feedback="softmax")
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    y, state = rnnlab.Recurrent(cell)(x)
    s, ys = cell.init_state(2, dtype=torch.float64), []
    for t in range(4):
        y_t, _ = cell(x[t], s)
        ys.append(y_t)
        s = torch.softmax(y_t, dim=-1)
    torch.testing.assert_close(y, torch.stack(ys))
    torch.testing.assert_close(state, s)


def test_gradcheck():
    cell = make(feedback="tanh")
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(x, targets, *params):
        closed, _ = rnnlab.Recurrent(cell)(x)
        forced, _ = cell.teacher_forced(x, targets)
        return closed, forced

    assert torch.autograd.gradcheck(run, (x, targets, *cell.parameters()))


def test_errors():
    with pytest.raises(rnnlab.ConfigError, match="feedback"):
        make(feedback="cubic")
    cell = make()
    with pytest.raises(rnnlab.ConfigError, match="targets must have shape"):
        cell.teacher_forced(torch.randn(3, 2, 3), torch.randn(3, 2, 5))
    assert rnnlab.cells.get("output_recurrence") is rnnlab.cells.get("jordan")
    assert rnnlab.cells.create("jordan", input_size=2, hidden_size=3).output_size == 3
