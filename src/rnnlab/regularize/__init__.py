"""Regularisation for recurrent networks: dropout variants, zoneout, DropConnect, weight noise,
and penalties on recurrent weights and activations."""

from rnnlab.regularize.dropout import LockedDropout, embedding_dropout
from rnnlab.regularize.penalties import (
    activation_regularization,
    constrain_spectral_norm_,
    gradient_norm_preservation,
    recurrent_l2,
    temporal_activation_regularization,
)
from rnnlab.regularize.recurrent_dropout import RecurrentDropout
from rnnlab.regularize.weight_drop import WeightDrop
from rnnlab.regularize.weight_noise import WeightNoise
from rnnlab.regularize.wrap import CELL_REGULARIZERS, keep_plain_names, wrap_cell
from rnnlab.regularize.zoneout import Zoneout

__all__ = [
    "CELL_REGULARIZERS",
    "LockedDropout",
    "RecurrentDropout",
    "WeightDrop",
    "WeightNoise",
    "Zoneout",
    "activation_regularization",
    "constrain_spectral_norm_",
    "embedding_dropout",
    "gradient_norm_preservation",
    "keep_plain_names",
    "recurrent_l2",
    "temporal_activation_regularization",
    "wrap_cell",
]
