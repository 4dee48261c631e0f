"""Data layer: one internal form (padded float32 values + lengths), validation, scaling, windows, I/O."""

from ._batching import batch_rows, map_rows
from ._io import (
    read_csv,
    read_numpy,
    read_parquet,
    read_sequences,
    read_ts,
    write_csv,
    write_numpy,
    write_parquet,
)
from ._scaling import SCALINGS, SequenceScaler
from ._sequences import Sequences, as_sequences, input_kind, restore_layout
from ._series import as_points, as_series, restore_series_layout
from ._windows import sliding_windows, window_starts, windows_to_steps

__all__ = [
    "SCALINGS",
    "SequenceScaler",
    "Sequences",
    "as_points",
    "as_sequences",
    "as_series",
    "batch_rows",
    "input_kind",
    "map_rows",
    "read_csv",
    "read_numpy",
    "read_parquet",
    "read_sequences",
    "read_ts",
    "restore_layout",
    "restore_series_layout",
    "sliding_windows",
    "window_starts",
    "windows_to_steps",
    "write_csv",
    "write_numpy",
    "write_parquet",
]
