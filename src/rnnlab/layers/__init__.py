"""Structures built from cells: unrolling over time and the layers composed from it."""

from rnnlab.layers.unroll import Recurrent, reverse_padded, unroll

__all__ = ["Recurrent", "reverse_padded", "unroll"]
