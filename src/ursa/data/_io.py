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
:func:`ursa.data.as_sequences` accepts.
"""

from __future__ import annotations

import numpy as np

from ._files import _EXTENSIONS, FORMATS, _as_path, _existing_file, format_of
from ._sequences import as_sequences
from ._tables import read_csv, read_parquet, table_columns, to_frame
from ._ts import read_ts

__all__ = [
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


def read_dataset(path, format=None, *, layout="long", id_column=None, time_column=None,
                 label_column=None):
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

    Returns
    -------
    X : ndarray of shape (n_sequences, n_timesteps, n_features) or list of ndarray
        As :func:`read_sequences` returns it.
    y : ndarray or None
        The labels: a ``.ts`` file's classes or targets, or ``label_column``'s values; None
        when the file has none.

    Raises
    ------
    FileNotFoundError, ValueError
        As the reader of the format.
    """
    p = _as_path(path)
    fmt = str(format).lower().lstrip(".") if isinstance(format, str) else format_of(p)
    kwargs = {}
    if fmt in ("csv", "parquet"):
        try:
            header = table_columns(p, fmt)
        except (OSError, ValueError):
            header = []  # the reader itself says what is wrong with the file
        kwargs = dict(layout=layout, label_column=label_column,
                      id_column=id_column or ("id" if "id" in header else None))
        if layout != "wide":
            kwargs["time_column"] = time_column or ("time" if "time" in header else None)
    loaded = read_sequences(p, format=format, **kwargs)
    return loaded if isinstance(loaded, tuple) else (loaded, None)


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


def write_sequences(path, X, labels=None) -> None:
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

    Raises
    ------
    ValueError
        ``path`` has another extension.
    """
    if _suffix(path) == ".npy":
        write_numpy(path, X)
        return
    frame = to_frame(X, "long")
    if labels is not None:
        frame.insert(2, "label", np.asarray(labels)[frame["id"].to_numpy()])
    write_table(path, frame)
