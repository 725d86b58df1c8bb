"""The regularisation flags of ``rnnlab train`` and the two that act in the trainer.

Model regularisers (built into the model by the language-model tasks ``charlm`` and ``wordlm``;
see :class:`rnnlab.models.language_model.LanguageModel`): ``--variational-dropout``,
``--recurrent-dropout``, ``--weight-drop``, ``--embedding-dropout``, ``--zoneout-cell``,
``--zoneout-hidden``, ``--ar``, ``--tar``, ``--recurrent-l2``, ``--omega`` (``--dropout`` is a
generic flag).

Trainer regularisers (any task):

* ``--weight-noise SIGMA``: N(0, SIGMA^2) added to every parameter before the forward and
  backward pass of each step and removed before the optimiser update
  (:class:`rnnlab.regularize.WeightNoise`);
* ``--spectral-norm MAX``: after each update every gate block of every ``weight_hh*`` is
  rescaled to spectral norm at most MAX (:func:`rnnlab.regularize.constrain_spectral_norm_`).
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.regularize import WeightNoise, constrain_spectral_norm_

PROBABILITIES = (
    "variational_dropout",
    "recurrent_dropout",
    "weight_drop",
    "embedding_dropout",
    "zoneout_cell",
    "zoneout_hidden",
)
PENALTIES = ("ar", "tar", "recurrent_l2", "omega")
MODEL_REGULARIZERS = PROBABILITIES + PENALTIES
"""Settings the language-model tasks pass to their model."""
LM_TASKS = ("charlm", "wordlm")

REGULARIZATION_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(PROBABILITIES, 0.0),
    "recurrent_dropout": None,  # None: --variational-dropout's probability
    **dict.fromkeys(PENALTIES, 0.0),
    "weight_noise": 0.0,
    "spectral_norm": None,
}


def add_regularization_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("regularisation (docs/regularize.md)")
    p = "P"
    g.add_argument(
        "--variational-dropout",
        type=float,
        metavar=p,
        help="dropout with one mask per sequence on embeddings, between layers, before the "
        "output and (unless --recurrent-dropout) on the recurrent state (Gal); replaces --dropout",
    )
    g.add_argument(
        "--recurrent-dropout",
        type=float,
        metavar=p,
        help="one dropout mask per sequence on the recurrent state h",
    )
    g.add_argument(
        "--weight-drop", type=float, metavar=p, help="DropConnect on W_hh, one mask per batch"
    )
    g.add_argument(
        "--embedding-dropout", type=float, metavar=p, help="drop whole words of the embedding"
    )
    g.add_argument("--zoneout-cell", type=float, metavar=p, help="zoneout on the LSTM cell c")
    g.add_argument("--zoneout-hidden", type=float, metavar=p, help="zoneout on the hidden h")
    g.add_argument("--ar", type=float, metavar="ALPHA", help="activation regularisation weight")
    g.add_argument("--tar", type=float, metavar="BETA", help="temporal activation reg. weight")
    g.add_argument(
        "--recurrent-l2",
        type=float,
        metavar="W",
        help="L2 on W_hh (shrinks its eigenvalues: speeds up forgetting)",
    )
    g.add_argument(
        "--omega",
        type=float,
        metavar="WEIGHT",
        help="Pascanu et al.'s gradient-norm-preserving regulariser Omega times WEIGHT "
        "(the layers then train on the reference loop)",
    )
    g.add_argument(
        "--weight-noise",
        type=float,
        metavar="SIGMA",
        help="Gaussian weight noise during forward/backward, removed before the update",
    )
    g.add_argument(
        "--spectral-norm",
        type=float,
        metavar="MAX",
        help="after each step, rescale W_hh's gate blocks to spectral norm <= MAX",
    )


def validate_regularization(config: argparse.Namespace) -> None:
    """Raise ``ConfigError`` for a regularisation setting no run can use."""
    for name in PROBABILITIES:
        value = getattr(config, name, None)
        if value is not None and not 0.0 <= value < 1.0:
            raise ConfigError(f"{_flag(name)} must be a probability in [0, 1), got {value}")
    for name in (*PENALTIES, "weight_noise"):
        value = getattr(config, name, 0.0)
        if value is not None and value < 0:
            raise ConfigError(f"{_flag(name)} must be zero or positive, got {value}")
    if config.spectral_norm is not None and config.spectral_norm <= 0:
        raise ConfigError(f"--spectral-norm must be positive, got {config.spectral_norm}")
    if config.task not in LM_TASKS:
        given = [_flag(n) for n in MODEL_REGULARIZERS if getattr(config, n, None)]
        if given:
            raise ConfigError(
                f"{', '.join(given)}: only the language-model tasks ({', '.join(LM_TASKS)}) "
                f"build these into their model, not {config.task!r}"
            )
    if getattr(config, "omega", 0.0) and (
        getattr(config, "zoneout_cell", 0.0) or getattr(config, "zoneout_hidden", 0.0)
    ):
        raise ConfigError(
            "--omega re-runs each step to get its Jacobian, and zoneout draws new masks at every "
            "step; give --omega or --zoneout-*, not both"
        )
    if getattr(config, "dropout", 0.0) and getattr(config, "variational_dropout", 0.0):
        raise ConfigError("give --dropout or --variational-dropout, not both")


def model_regularizers(config: argparse.Namespace) -> dict[str, Any]:
    """The model keywords of :class:`~rnnlab.models.language_model.LanguageModel`."""
    values = {name: getattr(config, name, REGULARIZATION_DEFAULTS[name]) for name in PROBABILITIES}
    values.update({name: getattr(config, name, 0.0) or 0.0 for name in PENALTIES})
    return {k: v for k, v in values.items() if v is not None}


def weight_noise(model: nn.Module, config: argparse.Namespace) -> AbstractContextManager:
    """The context of one step's forward and backward pass: weight noise, or nothing."""
    sigma = getattr(config, "weight_noise", 0.0) or 0.0
    return WeightNoise(model.parameters(), sigma) if sigma > 0 else nullcontext()


def after_update(model: nn.Module, config: argparse.Namespace) -> None:
    """Constraints applied after each optimiser step (``--spectral-norm``)."""
    max_norm = getattr(config, "spectral_norm", None)
    if max_norm is not None:
        constrain_spectral_norm_(model, max_norm)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
