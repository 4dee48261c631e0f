"""Readers and writers for sequence data on disk.

Formats
-------
``.ts``
    The UCR/UEA time-series archive format (read only).
``.csv`` / ``.parquet``
    *Long* form: one row per (sequence id, time step), one column per feature.
    *Wide* form: one row per univariate sequence, one column per time step, NaN (or an empty
    cell) after the end of a shorter sequence.
``.npy`` / ``.npz``
    NumPy arrays, never unpickled.

Every reader returns sequences in the array layout of the rest of URSA: a float32 array of
shape ``(n_sequences, n_timesteps, n_features)`` when all sequences have the same length, else a
list of float32 ``(T_i, n_features)`` arrays. Every writer accepts any input form that
:func:`ursa.data._sequences.as_sequences` accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._sequences import as_sequences

__all__ = [
    "read_ts",
    "read_csv",
    "read_parquet",
    "read_numpy",
    "read_sequences",
    "write_csv",
    "write_parquet",
    "write_numpy",
]

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
_TS_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")


# --------------------------------------------------------------------------------------------
# helpers


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


# --------------------------------------------------------------------------------------------
# .ts (UCR/UEA)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _ts_bool(value: str, tag: str, where: str) -> bool:
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise ValueError(f"{where}: @{tag} must be 'true' or 'false', got {value.strip()!r}.")


def _parse_channel(text: str, where: str, channel: int) -> np.ndarray:
    tokens = text.split(",")
    if tokens and not tokens[-1].strip() and len(tokens) > 1:
        tokens = tokens[:-1]  # tolerate one trailing comma
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        pass
    values = np.empty(len(tokens), dtype=np.float64)
    for j, tok in enumerate(tokens):
        tok = tok.strip()
        if tok == "?":
            values[j] = np.nan
            continue
        try:
            values[j] = float(tok)
        except ValueError:
            if not tok:
                what = "an empty value" if len(tokens) > 1 else "no values"
            else:
                what = f"the non-numeric value {tok!r}"
            raise ValueError(
                f"{where}: channel {channel} has {what} at position {j}. "
                "Values must be numbers, or '?' for a missing value."
            ) from None
    return values


def read_ts(path):
    """Read a UCR/UEA ``.ts`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.ts`` file.

    Returns
    -------
    X : ndarray of shape (n_cases, n_timesteps, n_channels) or list of ndarray
        float32. An array when every case has the same length, else a list of
        ``(T_i, n_channels)`` arrays. Missing values (``?``) are NaN. When the channels of one
        case have different lengths, the shorter ones are padded with NaN to the longest.
        (Steps that are missing in every channel at the end of a case look like padding to
        :func:`as_sequences`, which then shortens that case.)
    y : ndarray of str, or None
        The class label of each case; ``None`` when the header says ``@classLabel false``.
        A regression file (``@targetLabel true``) gives float targets.

    Raises
    ------
    ValueError
        For a malformed file; the message names the file and the 1-based line number.
        Timestamped files (``@timeStamps true``) are not supported.

    Notes
    -----
    Lines starting with ``#`` or ``%`` are comments; blank lines are skipped. Header tags are
    case-insensitive, unknown tags are ignored, and a repeated tag keeps its last value.
    """
    p = _existing_file(path)
    lines = _decode(p.read_bytes()).splitlines()

    has_labels = False
    class_labels: list[str] | None = None
    has_target = False
    n_dims: int | None = None
    n_dims_from = ""
    univariate: bool | None = None
    univariate_line = 0
    data_line = None

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line[0] in "#%":
            continue
        where = f"{p}, line {number}"
        if line[0] != "@":
            raise ValueError(
                f"{where}: data found before the @data line. Put the header tags (@problemName, "
                "@classLabel, ..., @data) before the first case."
            )
        parts = line[1:].split()
        tag = parts[0].lower() if parts else ""
        args = parts[1:]
        if tag == "data":
            data_line = number
            break
        if tag in _TS_FLAGS:
            if not args:
                raise ValueError(f"{where}: @{parts[0]} needs a value, 'true' or 'false'.")
            flag = _ts_bool(args[0], parts[0], where)
            if tag == "timestamps" and flag:
                raise ValueError(
                    f"{where}: timestamped .ts files (@timeStamps true) are not supported. "
                    "Convert the file to long-form CSV or Parquet with a time column."
                )
            if tag == "univariate":
                univariate = flag
                univariate_line = number
            elif tag == "classlabel":
                has_labels = flag
                class_labels = args[1:] if flag else None
            elif tag == "targetlabel":
                has_target = flag
        elif tag == "dimensions":
            try:
                n_dims = int(args[0])
                if n_dims < 1:
                    raise ValueError
            except (IndexError, ValueError):
                raise ValueError(
                    f"{where}: @dimensions must be a positive integer, got {' '.join(args)!r}."
                ) from None
            n_dims_from = f"@dimensions on line {number} says"
    if data_line is None:
        raise ValueError(
            f"{p}: no @data line found (read {len(lines)} lines). A .ts file needs a header "
            "ending with @data, followed by one case per line."
        )
    if has_labels and has_target:
        raise ValueError(f"{p}: the header sets both @classLabel true and @targetLabel true.")
    if n_dims is None and univariate:
        n_dims = 1
        n_dims_from = f"@univariate true on line {univariate_line} allows"
    label_set = set(class_labels) if class_labels else None
    with_label = has_labels or has_target

    cases: list[np.ndarray] = []
    labels: list[str] = []
    for number in range(data_line + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if not line or line[0] in "#%":
            continue
        where = f"{p}, line {number}"
        if line[0] == "@":
            raise ValueError(f"{where}: header tag {line.split()[0]!r} after the @data line.")
        fields = line.split(":")
        if with_label:
            label = fields.pop().strip()
            if not fields:
                raise ValueError(
                    f"{where}: expected the channels followed by ':<label>', found one field only."
                )
            if has_labels:
                if not label:
                    raise ValueError(f"{where}: the class label (last ':' field) is empty.")
                if label_set is not None and label not in label_set:
                    raise ValueError(
                        f"{where}: class label {label!r} is not one of the labels declared by "
                        f"@classLabel: {' '.join(class_labels)}."
                    )
            else:
                try:
                    label = float(label)
                except ValueError:
                    raise ValueError(f"{where}: target {label!r} is not a number.") from None
            labels.append(label)
        if n_dims is None:
            n_dims = len(fields)
            n_dims_from = f"the first case (line {number}) has"
        elif len(fields) != n_dims:
            raise ValueError(
                f"{where}: found {len(fields)} channels, but {n_dims_from} {n_dims}. "
                "Channels are separated by ':'"
                + (", and the class label is the last field." if with_label else ".")
            )
        channels = [_parse_channel(text, where, c) for c, text in enumerate(fields)]
        length = max(len(c) for c in channels)
        case = np.full((length, n_dims), np.nan, dtype=np.float32)
        for c, values in enumerate(channels):
            case[: len(values), c] = values
        cases.append(case)
    if not cases:
        raise ValueError(f"{p}, line {data_line}: no cases after the @data line.")

    X = _pack(cases)
    if has_labels:
        y = np.array(labels, dtype=str)
    elif has_target:
        y = np.array(labels, dtype=np.float64)
    else:
        y = None
    return X, y


# --------------------------------------------------------------------------------------------
# CSV / Parquet


def _columns_list(value, name: str) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a column name or a list of column names.") from None


def _require_column(df: pd.DataFrame, column, argument: str, p: Path) -> None:
    if column not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:20]))
        more = ", ..." if df.shape[1] > 20 else ""
        raise ValueError(
            f"{p}: column {column!r} ({argument}) not found. The file has the columns: "
            f"{shown}{more}. Pass {argument}= with the right name."
        )


def _numeric_block(df: pd.DataFrame, columns: list, p: Path, what: str) -> np.ndarray:
    for col in columns:
        series = df[col]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            converted = pd.to_numeric(series, errors="coerce")
            bad = converted.isna() & series.notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise ValueError(
                f"{p}: {what} column {col!r} is not numeric (dtype {series.dtype}); row {row} "
                f"(0-based) holds {_show(series.iloc[row])}. Select numeric columns with "
                "feature_columns=, or fix the file."
            )
    if not columns:
        raise ValueError(f"{p}: no {what} columns left to read. Pass feature_columns=.")
    return df[columns].to_numpy(dtype=np.float32, na_value=np.nan)


def _show(value) -> str:
    """repr of a cell value, without numpy's scalar wrapper."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _labels(values) -> np.ndarray:
    out = np.asarray(values)
    if out.dtype == object:
        try:
            out = out.astype(str)
        except (TypeError, ValueError):
            pass
    return out


def _read_table(
    df: pd.DataFrame, p: Path, layout, id_column, time_column, feature_columns, label_column
):
    _check_layout(layout)
    feature_columns = _columns_list(feature_columns, "feature_columns")
    if len(df) == 0:
        raise ValueError(f"{p}: the file has no rows.")
    if label_column is not None:
        _require_column(df, label_column, "label_column", p)
    if feature_columns is not None:
        for col in feature_columns:
            _require_column(df, col, "feature_columns", p)

    if layout == "wide":
        reserved = {c for c in (id_column, label_column) if c is not None}
        steps = (
            feature_columns
            if feature_columns is not None
            else [c for c in df.columns if c not in reserved]
        )
        values = _numeric_block(df, steps, p, "time-step")
        valid = ~np.isnan(values)
        last = values.shape[1] - np.argmax(valid[:, ::-1], axis=1)
        lengths = np.where(valid.any(axis=1), last, 0)
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            raise ValueError(
                f"{p}: row {int(empty[0])} has no values (all time-step columns are empty)."
            )
        arrays = [values[i, : lengths[i], None] for i in range(len(values))]
        X = _pack(arrays)
        if label_column is None:
            return X
        return X, _labels(df[label_column].to_numpy())

    # long form
    reserved = [c for c in (id_column, time_column, label_column) if c is not None]
    if id_column is not None:
        _require_column(df, id_column, "id_column", p)
    if time_column is not None:
        _require_column(df, time_column, "time_column", p)
    features = (
        feature_columns
        if feature_columns is not None
        else [c for c in df.columns if c not in reserved]
    )
    values = _numeric_block(df, features, p, "feature")

    n_rows = len(df)
    if id_column is not None:
        ids = df[id_column]
        if ids.isna().any():
            row = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise ValueError(
                f"{p}: column {id_column!r} (id_column) is empty at row {row} (0-based)."
            )
        codes, uniques = pd.factorize(ids, sort=False)  # first-appearance order
    else:
        codes, uniques = np.zeros(n_rows, dtype=np.int64), np.array([0])
    if time_column is not None:
        times = df[time_column]
        if times.isna().any():
            row = int(np.flatnonzero(times.isna().to_numpy())[0])
            raise ValueError(
                f"{p}: column {time_column!r} (time_column) is empty at row {row} (0-based)."
            )
        key = pd.DataFrame({"code": codes, "time": times.to_numpy()})
        try:
            order = key.sort_values(["code", "time"], kind="mergesort").index.to_numpy()
        except TypeError as exc:
            raise ValueError(
                f"{p}: column {time_column!r} (time_column) mixes values that cannot be "
                f"ordered ({exc})."
            ) from None
        dup = key.duplicated(["code", "time"]).to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            ident = uniques[codes[row]] if id_column is not None else None
            raise ValueError(
                f"{p}: duplicate rows for {id_column!r}={_show(ident)}, {time_column!r}="
                f"{_show(times.iloc[row])} (second one at row {row}, 0-based). Each (id, time) "
                "pair must appear once."
            )
    else:
        order = np.argsort(codes, kind="stable")

    sorted_codes = codes[order]
    values = values[order]
    counts = np.bincount(sorted_codes, minlength=len(uniques))
    bounds = np.cumsum(counts)[:-1]
    arrays = np.split(values, bounds)
    X = _pack(arrays)
    if label_column is None:
        return X
    label_values = df[label_column].to_numpy()[order]
    firsts = np.concatenate([[0], bounds])
    per_group = pd.Series(label_values).groupby(sorted_codes, sort=True).nunique(dropna=False)
    mixed = np.flatnonzero(per_group.to_numpy() > 1)
    if len(mixed):
        ident = uniques[int(mixed[0])] if id_column is not None else None
        raise ValueError(
            f"{p}: sequence {id_column!r}={_show(ident)} has more than one value in column "
            f"{label_column!r} (label_column); a label must be constant within a sequence."
        )
    return X, _labels(label_values[firsts])


_TABLE_DOC = """

    Parameters
    ----------
    path : str or os.PathLike
    layout : {{"long", "wide"}}
        ``"long"``: one row per (sequence, time step). Rows are grouped by ``id_column`` (sequences
        keep the order in which their ids first appear) and sorted by ``time_column`` within a
        sequence; the features are all other columns (or ``feature_columns``). Gaps in the time
        column are not checked. ``id_column=None`` reads the whole file as one sequence;
        ``time_column=None`` keeps the row order.
        ``"wide"``: one row per univariate sequence, one column per time step (all columns except
        ``id_column`` and ``label_column`` when present, or ``feature_columns``); trailing NaN or
        empty cells end a shorter sequence.
    id_column, time_column : str or None
    feature_columns : list of str, optional
        Columns to read as features (long) or time steps (wide).
    label_column : str, optional
        Column holding a label per sequence (constant within a sequence in long form).

    Returns
    -------
    X : ndarray of shape (n_sequences, n_timesteps, n_features) or list of ndarray
        float32; an array when all sequences have the same length, else a list of
        ``(T_i, n_features)`` arrays.
    y : ndarray
        Only when ``label_column`` is given: ``(X, y)``, one label per sequence.

    Raises
    ------
    ValueError
        Naming the file and the column: missing id/time/label column, non-numeric feature
        column, duplicate (id, time) rows, a label that changes within a sequence, bad layout.
    """


def read_csv(
    path,
    layout="long",
    id_column="id",
    time_column="time",
    feature_columns=None,
    label_column=None,
):
    p = _existing_file(path)
    _check_layout(layout)
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{p}: the file is empty.") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{p}: not a valid CSV file ({exc}).") from None
    return _read_table(df, p, layout, id_column, time_column, feature_columns, label_column)


def read_parquet(
    path,
    layout="long",
    id_column="id",
    time_column="time",
    feature_columns=None,
    label_column=None,
):
    p = _existing_file(path)
    _check_layout(layout)
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ValueError(
            f"{p}: not a readable Parquet file ({type(exc).__name__}: {exc})."
        ) from None
    return _read_table(df, p, layout, id_column, time_column, feature_columns, label_column)


read_csv.__doc__ = "Read sequences from a CSV file." + _TABLE_DOC
read_parquet.__doc__ = "Read sequences from a Parquet file." + _TABLE_DOC


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


# --------------------------------------------------------------------------------------------
# dispatch


def _format_of(p: Path) -> str | None:
    suffixes = [s.lower() for s in p.suffixes]
    if not suffixes:
        return None
    if suffixes[-1] in _COMPRESSION_SUFFIXES and len(suffixes) >= 2 and suffixes[-2] == ".csv":
        return "csv"
    return _EXTENSIONS.get(suffixes[-1])


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
        fmt = _format_of(p)
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


# --------------------------------------------------------------------------------------------
# writers


def _feature_names(feature_names, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"f{i}" for i in range(n_features)]
    names = _columns_list(feature_names, "feature_names")
    if len(names) != n_features:
        raise ValueError(
            f"feature_names has {len(names)} names but X has {n_features} features; "
            "pass one name per feature."
        )
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise TypeError(f"feature_names[{i}] must be a non-empty str, got {name!r}.")
        if name in ("id", "time"):
            raise ValueError(
                f"feature_names[{i}] is {name!r}, which the long form uses for its own column; "
                "choose another name."
            )
    if len(set(names)) != len(names):
        raise ValueError("feature_names must be unique.")
    return names


def _to_frame(X, layout, feature_names) -> pd.DataFrame:
    _check_layout(layout)
    seqs = as_sequences(X, name="X", allow_nan=True)
    if layout == "wide":
        if seqs.n_features != 1:
            raise ValueError(
                f"X has {seqs.n_features} features; the wide layout holds univariate sequences "
                "only. Use layout='long' for multivariate data."
            )
        if feature_names is not None:
            raise ValueError("feature_names applies to layout='long' only.")
        padded = seqs.to_padded()[:, :, 0]
        frame = pd.DataFrame(padded, columns=[str(t) for t in range(seqs.max_length)])
        frame.insert(0, "id", np.arange(seqs.n_sequences))
        return frame
    names = _feature_names(feature_names, seqs.n_features)
    lengths = seqs.lengths
    total = int(lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = np.repeat(np.arange(seqs.n_sequences), lengths)
    times = np.arange(total) - np.repeat(offsets, lengths)
    values = seqs.values[seqs.mask()]  # (total, C), row-major: sequence by sequence
    frame = pd.DataFrame(values, columns=names)
    frame.insert(0, "time", times)
    frame.insert(0, "id", ids)
    return frame


def write_csv(path, X, layout="long", feature_names=None):
    """Write sequences to a CSV file.

    Parameters
    ----------
    path : str or os.PathLike
    X : array-like or list of array-like
        Any form :func:`as_sequences` accepts (NaN inside a sequence is kept as a missing value).
    layout : {"long", "wide"}
        ``"long"``: columns ``id, time, <feature names>``, one row per valid step.
        ``"wide"`` (univariate only): columns ``id, 0, 1, ...``, empty cells after each end.
    feature_names : list of str, optional
        Feature column names in long form; default ``f0, f1, ...``.

    Floats are written with 9 significant digits, so float32 values read back exactly.
    """
    p = _as_path(path)
    frame = _to_frame(X, layout, feature_names)
    frame.to_csv(p, index=False, float_format="%.9g")


def write_parquet(path, X, layout="long", feature_names=None):
    """Write sequences to a Parquet file (float32 columns); layouts as :func:`write_csv`."""
    p = _as_path(path)
    frame = _to_frame(X, layout, feature_names)
    frame.to_parquet(p, index=False)


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
