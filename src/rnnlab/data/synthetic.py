"""Synthetic long-memory tasks, generated on the fly from a ``torch.Generator``.

Every generator takes ``(batch, generator, ...)`` and returns ``(inputs, targets)``, time first.
Token inputs are int64 ``[T, B]`` (a model one-hot encodes or embeds them); real inputs are float
``[T, B, F]``.

=================  ==========================  =================  ==================================
task               inputs                      targets            supervision
=================  ==========================  =================  ==================================
adding_problem     float ``[T, B, 2]``         float ``[B]``      last step, MSE
copy_memory        tokens ``[T + 20, B]``      tokens ``[T+20,B]`` every step, cross-entropy
parity             tokens ``[T, B]`` (bits)    ``[B]`` in {0, 1}  last step only
temporal_order     tokens ``[T, B]``           ``[B]`` in 0..3    last step
selective_copy     tokens ``[T + K, B]``       tokens ``[K, B]``  the last ``K`` steps
=================  ==========================  =================  ==================================

:class:`SyntheticStream` turns a generator into an endless seeded training stream plus fixed
validation and test sets drawn from their own seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from rnnlab.errors import ConfigError

Batch = tuple[Tensor, Tensor]
Generator = Callable[[int, torch.Generator], Batch]


def _check_length(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def adding_problem(batch: int, generator: torch.Generator, length: int = 600) -> Batch:
    """The adding problem (Hochreiter and Schmidhuber 1997, in the form of Bai et al. 2018).

    Channel 0 holds ``length`` values drawn from U(0, 1); channel 1 is 0 except at two distinct
    random positions, where it is 1. The target is the sum of the two marked values. Predicting
    the constant 1 scores MSE 1/6 (the variance of the sum), the level to beat.
    """
    _check_length("length", length, 2)
    values = torch.rand(length, batch, generator=generator)
    keys = torch.rand(length, batch, generator=generator)
    positions = keys.topk(2, dim=0).indices  # [2, B], two distinct random positions
    mask = torch.zeros(length, batch).scatter_(0, positions, 1.0)
    targets = (values * mask).sum(0)
    return torch.stack([values, mask], dim=-1), targets


def copy_memory(
    batch: int,
    generator: torch.Generator,
    blanks: int = 1000,
    symbols: int = 8,
    copy_length: int = 10,
) -> Batch:
    """Copy memory (Hochreiter and Schmidhuber 1997; Arjovsky et al. 2016; Bai et al. 2018).

    Tokens: 0 blank, ``1..symbols`` data, ``symbols + 1`` marker. Inputs: ``copy_length`` random
    data tokens, ``blanks - 1`` blanks, then ``copy_length + 1`` markers (length ``blanks + 2 *
    copy_length``). Targets: blanks for the first ``blanks + copy_length`` steps, then the data
    tokens in order. A memoryless model scores ``copy_length * log(symbols) / (blanks + 2 *
    copy_length)`` (:func:`copy_memory_baseline`).
    """
    _check_length("blanks", blanks, 1)
    _check_length("symbols", symbols, 1)
    _check_length("copy_length", copy_length, 1)
    data = torch.randint(1, symbols + 1, (copy_length, batch), generator=generator)
    blank = torch.zeros(blanks - 1, batch, dtype=torch.long)
    marker = torch.full((copy_length + 1, batch), symbols + 1, dtype=torch.long)
    inputs = torch.cat([data, blank, marker])
    targets = torch.cat([torch.zeros(blanks + copy_length, batch, dtype=torch.long), data])
    return inputs, targets


def copy_memory_baseline(blanks: int, symbols: int = 8, copy_length: int = 10) -> float:
    """Loss of the best memoryless guess: ``copy_length * log(symbols) / (T + 2 * copy_length)``."""
    return copy_length * math.log(symbols) / (blanks + 2 * copy_length)


def parity(batch: int, generator: torch.Generator, length: int = 50) -> Batch:
    """Parity (XOR) of a bit sequence: inputs bits ``[T, B]``, target their sum mod 2 ``[B]``."""
    _check_length("length", length, 1)
    bits = torch.randint(0, 2, (length, batch), generator=generator)
    return bits, bits.sum(0) % 2


ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
ORDER_CLASSES = ("XX", "XY", "YX", "YY")


def temporal_order(batch: int, generator: torch.Generator, length: int = 100) -> Batch:
    """Temporal order (Hochreiter and Schmidhuber 1997, experiment 6a), at a fixed length.

    Tokens index :data:`ORDER_SYMBOLS`: ``B`` starts and ``E`` ends the sequence, the rest are
    random distractors ``a-d`` except two positions, ``t1`` in ``[0.1 T, 0.2 T]`` and ``t2`` in
    ``[0.5 T, 0.6 T]`` (``[10, 20]`` and ``[50, 60]`` for the original ``T = 100``), holding ``X``
    or ``Y``. The class (:data:`ORDER_CLASSES`) is ``2 * [first is Y] + [second is Y]``.
    """
    _check_length("length", length, 10)
    tokens = torch.randint(0, 4, (length, batch), generator=generator)
    tokens[0], tokens[-1] = 6, 7
    t1 = torch.randint(length // 10, length // 5 + 1, (batch,), generator=generator)
    t2 = torch.randint(length // 2, 3 * length // 5 + 1, (batch,), generator=generator)
    first = torch.randint(0, 2, (batch,), generator=generator)
    second = torch.randint(0, 2, (batch,), generator=generator)
    columns = torch.arange(batch)
    tokens[t1, columns] = 4 + first
    tokens[t2, columns] = 4 + second
    return tokens, 2 * first + second


def selective_copy(
    batch: int,
    generator: torch.Generator,
    length: int = 200,
    count: int = 8,
    symbols: int = 8,
) -> Batch:
    """Selective copying (Gu and Dao 2023): recall the data tokens scattered among noise, in order.

    Tokens: 0 noise, ``1..symbols`` data, ``symbols + 1`` marker. Inputs: ``length`` steps, noise
    except ``count`` random data tokens at random distinct positions, then ``count`` markers.
    Targets ``[count, B]``: the data tokens in the order they appeared, to be emitted during the
    markers.
    """
    _check_length("count", count, 1)
    _check_length("length", length, count)
    _check_length("symbols", symbols, 1)
    keys = torch.rand(length, batch, generator=generator)
    positions = keys.topk(count, dim=0).indices.sort(dim=0).values  # [K, B]
    data = torch.randint(1, symbols + 1, (count, batch), generator=generator)
    tokens = torch.zeros(length, batch, dtype=torch.long).scatter_(0, positions, data)
    markers = torch.full((count, batch), symbols + 1, dtype=torch.long)
    return torch.cat([tokens, markers]), data


class SyntheticStream:
    """Seeded training batches and fixed evaluation sets of one generator.

    Training batch ``index`` of ``epoch`` is drawn from its own generator, seeded from
    ``(seed, epoch, index)``: any batch can be reproduced alone (resuming mid-epoch needs no
    replay). The validation and test sets are drawn from generators seeded from ``(seed,
    "valid")`` and ``(seed, "test")``, apart from every training seed.

    Args:
        make: ``make(batch, generator) -> (inputs, targets)``, e.g.
            ``functools.partial(adding_problem, length=600)``.
        batch_size: examples per training (and evaluation) batch.
        seed: the run's seed.
        eval_examples: examples in each evaluation set.
    """

    def __init__(
        self, make: Generator, batch_size: int, seed: int = 0, eval_examples: int = 1000
    ) -> None:
        self.make, self.batch_size, self.eval_examples = make, batch_size, eval_examples
        self.seed = seed

    def train_batch(self, epoch: int, index: int, make: Generator | None = None) -> Batch:
        """Training batch ``index`` of ``epoch``, from ``make`` instead of the stream's own
        generator when given (a curriculum's shorter sequences, from the same seed)."""
        seed = (self.seed * 1_000_003 + epoch) * 1_000_033 + index
        return (make or self.make)(self.batch_size, torch.Generator().manual_seed(seed % 2**63))

    def eval_batches(self, split: str) -> list[Batch]:
        """The fixed ``"valid"`` or ``"test"`` set, in batches of at most ``batch_size``."""
        offset = {"valid": 1, "test": 2}.get(split)
        if offset is None:
            raise ConfigError(f"unknown split {split!r}; choose 'valid' or 'test'")
        generator = torch.Generator().manual_seed(-(self.seed * 3 + offset) % 2**63)
        sizes = [self.batch_size] * (self.eval_examples // self.batch_size)
        if self.eval_examples % self.batch_size:
            sizes.append(self.eval_examples % self.batch_size)
        return [self.make(size, generator) for size in sizes]
