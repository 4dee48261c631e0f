"""What the readers and writers share: paths, format names, layouts and small checks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "format_of"]

FORMATS = ("ts", "csv", "parquet", "npy", "npz")
_EXTENSIONS = {
    ".ts": "ts",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
_LAYOUTS = ("long", "wide")


def format_of(path) -> str | None:
    """The data format that the extension of ``path`` names.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    {"ts", "csv", "parquet", "npy", "npz"} or None
        ``.ts``, ``.csv`` (also compressed: ``.csv.gz``, ``.csv.zip``, ...), ``.parquet`` or
        ``.pq``, ``.npy``, ``.npz``, in any case; None for any other extension or none.
    """
    suffixes = [s.lower() for s in _as_path(path).suffixes]
    if not suffixes:
        return None
    if suffixes[-1] in _COMPRESSION_SUFFIXES and len(suffixes) >= 2 and suffixes[-2] == ".csv":
        return "csv"
    return _EXTENSIONS.get(suffixes[-1])


def _as_path(path, name: str = "path") -> Path:
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}.")


def _existing_file(path) -> Path:
    p = _as_path(path)
    if not p.exists():
        raise FileNotFoundError(f"No such file: '{p}'.")
    if p.is_dir():
        raise IsADirectoryError(f"'{p}' is a directory; pass the path of a file.")
    return p


def _pack(arrays: list[np.ndarray]):
    """A (n, T, C) float32 array when all arrays have the same length, else the list."""
    if len({a.shape[0] for a in arrays}) == 1:
        return np.stack(arrays).astype(np.float32, copy=False)
    return arrays


def _check_layout(layout) -> str:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'long' or 'wide', got {layout!r}.")
    return layout


def _columns_list(value, name: str) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a column name or a list of column names.") from None


def _show(value) -> str:
    """repr of a cell value, without numpy's scalar wrapper."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)
