"""SequenceClassifier and SequenceTagger: they learn, and padding never changes their outputs."""

import pytest
import torch

from rnnlab.models import SequenceClassifier, SequenceTagger


def _batch(steps=7, batch=6, vocab=12):
    tokens = torch.randint(3, vocab, (steps, batch))
    lengths = torch.tensor([7, 5, 3, 1, 6, 2])
    return tokens, lengths


def _train(model, loss_fn, steps=40):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(steps):
        loss, _ = loss_fn()
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, float(loss_fn()[0].detach())


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_loss_falls(cell, pooling):
    tokens, lengths = _batch()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    model = SequenceClassifier(cell, 12, 3, embed_size=8, hidden_size=16, pooling=pooling)
    first, last = _train(model, lambda: model.loss(tokens, lengths, labels))
    assert last < 0.5 * first


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_classifier_ignores_padding(cell, pooling):
    tokens, lengths = _batch()
    model = SequenceClassifier(
        cell, 12, 3, embed_size=8, hidden_size=16, pooling=pooling, bidirectional=True
    ).eval()
    padded = torch.cat([tokens, torch.randint(3, 12, (4, tokens.shape[1]))])
    garbage = tokens.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[n:, b] = torch.randint(3, 12, (tokens.shape[0] - n,))
    reference = model(tokens, lengths)
    torch.testing.assert_close(model(padded, lengths), reference)
    torch.testing.assert_close(model(garbage, lengths), reference)
    # and each sequence alone, unpadded, gives the same logits
    for b, n in enumerate(lengths.tolist()):
        alone = model(tokens[:n, b : b + 1], torch.tensor([n]))
        torch.testing.assert_close(alone[0], reference[b], atol=1e-5, rtol=1e-5)


def test_tagger_learns_and_ignores_padding():
    tokens, lengths = _batch()
    tags = tokens % 3
    model = SequenceTagger("gru", 12, 3, embed_size=8, hidden_size=16, bidirectional=True)
    first, last = _train(model, lambda: model.loss(tokens, lengths, tags))
    assert last < 0.5 * first
    model.eval()
    padded = torch.cat([tokens, torch.randint(3, 12, (3, tokens.shape[1]))])
    out, out_padded = model(tokens, lengths), model(padded, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out_padded[:n, b], out[:n, b])
