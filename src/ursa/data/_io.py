"""Sequence data on disk: one entry point per direction, and NumPy files.

Formats
-------
``.ts``
    The UCR/UEA time-series archive format (read only; :mod:`._ts`).
``.csv`` / ``.parquet``
    *Long* form: one row per (sequence id, time step), one column per feature.
    *Wide* form: one row per univariate sequence, one column per time step, NaN (or an empty
    cell) after the end of a shorter sequence (:mod:`._tables`).
``.npy`` / ``.npz``
    NumPy arrays, never unpickled.

Every reader returns sequences in the array layout of the rest of URSA: a float32 array of
shape ``(n_sequences, n_timesteps, n_features)`` when all sequences have the same length, else a
list of float32 ``(T_i, n_features)`` arrays. Every writer accepts any input form that
:func:`ursa.data.as_sequences` accepts. :func:`read_dataset` with ``return_names=True`` also
returns what ties results back to the file: sequence ids, feature names and time values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._files import _EXTENSIONS, FORMATS, _as_path, _existing_file, format_of
from ._sequences import as_sequences
from ._tables import _read_file as _read_table_file
from ._tables import read_csv, read_parquet, table_columns, to_frame
from ._ts import read_ts

__all__ = [
    "DataFile",
    "TABLE_EXTENSIONS",
    "read_dataset",
    "read_labels",
    "read_numpy",
    "read_sequences",
    "write_numpy",
    "write_sequences",
    "write_table",
]

# Extensions write_table and write_sequences choose their format by.
TABLE_EXTENSIONS = (".csv", ".parquet", ".pq", ".npy")


# --------------------------------------------------------------------------------------------
# NumPy


def read_numpy(path, key=None):
    """Read an array from a ``.npy`` or ``.npz`` file, never unpickling.

    Parameters
    ----------
    path : str or os.PathLike
    key : str, optional
        Name of the array in a ``.npz`` file; needed when it holds more than one.

    Returns
    -------
    ndarray
        The array as stored.
    """
    p = _existing_file(path)
    with open(p, "rb") as fh:
        magic = fh.read(6)
    # numpy treats any file without its magic string as a pickle, which would make garbage look
    # like "Python objects"; say what the file is not instead.
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise ValueError(f"{p}: not a .npy or .npz file (it does not start with numpy's magic "
                         "string or a zip header). Save arrays with numpy.save / numpy.savez, or "
                         "pass a CSV, Parquet or .ts file.")
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ValueError(
                f"{p}: holds Python objects that would need unpickling, which URSA never does. "
                "Save a numeric array instead."
            ) from None
        raise ValueError(f"{p}: not a valid .npy/.npz file ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{p}: not a valid .npy/.npz file ({exc}).") from None
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise ValueError(f"{p}: key={key!r} only applies to .npz files; this is a .npy file.")
        return loaded
    with loaded:
        keys = list(loaded.files)
        if key is None:
            if len(keys) != 1:
                raise ValueError(
                    f"{p}: holds {len(keys)} arrays ({', '.join(keys) or 'none'}); pass key= "
                    "with the one to read."
                )
            key = keys[0]
        elif key not in keys:
            raise ValueError(
                f"{p}: no array named {key!r}; the file holds: {', '.join(keys) or 'none'}."
            )
        try:
            return loaded[key]
        except ValueError:
            raise ValueError(
                f"{p}: array {key!r} holds Python objects that would need unpickling, which URSA "
                "never does."
            ) from None


def write_numpy(path, X):
    """Write sequences to ``path`` as one ``.npy`` array.

    The array is float32 of shape (n_sequences, max_length, n_features), NaN after the end of
    each shorter sequence (the padding convention :func:`as_sequences` reads back). The file is
    written at exactly ``path`` (no ``.npy`` is appended).
    """
    p = _as_path(path)
    seqs = as_sequences(X, name="X", allow_nan=True)
    with open(p, "wb") as fh:
        np.save(fh, seqs.to_padded(), allow_pickle=False)


# --------------------------------------------------------------------------------------------
# any format


def read_sequences(path, format=None, **kwargs):
    """Read sequences from a file, choosing the reader by extension or ``format``.

    Parameters
    ----------
    path : str or os.PathLike
    format : {"ts", "csv", "parquet", "npy", "npz"}, optional
        Overrides the extension (``.ts``, ``.csv``, ``.parquet``/``.pq``, ``.npy``, ``.npz``).
    **kwargs
        Passed to the reader: :func:`read_csv`/:func:`read_parquet` options, or ``key`` for
        :func:`read_numpy`.

    Returns
    -------
    ``(X, y)`` for ``.ts``; whatever the reader returns otherwise.
    """
    p = _as_path(path)
    if format is None:
        fmt = format_of(p)
        if fmt is None:
            ext = p.suffix or "(none)"
            raise ValueError(
                f"Cannot tell the format of '{p}' from its extension {ext!r}. Supported "
                f"extensions: {', '.join(_EXTENSIONS)}; or pass format= one of "
                f"{', '.join(FORMATS)}."
            )
    else:
        fmt = str(format).lower().lstrip(".") if isinstance(format, str) else format
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}.")
    if not p.exists():
        raise FileNotFoundError(f"No such file: '{p}'.")
    if fmt == "ts":
        if kwargs:
            raise TypeError(f"read_ts takes no options, got {', '.join(kwargs)}.")
        return read_ts(p)
    if fmt == "csv":
        return read_csv(p, **kwargs)
    if fmt == "parquet":
        return read_parquet(p, **kwargs)
    return read_numpy(p, **kwargs)


class DataFile(NamedTuple):
    """What a data file holds: the sequences, their labels, and the names that tie results
    back to the file (:func:`read_dataset` with ``return_names=True``).

    Attributes
    ----------
    X : ndarray of shape (n_sequences, n_timesteps, n_features) or list of ndarray
        The sequences, as :func:`read_sequences` returns them.
    y : ndarray or None
        One label per sequence, or None.
    ids : ndarray of shape (n_sequences,) or None
        Each sequence's id: the id column's values in the order of ``X`` (ints stay ints, text
        is str). None when the file names no sequences (``.ts``, ``.npy``, a table without an
        id column): results then number them 0, 1, ...
    feature_names : list of str or None
        The feature columns of a long table, in the order of ``X``'s last axis; None for a wide
        table, ``.ts`` and NumPy files.
    times : list of ndarray or None
        Per sequence, the time column's values of its steps, in order; None without a time
        column (steps are then 0, 1, ...).
    """

    X: object
    y: np.ndarray | None
    ids: np.ndarray | None
    feature_names: list[str] | None
    times: list[np.ndarray] | None


def read_dataset(path, format=None, *, layout="long", id_column=None, time_column=None,
                 label_column=None, feature_columns=None, return_names=False):
    """Read any supported file as ``(X, y)``, finding the id and time columns of a table.

    Parameters
    ----------
    path : str or os.PathLike
    format : {"ts", "csv", "parquet", "npy", "npz"}, optional
        Overrides the extension.
    layout : {"long", "wide"}, default="long"
        Layout of a CSV or Parquet file (see :func:`read_csv`).
    id_column, time_column : str, optional
        Columns of a CSV or Parquet file holding the sequence id and the time step. By default
        the columns named ``id`` and ``time`` when the file has them; a file without an id
        column is one sequence (one series), and one without a time column keeps its row order.
        A wide table has no time column.
    label_column : str, optional
        Column of a CSV or Parquet file holding one label per sequence.
    feature_columns : str or list of str, optional
        Columns of a CSV or Parquet file to read as features (long) or time steps (wide), in
        this order; by default every column that is not the id, time or label column.
    return_names : bool, default=False
        Return a :class:`DataFile` that also holds the sequence ids, the feature names and the
        time values, so that results can be joined back to the file.

    Returns
    -------
    X : ndarray of shape (n_sequences, n_timesteps, n_features) or list of ndarray
        As :func:`read_sequences` returns it.
    y : ndarray or None
        The labels: a ``.ts`` file's classes or targets, or ``label_column``'s values; None
        when the file has none.

    With ``return_names=True``, one :class:`DataFile` ``(X, y, ids, feature_names, times)``.

    Raises
    ------
    FileNotFoundError, ValueError
        As the reader of the format; ValueError also for table options given for another
        format.
    """
    p = _as_path(path)
    fmt = str(format).lower().lstrip(".") if isinstance(format, str) else format_of(p)
    if fmt not in ("csv", "parquet"):
        given = [name for name, value in (("id_column", id_column), ("time_column", time_column),
                                          ("label_column", label_column),
                                          ("feature_columns", feature_columns))
                 if value is not None]
        if given and fmt in FORMATS:
            one = len(given) == 1
            raise ValueError(f"{p}: {', '.join(n + '=' for n in given)} only "
                             f"{'applies' if one else 'apply'} to CSV and Parquet files, and "
                             f"this is a {fmt} file; drop {'it' if one else 'them'}.")
        loaded = read_sequences(p, format=format)
        X, y = loaded if isinstance(loaded, tuple) else (loaded, None)
        return DataFile(X, y, None, None, None) if return_names else (X, y)
    try:
        header = table_columns(p, fmt)
    except (OSError, ValueError):
        header = []  # the reader itself says what is wrong with the file
    if id_column is None and "id" in header:
        id_column = "id"
    if time_column is None and layout != "wide" and "time" in header:
        time_column = "time"
    if layout == "wide":
        time_column = None
        if id_column is not None and header and id_column not in header:
            raise ValueError(f"{p}: column {id_column!r} (id_column) not found. The file has "
                             f"the columns: {', '.join(map(str, header[:20]))}"
                             f"{', ...' if len(header) > 20 else ''}. Pass id_column= with the "
                             "right name.")
    table = _read_table_file(p, fmt, layout, id_column, time_column, feature_columns,
                             label_column)
    if return_names:
        return DataFile(table.X, table.y, table.ids, table.feature_names, table.times)
    return table.X, table.y


def read_labels(path) -> np.ndarray:
    """Labels from a file: a ``.npy``/``.npz`` array (any shape), or the ``label`` column (else
    the first column) of a CSV or Parquet file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    ndarray

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Another extension, or a table without rows or columns.
    """
    import pandas as pd

    p = _as_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No labels file at '{p}'.")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        return np.asarray(read_numpy(p))
    if suffix == ".csv":
        frame = pd.read_csv(p)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(p)
    else:
        raise ValueError(f"cannot read labels from '{p}': use .npy, .csv or .parquet.")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError(f"'{p}' holds no labels.")
    return frame["label" if "label" in frame.columns else frame.columns[0]].to_numpy()


# --------------------------------------------------------------------------------------------
# result tables and sequences, by extension


def _suffix(path) -> str:
    """The lower-case extension of a path, "" for a text stream; ValueError for an extension
    the writers below do not know."""
    if hasattr(path, "write"):
        return ""
    suffix = _as_path(path).suffix.lower()
    if suffix not in TABLE_EXTENSIONS:
        raise ValueError(f"cannot tell the output format of '{path}': name it with one of "
                         f"{', '.join(TABLE_EXTENSIONS)}.")
    return suffix


def write_table(path, frame, values=None) -> None:
    """Write a table of results, choosing the format by extension.

    Parameters
    ----------
    path : str, os.PathLike or text stream
        ``.csv`` (floats to 9 significant digits, so float32 values read back exactly),
        ``.parquet`` / ``.pq``, or ``.npy``; a text stream (e.g. ``sys.stdout``) gets CSV.
    frame : pandas.DataFrame
    values : ndarray, optional
        What a ``.npy`` file holds; default the frame's values as float64.

    Raises
    ------
    ValueError
        ``path`` has another extension.
    """
    suffix = _suffix(path)
    if suffix in ("", ".csv"):
        frame.to_csv(path, index=False, float_format="%.9g")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        array = frame.to_numpy(dtype=np.float64) if values is None else values
        with open(path, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def write_table_parts(path, frames) -> int:
    """Write a table that arrives in parts (an iterable of pandas DataFrames with the same
    columns), holding one part at a time; the number of rows written.

    ``path`` as in :func:`write_table`, except ``.npy`` (whose header needs the size first).
    A ``.parquet`` file gets a row group per part; a file is written beside ``path`` and renamed
    over it once complete.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    suffix = _suffix(path)
    if suffix not in ("", ".csv", ".parquet", ".pq"):
        raise ValueError(f"cannot write a streamed table to {str(path)!r}: use .csv or .parquet.")
    rows, writer = 0, None
    stream = not isinstance(path, (str, os.PathLike))
    target = path if stream else Path(path).with_name(Path(path).name + ".tmp")
    try:
        for number, frame in enumerate(frames):
            if suffix in (".parquet", ".pq"):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(str(target), table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(target, index=False, float_format="%.9g", header=number == 0,
                             mode="w" if number == 0 else "a")
            rows += len(frame)
        if writer is not None:
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.close()
    if not stream:
        os.replace(target, path)
    return rows


def write_sequences(path, X, labels=None, feature_names=None) -> None:
    """Write sequences, choosing the format by extension.

    Parameters
    ----------
    path : str, os.PathLike or text stream
        ``.npy``: one NaN-padded array (:func:`write_numpy`). ``.csv``, ``.parquet`` / ``.pq``
        or a text stream: the long form ``id, time, f0, f1, ...`` (:func:`to_frame`).
    X : array-like or list of array-like
        Any form :func:`as_sequences` accepts.
    labels : array-like of shape (n_sequences,), optional
        One label per sequence, written as a ``label`` column after ``time`` in long form
        (a ``.npy`` file holds the values only).
    feature_names : list of str, optional
        The feature columns' names in long form (e.g. a model's ``feature_names_in_``);
        default ``f0, f1, ...``.

    Raises
    ------
    ValueError
        ``path`` has another extension, or ``feature_names`` does not fit ``X`` (one distinct
        name per feature, none of them ``id``, ``time`` or, with labels, ``label``).
    """
    if _suffix(path) == ".npy":
        write_numpy(path, X)
        return
    names = None if feature_names is None else [str(n) for n in feature_names]
    if labels is not None and names is not None and "label" in names:
        raise ValueError(f"feature_names[{names.index('label')}] is 'label', the column that "
                         "holds the labels; rename that feature or write without labels.")
    frame = to_frame(X, "long", names)
    if labels is not None:
        frame.insert(2, "label", np.asarray(labels)[frame["id"].to_numpy()])
    write_table(path, frame)
