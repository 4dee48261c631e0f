"""Sequences in Parquet files too large for memory, read one block at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from ._files import _as_path, _check_layout, _columns_list
from ._sequences import Sequences, as_sequences

__all__ = ["Block", "ParquetDataset"]


class Block(NamedTuple):
    """Consecutive sequences of a :class:`ParquetDataset`.

    ``sequences`` holds them (float32, padded); ``ids`` their ids (None without an id column);
    ``start`` the position of the first one in the dataset."""

    sequences: Sequences
    ids: np.ndarray | None
    start: int


class _Piece(NamedTuple):
    """One row group of one file: what the dataset reads at a time."""

    file: str
    row_group: int
    n_rows: int


class ParquetDataset:
    """Sequences stored in a Parquet file or a folder of Parquet shards, read block by block.

    Nothing but an index of the row groups is held in memory: :meth:`blocks` reads consecutive
    row groups until a block holds at least ``block_size`` sequences. Estimators that train from
    a stream (``SequenceAutoencoder.fit``) take it in place of an array: they fit the scaler in
    one pass and then read each epoch block by block, in a shuffled block order, shuffling the
    sequences within each block.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.parquet`` file, or a folder whose ``.parquet`` files (searched recursively, read in
        sorted path order) are the shards of one dataset.
    layout : {"long", "wide"}
        As in :func:`read_parquet`. ``"long"``: one row per (sequence, step); each sequence's
        rows must be consecutive in the files (as :func:`write_parquet` writes them), though
        they may run across row groups and files. ``"wide"``: one row per univariate sequence.
    id_column, time_column, feature_columns
        As in :func:`read_parquet`.
    block_size : int, default=65536
        Sequences per block, at least (a block ends with a row group). Memory holds about one
        block of float32 values; larger blocks shuffle better.
    """

    def __init__(self, path, layout: str = "long", id_column="id", time_column="time",
                 feature_columns=None, block_size: int = 65536):
        import pyarrow.parquet as pq

        self.path = _as_path(path)
        self.layout = _check_layout(layout)
        if not isinstance(block_size, (int, np.integer)) or isinstance(block_size, bool) \
                or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
        self.block_size = int(block_size)
        if self.path.is_dir():
            files = sorted(str(f) for f in self.path.rglob("*.parquet") if f.is_file())
            if not files:
                raise FileNotFoundError(f"{self.path}: the folder holds no .parquet file.")
        elif self.path.is_file():
            files = [str(self.path)]
        else:
            raise FileNotFoundError(f"{self.path}: no such file or folder.")
        schemas = [pq.read_schema(f) for f in files]
        names = list(schemas[0].names)
        for f, schema in zip(files[1:], schemas[1:]):
            if list(schema.names) != names:
                raise ValueError(f"{f}: its columns {list(schema.names)} differ from those of "
                                 f"{files[0]} ({names}); every shard needs the same columns.")
        feature_columns = _columns_list(feature_columns, "feature_columns")
        checked = [(time_column, "time_column"), (id_column, "id_column")] \
            if layout == "long" else []  # the wide layout's id column is optional
        for column, argument in checked:
            if column is not None and column not in names:
                raise ValueError(f"{files[0]}: no column {column!r} ({argument}); the columns "
                                 f"are {names}. Name the right one, or pass {argument}=None.")
        if layout == "wide" and id_column not in names:
            id_column = None
        self.id_column, self.time_column = id_column, time_column if layout == "long" else None
        reserved = {c for c in (self.id_column, self.time_column) if c is not None}
        columns = feature_columns if feature_columns is not None else [
            c for c in names if c not in reserved]
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"{files[0]}: no column {missing[0]!r} (feature_columns); the "
                             f"columns are {names}.")
        if not columns:
            raise ValueError(f"{files[0]}: no feature column besides {sorted(reserved)}.")
        self.columns = columns
        self._pieces = [_Piece(f, g, pq.ParquetFile(f).metadata.row_group(g).num_rows)
                        for f in files for g in range(pq.ParquetFile(f).metadata.num_row_groups)]
        self._pieces = [p for p in self._pieces if p.n_rows]
        if not self._pieces:
            raise ValueError(f"{self.path}: the dataset has no rows.")
        self._index()

    # ------------------------------------------------------------------ the index
    def _read(self, piece: _Piece, columns: list):
        import pyarrow.parquet as pq

        return pq.ParquetFile(piece.file).read_row_group(piece.row_group, columns=columns)

    def _index(self) -> None:
        """Sequences starting in each row group, and (long form) the id each one ends on."""
        if self.layout == "wide" or self.id_column is None:
            starts = [p.n_rows for p in self._pieces] if self.layout == "wide" else \
                [1] + [0] * (len(self._pieces) - 1)
            self._last_ids = [None] * len(self._pieces)
        else:
            starts, self._last_ids, previous = [], [], None
            for piece in self._pieces:
                ids = self._read(piece, [self.id_column]).column(0).to_numpy(
                    zero_copy_only=False)
                changes = np.flatnonzero(ids[1:] != ids[:-1]) + 1
                runs = ids[np.concatenate([[0], changes])]
                if len(set(runs.tolist())) != len(runs):
                    raise ValueError(
                        f"{piece.file} (row group {piece.row_group}): the rows of "
                        f"{self.id_column}={runs[0]!r} or another id are not consecutive. A long-"
                        "form ParquetDataset needs each sequence's rows together; sort the "
                        f"files by {self.id_column!r} (e.g. write them with ursa.data."
                        "write_parquet).")
                starts.append(len(runs) - (previous is not None and runs[0] == previous))
                previous = ids[-1]
                self._last_ids.append(previous)
        self._starts = np.asarray(starts, dtype=np.int64)
        # Blocks: consecutive row groups holding at least block_size sequences.
        bounds, count = [0], 0
        for k, n in enumerate(self._starts):
            count += int(n)
            if count >= self.block_size and k + 1 < len(self._pieces):
                bounds.append(k + 1)
                count = 0
        bounds.append(len(self._pieces))
        self._blocks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:])
                        if self._starts[a:b].sum() > 0]
        sizes = [int(self._starts[a:b].sum()) for a, b in self._blocks]
        self.block_sizes = np.asarray(sizes, dtype=np.int64)
        self.block_starts = np.concatenate([[0], np.cumsum(self.block_sizes)[:-1]]).astype(
            np.int64)

    # ------------------------------------------------------------------ public
    @property
    def n_sequences(self) -> int:
        """Sequences in the dataset."""
        return int(self.block_sizes.sum())

    @property
    def n_blocks(self) -> int:
        return len(self.block_sizes)

    @property
    def n_features(self) -> int:
        """Features per step: the feature columns (long form), or 1 (wide form)."""
        return 1 if self.layout == "wide" else len(self.columns)

    @property
    def feature_names(self) -> list[str] | None:
        """The feature columns' names (long form), or None (wide form)."""
        return None if self.layout == "wide" else [str(c) for c in self.columns]

    def block(self, k: int) -> Block:
        """Read block ``k`` (0 <= k < n_blocks)."""
        import pandas as pd
        import pyarrow as pa

        from ._tables import _read_table

        if not 0 <= k < self.n_blocks:
            raise IndexError(f"block {k} of a dataset of {self.n_blocks} blocks")
        first, stop = self._blocks[k]
        wanted = [c for c in (self.id_column, self.time_column) if c is not None] + [
            c for c in self.columns if c not in (self.id_column, self.time_column)]
        tables = [self._read(self._pieces[i], wanted) for i in range(first, stop)]
        if self.layout == "long" and self.id_column is not None:
            tables = self._whole_sequences(tables, first, stop, wanted)
        frame = pa.concat_tables(tables).to_pandas()
        if not isinstance(frame, pd.DataFrame) or not len(frame):
            raise ValueError(f"{self.path}: block {k} holds no rows")
        table = _read_table(frame, self._pieces[first].file, self.layout, self.id_column,
                            self.time_column, self.columns, None)
        seqs = as_sequences(table.X, name=f"{self.path} (block {k})", allow_nan=True)
        if seqs.n_sequences != self.block_sizes[k]:
            raise ValueError(f"{self.path}: block {k} read {seqs.n_sequences} sequences where "
                             f"the index counted {self.block_sizes[k]}: the files changed since "
                             "this dataset was opened. Open it again.")
        return Block(seqs, table.ids, int(self.block_starts[k]))

    def blocks(self, order=None) -> Iterator[Block]:
        """Yield the blocks in file order, or in ``order`` (block numbers)."""
        for k in (range(self.n_blocks) if order is None else order):
            yield self.block(int(k))

    def read(self) -> Sequences:
        """Every sequence in memory (small datasets and tests)."""
        parts = [b.sequences for b in self.blocks()]
        longest = max(p.max_length for p in parts)
        values = np.zeros((self.n_sequences, longest, self.n_features), dtype=np.float32)
        for part, start in zip(parts, self.block_starts):
            values[start:start + part.n_sequences, : part.max_length] = part.values
        return Sequences(values, np.concatenate([p.lengths for p in parts]))

    def fingerprint(self) -> str:
        """What identifies the data for checkpoints: every file's path, size and modification
        time, and the reading settings."""
        import hashlib
        import json

        files = sorted({p.file for p in self._pieces})
        stats = [(f, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in files]
        settings = [self.layout, self.id_column, self.time_column, list(map(str, self.columns))]
        return hashlib.sha256(json.dumps([stats, settings]).encode()).hexdigest()

    def __repr__(self) -> str:
        return (f"ParquetDataset({str(self.path)!r}, layout={self.layout!r}, "
                f"n_sequences={self.n_sequences}, n_blocks={self.n_blocks})")

    # ------------------------------------------------------------------ long form
    def _whole_sequences(self, tables, first: int, stop: int, columns: list):
        """The block's rows with its sequences whole: without the rows of a sequence that began
        in the block before, with the rest of the rows of the one it ends on."""
        id_index = columns.index(self.id_column)
        if first > 0 and self._last_ids[first - 1] is not None:
            carried = self._last_ids[first - 1]
            while tables:
                ids = tables[0].column(id_index).to_numpy(zero_copy_only=False)
                other = np.flatnonzero(ids != carried)
                if len(other):
                    tables[0] = tables[0].slice(int(other[0]))
                    break
                tables.pop(0)  # the whole row group continues the earlier sequence
        last = self._last_ids[stop - 1]
        for i in range(stop, len(self._pieces)):
            more = self._read(self._pieces[i], columns)
            ids = more.column(id_index).to_numpy(zero_copy_only=False)
            other = np.flatnonzero(ids != last)
            tables.append(more.slice(0, int(other[0])) if len(other) else more)
            if len(other):
                break
        return [t for t in tables if t.num_rows]
