"""Validators for constructor arguments and options: each raises a one-line ``ConfigError``
naming the argument and the value it got."""

from __future__ import annotations

from rnnlab.errors import ConfigError


def check_positive(**sizes: int) -> None:
    """Raise a ConfigError naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def check_probability(name: str, p: float) -> float:
    """Raise a ConfigError unless ``0 <= p < 1``; return ``p`` as a float."""
    if not 0.0 <= float(p) < 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1), got {p!r}")
    return float(p)
