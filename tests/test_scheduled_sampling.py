"""Each scheduled-sampling schedule follows its formula; the decoder mixes tokens per token."""

import math

import pytest
import torch

from rnnlab.errors import ConfigError
from rnnlab.models import ConditionalGenerator
from rnnlab.training.scheduled_sampling import ScheduledSampling


@pytest.mark.parametrize("step", [0, 1, 10, 500, 5000, 20000])
def test_schedules_match_their_formulas(step):
    assert ScheduledSampling("teacher").probability(step) == 1.0
    assert ScheduledSampling("free").probability(step) == 0.0
    linear = ScheduledSampling("linear", k=1.0, c=1e-4, minimum=0.1)
    assert linear.probability(step) == pytest.approx(max(0.1, 1.0 - 1e-4 * step))
    exponential = ScheduledSampling("exponential", k=0.999)
    assert exponential.probability(step) == pytest.approx(0.999**step)
    sigmoid = ScheduledSampling("inverse_sigmoid", k=300)
    assert sigmoid.probability(step) == pytest.approx(300 / (300 + math.exp(step / 300)))


def test_schedules_decay_monotonically():
    for name in ("linear", "exponential", "inverse_sigmoid"):
        schedule = ScheduledSampling(name)
        values = [schedule.probability(i) for i in range(0, 30000, 500)]
        assert all(a >= b for a, b in zip(values, values[1:]))
        assert values[0] > 0.99 and values[-1] < values[0]


@pytest.mark.parametrize(
    "kwargs", [{"schedule": "cosine"}, {"schedule": "exponential", "k": 1.5},
               {"schedule": "inverse_sigmoid", "k": 0.5}, {"schedule": "linear", "minimum": 2}]
)  # fmt: skip
def test_bad_schedules_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        ScheduledSampling(**kwargs)


def test_teacher_prob_decides_per_token():
    """With p = 0.5 about half of the inputs after step 0 are the gold tokens."""
    model = ConditionalGenerator("gru", 50, num_conditions=2, condition_size=4, hidden_size=8)
    decoder = model.decoder
    seen = []
    original = decoder.step

    def recording_step(token, states, *args, **kwargs):
        seen.append(token.clone())
        return original(token, states, *args, **kwargs)

    decoder.step = recording_step
    gold = torch.randint(3, 50, (40, 64))
    states, extra = model._start(model.condition_vector(torch.zeros(64, dtype=torch.long)))
    decoder.scheduled(gold, states, 0.5, extra)
    fed = torch.stack(seen)
    assert torch.equal(fed[0], gold[0])
    share = (fed[1:] == gold[1:]).float().mean().item()
    assert 0.4 < share < 0.6
    # per token: within one step some sequences get the gold token and others do not
    rows = (fed[1:] == gold[1:]).float().mean(1)
    assert ((rows > 0) & (rows < 1)).float().mean() > 0.9
