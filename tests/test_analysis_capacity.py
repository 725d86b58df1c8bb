"""The capacity experiment: mutual information on cases with a known answer, a tiny sweep and
the ``rnnlab analyze capacity`` command."""

import numpy as np
import pytest

from rnnlab.analysis.capacity import (
    CapacityPoint,
    chance_information,
    fit_slope,
    measure,
    memorisation_data,
    mutual_information,
)
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError


def test_mutual_information_known_cases():
    labels = np.repeat(np.arange(4), 100)  # uniform over 4 classes: 2 bits
    assert mutual_information(labels, labels) == pytest.approx(2.0)
    assert mutual_information(labels, (labels + 1) % 4) == pytest.approx(2.0)  # relabelled
    assert mutual_information(labels, np.zeros_like(labels)) == pytest.approx(0.0)
    # predictions independent of the labels: 0 bits
    assert mutual_information(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == pytest.approx(0)
    # a binary label predicted right 3 times in 4 (balanced): 1 - H(3/4) bits
    y, p = np.array([0, 0, 1, 1] * 2), np.array([0, 0, 1, 0, 1, 0, 1, 1])
    h = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert mutual_information(y, p) == pytest.approx(1 - h)
    with pytest.raises(ConfigError):
        mutual_information(np.zeros(3), np.zeros(4))


def test_chance_information_is_the_plug_in_bias():
    rng = np.random.default_rng(0)
    labels, guesses = rng.integers(0, 8, 400), rng.integers(0, 8, 400)
    chance = chance_information(labels, guesses)
    # independent: the estimate is about (K - 1)^2 / (2 N ln 2) bits, the shuffle finds it
    assert chance == pytest.approx(49 / (2 * 400 * np.log(2)), rel=0.25)
    assert mutual_information(labels, guesses) == pytest.approx(chance, abs=0.05)


def test_memorisation_data_is_reproducible_and_uniform():
    x, y = memorisation_data(2000, 3, 2, 8, seed=1)
    assert x.shape == (3, 2000, 2) and y.shape == (2000,)
    assert (x == memorisation_data(2000, 3, 2, 8, seed=1)[0]).all()
    assert set(y.tolist()) == set(range(8))


def test_a_tiny_network_stores_bits_within_the_bound():
    point = measure("gru", 2, (0.5,), steps=60, classes=4)
    assert point.examples == round(0.5 * point.parameters)
    assert 0 < point.bits <= point.examples * 2 + 1e-9  # at most log2(4) bits per example
    assert point.bits_per_parameter == pytest.approx(point.bits / point.parameters)


def test_fit_slope_through_the_origin():
    points = [CapacityPoint("rnn", h, p, p, b, 1.0) for h, p, b in ((1, 10, 50), (2, 20, 100))]
    assert fit_slope(points) == pytest.approx(5.0)


def test_analyze_capacity_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    out = tmp_path / "capacity.png"
    args = [
        "analyze",
        "capacity",
        "--cells",
        "rnn,lstm",
        "--hidden",
        "2",
        "--steps",
        "10",
        "--examples-per-parameter",
        "0.5",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| rnn | 2 |" in text and "lstm: " in text and "bits per parameter" in text
    assert out.stat().st_size > 5000
    assert main(["analyze", "capacity", "--cells", "nope", "--out", str(out)]) == 2
