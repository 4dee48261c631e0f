"""Data layer: one internal form (padded float32 values + lengths), validation, scaling, windows, I/O."""

from ._scaling import SCALINGS, SequenceScaler
from ._sequences import Sequences, as_sequences, input_kind, restore_layout

__all__ = [
    "SCALINGS",
    "SequenceScaler",
    "Sequences",
    "as_sequences",
    "input_kind",
    "restore_layout",
]
