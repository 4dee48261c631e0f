"""Data layer: one internal form (padded float32 values + lengths), validation, scaling, windows, I/O.

Trailing all-NaN steps are padding: a sequence ends before them. NaN anywhere else is a missing
value. ``as_sequences(..., allow_nan=True)`` keeps it (estimators whose ``allow_nan`` tag is set
do: ``SequenceAutoencoder`` and ``RecurrentClusterer``), and the rest of the pipeline reads it as
missing: :class:`SequenceScaler` leaves it out of its statistics and scales it to NaN, the
clusterer's pooling summarises each window's observed values (a window with none stays
missing), the reconstruction losses leave it out (a step with every feature missing counts like
padding), and the recurrent encoder reads it as the training mean (0 in the scaled space).
Without ``allow_nan`` it is refused with an error naming the sequence, step and feature.

Token sequences (lists of strings or of integers, :class:`TokenSequences`) are encoded by a
fitted :class:`Vocabulary` into the same form: one channel of ids, 0 after each end.
"""

from ._audio import AudioSequences, read_audio
from ._batching import batch_rows, map_rows
from ._files import FORMATS, format_of
from ._io import (
    TABLE_EXTENSIONS,
    DataFile,
    read_dataset,
    read_labels,
    read_numpy,
    read_sequences,
    write_numpy,
    write_sequences,
    write_table,
    write_table_parts,
)
from ._parquet import Block, ParquetDataset
from ._scaling import SCALINGS, SequenceScaler
from ._sequences import ChannelsFirstWarning, Sequences, as_sequences, input_kind, restore_layout
from ._series import as_points, as_series, restore_series_layout
from ._tokens import TokenSequences, Vocabulary, is_token_input, read_tokens
from ._tables import read_csv, read_parquet, table_columns, to_frame, write_csv, write_parquet
from ._ts import read_ts
from ._windows import dominant_period, sliding_windows, window_starts, windows_to_steps

__all__ = [
    "AudioSequences",
    "Block",
    "DataFile",
    "ChannelsFirstWarning",
    "FORMATS",
    "ParquetDataset",
    "SCALINGS",
    "SequenceScaler",
    "Sequences",
    "TABLE_EXTENSIONS",
    "TokenSequences",
    "Vocabulary",
    "as_points",
    "as_sequences",
    "as_series",
    "batch_rows",
    "format_of",
    "dominant_period",
    "input_kind",
    "is_token_input",
    "map_rows",
    "read_csv",
    "read_dataset",
    "read_labels",
    "read_numpy",
    "read_audio",
    "read_parquet",
    "read_sequences",
    "read_tokens",
    "read_ts",
    "restore_layout",
    "restore_series_layout",
    "sliding_windows",
    "table_columns",
    "to_frame",
    "window_starts",
    "windows_to_steps",
    "write_csv",
    "write_numpy",
    "write_parquet",
    "write_sequences",
    "write_table",
    "write_table_parts",
]
