"""ConditionalGenerator and Seq2Seq: they learn with every length mode, the step-by-step path
equals teacher forcing, beam search with beam 1 equals greedy decoding, padding is ignored."""

import pytest
import torch

from rnnlab.models import ConditionalGenerator, Seq2Seq
from rnnlab.models.decoder import EOS

VOCAB = 10


def _targets():
    # four sequences of tokens 3..9, lengths 5, 3, 4, 1
    lengths = torch.tensor([5, 3, 4, 1])
    targets = torch.randint(3, VOCAB, (5, 4))
    for b, n in enumerate(lengths.tolist()):
        targets[n:, b] = 0
    return targets, lengths


def _falls(model, loss_fn, steps=60, lr=0.03):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, _ = loss_fn()
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses[0], losses[-1]


@pytest.mark.parametrize("length_mode", ["eos", "halt", "length"])
@pytest.mark.parametrize("condition_mode", ["init", "input", "both"])
def test_generator_learns(length_mode, condition_mode):
    targets, lengths = _targets()
    condition = torch.tensor([0, 1, 2, 3])
    model = ConditionalGenerator(
        "lstm",
        VOCAB,
        num_conditions=4,
        condition_size=8,
        embed_size=8,
        hidden_size=24,
        condition_mode=condition_mode,
        length_mode=length_mode,
        max_length=8,
    )
    first, last = _falls(model, lambda: model.loss(condition, targets, lengths))
    assert last < 0.3 * first
    # after training, greedy generation reproduces each conditioned target exactly
    out = model.generate(condition, sample=False)
    assert out == [targets[:n, b].tolist() for b, n in enumerate(lengths.tolist())]


def test_generator_with_vector_condition_and_scheduled_sampling():
    targets, lengths = _targets()
    vectors = torch.randn(4, 6)
    model = ConditionalGenerator("gru", VOCAB, condition_size=6, embed_size=8, hidden_size=24)
    first, last = _falls(model, lambda: model.loss(vectors, targets, lengths, teacher_prob=0.5))
    assert last < 0.5 * first
    samples = model.generate(vectors, sample=True, temperature=0.7)
    assert len(samples) == 4 and all(EOS not in s for s in samples)


@pytest.mark.parametrize("length_mode", ["eos", "halt", "length"])
def test_scheduled_path_with_prob_one_equals_teacher_forcing(length_mode):
    targets, lengths = _targets()
    model = ConditionalGenerator(
        "lstm",
        VOCAB,
        num_conditions=4,
        condition_size=8,
        hidden_size=16,
        length_mode=length_mode,
        max_length=8,
    )
    condition = torch.tensor([0, 1, 2, 3])
    vector = model.condition_vector(condition)
    states, extra = model._start(vector)
    batch = model.decoder.teacher(targets, lengths)
    logits, halt, _ = model.decoder(batch.inputs, states, extra)
    stepped, stepped_halt = model.decoder.scheduled(batch.inputs, states, 1.0, extra)
    torch.testing.assert_close(stepped, logits, atol=1e-5, rtol=1e-5)
    if halt is not None:
        torch.testing.assert_close(stepped_halt, halt, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", [None, "dot", "additive"])
def test_seq2seq_learns_to_reverse(attention):
    src, lengths = _targets()
    tgt = src.clone()
    for b, n in enumerate(lengths.tolist()):
        tgt[:n, b] = src[:n, b].flip(0)
    model = Seq2Seq(
        "gru",
        VOCAB,
        VOCAB,
        embed_size=8,
        hidden_size=32,
        attention=attention,
        bidirectional=True,
        max_length=8,
    )
    first, last = _falls(model, lambda: model.loss(src, lengths, tgt, lengths), steps=80)
    assert last < 0.3 * first
    model.eval()
    assert model.decode(src, lengths) == [tgt[:n, b].tolist() for b, n in enumerate(lengths)]


@pytest.mark.parametrize("length_mode", ["eos", "halt", "length"])
@pytest.mark.parametrize("attention", [None, "dot", "additive"])
def test_beam_one_equals_greedy(length_mode, attention):
    src, lengths = _targets()
    model = Seq2Seq(
        "lstm",
        VOCAB,
        VOCAB,
        embed_size=8,
        hidden_size=16,
        attention=attention,
        length_mode=length_mode,
        max_length=7,
    ).eval()
    greedy = model.decode(src, lengths)
    assert greedy == [model.decode(src[:, b : b + 1], lengths[b : b + 1])[0] for b in range(4)]
    assert model.decode(src, lengths, beam=1) == greedy


def test_beam_search_scores_at_least_greedy():
    src, lengths = _targets()
    model = Seq2Seq("gru", VOCAB, VOCAB, embed_size=8, hidden_size=16, max_length=6).eval()
    greedy = model.decode(src, lengths)
    beam = model.decode(src, lengths, beam=4)

    def logp(b, hyp):
        tgt = torch.tensor(hyp + [0]).unsqueeze(1) if hyp else torch.zeros(1, 1, dtype=torch.long)
        loss, _ = model.loss(src[:, b : b + 1], lengths[b : b + 1], tgt, torch.tensor([len(hyp)]))
        return -float(loss) * (len(hyp) + 1)

    for b in range(4):
        if len(beam[b]) < 6 and len(greedy[b]) < 6:
            assert logp(b, beam[b]) >= logp(b, greedy[b]) - 1e-4


def test_seq2seq_ignores_source_padding():
    src, lengths = _targets()
    model = Seq2Seq("lstm", VOCAB, VOCAB, embed_size=8, hidden_size=16, bidirectional=True).eval()
    tgt, tgt_lengths = _targets()
    inputs = model.decoder.teacher(tgt, tgt_lengths).inputs
    logits, _ = model(src, lengths, inputs)
    padded = torch.cat([src, torch.randint(3, VOCAB, (3, 4))])
    logits_padded, _ = model(padded, lengths, inputs)
    torch.testing.assert_close(logits_padded, logits)


@pytest.mark.parametrize("length_mode", ["eos", "halt", "length"])
def test_generator_beam_one_equals_greedy(length_mode):
    model = ConditionalGenerator(
        "gru",
        VOCAB,
        num_conditions=4,
        condition_size=8,
        hidden_size=16,
        length_mode=length_mode,
        max_length=7,
    ).eval()
    condition = torch.tensor([0, 1, 2, 3])
    assert model.generate(condition, sample=False, beam=1) == model.generate(
        condition, sample=False
    )
