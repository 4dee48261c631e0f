"""CSV and Parquet: sequences as tables in long form (one row per step) or wide form (one row
per univariate sequence), read and written."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._files import _as_path, _check_layout, _columns_list, _existing_file, _pack, _show
from ._sequences import as_sequences

__all__ = ["read_csv", "read_parquet", "table_columns", "to_frame", "write_csv", "write_parquet"]


# --------------------------------------------------------------------------------------------
# readers


def _require_column(df: pd.DataFrame, column, argument: str, p: Path) -> None:
    if column not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:20]))
        more = ", ..." if df.shape[1] > 20 else ""
        raise ValueError(
            f"{p}: column {column!r} ({argument}) not found. The file has the columns: "
            f"{shown}{more}. Pass {argument}= with the right name."
        )


def _filled_column(df: pd.DataFrame, column, argument: str, p: Path) -> pd.Series:
    """The column, refused when a cell of it is empty."""
    values = df[column]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(f"{p}: column {column!r} ({argument}) is empty at row {row} (0-based).")
    return values


def _numeric_block(df: pd.DataFrame, columns: list, p: Path, what: str,
                   id_column=None) -> np.ndarray:
    for col in columns:
        series = df[col]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            converted = pd.to_numeric(series, errors="coerce")
            bad = converted.isna() & series.notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise ValueError(
                f"{p}: {what} column {col!r} is not numeric (dtype {series.dtype}); row {row} "
                f"(0-based) holds {_show(series.iloc[row])}. "
                + _text_column_advice(df, columns, col, what, id_column)
            )
    if not columns:
        raise ValueError(f"{p}: no {what} columns left to read. Pass feature_columns=.")
    return df[columns].to_numpy(dtype=np.float32, na_value=np.nan)


def _text_column_advice(df, columns, col, what, id_column) -> str:
    """How to read a file whose ``col`` is not numeric: as the sequence id, or by choosing the
    numeric columns (arguments written ``name=value``, which the command line respells)."""
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(df[c])
               or pd.api.types.is_bool_dtype(df[c])]
    pick = f"feature_columns={numeric!r}" if numeric else "feature_columns="
    either = (f"Pass id_column={col!r} if it names the sequences; otherwise choose"
              if id_column is None else "Choose")
    return f"{either} the numeric {what} columns with {pick}, or fix the file."


def _labels(values) -> np.ndarray:
    out = np.asarray(values)
    if out.dtype == object:
        try:
            out = out.astype(str)
        except (TypeError, ValueError):
            pass
    return out


class _Table(NamedTuple):
    """A table read: the sequences and what names them (see :class:`ursa.data.DataFile`)."""

    X: object
    y: np.ndarray | None
    ids: np.ndarray | None
    feature_names: list[str] | None
    times: list[np.ndarray] | None

    def public(self, label_column):
        """What :func:`read_csv` / :func:`read_parquet` return: ``X``, or ``(X, y)``."""
        return self.X if label_column is None else (self.X, self.y)


def _read_table(
    df: pd.DataFrame, p: Path, layout, id_column, time_column, feature_columns, label_column
) -> _Table:
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
        if id_column is not None and id_column not in df.columns:
            id_column = None  # read_csv's default id column is optional in the wide layout
        reserved = {c for c in (id_column, label_column) if c is not None}
        steps = (
            feature_columns
            if feature_columns is not None
            else [c for c in df.columns if c not in reserved]
        )
        values = _numeric_block(df, steps, p, "time-step", id_column)
        valid = ~np.isnan(values)
        last = values.shape[1] - np.argmax(valid[:, ::-1], axis=1)
        lengths = np.where(valid.any(axis=1), last, 0)
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            raise ValueError(
                f"{p}: row {int(empty[0])} has no values (all time-step columns are empty)."
            )
        arrays = [values[i, : lengths[i], None] for i in range(len(values))]
        ids = None
        if id_column is not None:
            ids = _labels(_filled_column(df, id_column, "id_column", p).to_numpy())
            _require_unique_ids(ids, id_column, p)
        y = None if label_column is None else _labels(df[label_column].to_numpy())
        return _Table(_pack(arrays), y, ids, None, None)

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
    values = _numeric_block(df, features, p, "feature", id_column)

    n_rows = len(df)
    if id_column is not None:
        ids = _filled_column(df, id_column, "id_column", p)
        codes, uniques = pd.factorize(ids, sort=False)  # first-appearance order
    else:
        codes, uniques = np.zeros(n_rows, dtype=np.int64), np.array([0])
    if time_column is not None:
        times = _filled_column(df, time_column, "time_column", p)
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
            where = f"{time_column!r}={_show(times.iloc[row])}"
            if id_column is None:
                raise ValueError(
                    f"{p}: duplicate rows for {where} (second one at row {row}, 0-based). "
                    "Without id_column the file is one sequence, whose times must differ; "
                    "name the id column with id_column= if it holds several."
                )
            raise ValueError(
                f"{p}: duplicate rows for {id_column!r}={_show(uniques[codes[row]])}, {where} "
                f"(second one at row {row}, 0-based). Each (id, time) pair must appear once."
            )
    else:
        order = np.argsort(codes, kind="stable")

    sorted_codes = codes[order]
    values = values[order]
    counts = np.bincount(sorted_codes, minlength=len(uniques))
    bounds = np.cumsum(counts)[:-1]
    X = _pack(np.split(values, bounds))
    step_times = None
    if time_column is not None:
        step_times = np.split(times.to_numpy()[order], bounds)
    names = [str(c) for c in features]
    ids = _labels(np.asarray(uniques)) if id_column is not None else None
    if label_column is None:
        return _Table(X, None, ids, names, step_times)
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
    return _Table(X, _labels(label_values[firsts]), ids, names, step_times)


def _require_unique_ids(ids: np.ndarray, id_column, p: Path) -> None:
    """A wide table's id column names one row each."""
    seen = pd.Series(ids).duplicated().to_numpy()
    if seen.any():
        row = int(np.flatnonzero(seen)[0])
        raise ValueError(
            f"{p}: id {_show(ids[row])} appears twice in column {id_column!r} (id_column; second "
            f"time at row {row}, 0-based); in the wide layout each row is one sequence with an "
            "id of its own."
        )


_TABLE_DOC = """

    Parameters
    ----------
    path : str or os.PathLike
    layout : {"long", "wide"}
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



def _load_frame(p: Path, fmt: str) -> pd.DataFrame:
    """The whole file as a DataFrame; ValueError naming the file when it cannot be parsed."""
    if fmt == "csv":
        try:
            return pd.read_csv(p)
        except pd.errors.EmptyDataError:
            raise ValueError(f"{p}: the file is empty.") from None
        except pd.errors.ParserError as exc:
            raise ValueError(f"{p}: not a valid CSV file ({exc}).") from None
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ValueError(
            f"{p}: not a readable Parquet file ({type(exc).__name__}: {exc})."
        ) from None


def _read_file(path, fmt, layout, id_column, time_column, feature_columns, label_column
               ) -> _Table:
    p = _existing_file(path)
    _check_layout(layout)
    df = _load_frame(p, fmt)
    return _read_table(df, p, layout, id_column, time_column, feature_columns, label_column)


def read_csv(path, layout="long", id_column="id", time_column="time", feature_columns=None,
             label_column=None):
    return _read_file(path, "csv", layout, id_column, time_column, feature_columns,
                      label_column).public(label_column)


def read_parquet(path, layout="long", id_column="id", time_column="time", feature_columns=None,
                 label_column=None):
    return _read_file(path, "parquet", layout, id_column, time_column, feature_columns,
                      label_column).public(label_column)


read_csv.__doc__ = "Read sequences from a CSV file." + _TABLE_DOC
read_parquet.__doc__ = "Read sequences from a Parquet file." + _TABLE_DOC


def table_columns(path, format=None) -> list[str]:
    """The column names of a CSV or Parquet file, reading its header only.

    Parameters
    ----------
    path : str or os.PathLike
    format : {"csv", "parquet"}, optional
        Overrides the extension.

    Returns
    -------
    list of str
        The columns, in file order.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable CSV or Parquet file.
    """
    from ._files import format_of

    p = _existing_file(path)
    fmt = format or format_of(p)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"{p}: only CSV and Parquet files have columns; pass format='csv' or "
                         "'parquet' if the extension is wrong.")
    try:
        if fmt == "csv":
            return [str(c) for c in pd.read_csv(p, nrows=0).columns]
        import pyarrow.parquet as pq

        return list(pq.read_schema(p).names)
    except Exception as exc:  # pandas and pyarrow raise several types for a bad file
        raise ValueError(f"{p}: cannot read the header of this {fmt} file ({exc}).") from None


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


def to_frame(X, layout="long", feature_names=None) -> pd.DataFrame:
    """Sequences as one table, the form :func:`write_csv` and :func:`write_parquet` write.

    Parameters
    ----------
    X : array-like or list of array-like
        Any form :func:`as_sequences` accepts (NaN inside a sequence is kept as a missing value).
    layout : {"long", "wide"}, default="long"
        ``"long"``: columns ``id, time, <feature names>``, one row per valid step.
        ``"wide"`` (univariate only): columns ``id, 0, 1, ...``, NaN after each end.
    feature_names : list of str, optional
        Feature column names in long form; default ``f0, f1, ...``.

    Returns
    -------
    pandas.DataFrame
    """
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
    frame = to_frame(X, layout, feature_names)
    frame.to_csv(p, index=False, float_format="%.9g")


def write_parquet(path, X, layout="long", feature_names=None):
    """Write sequences to a Parquet file (float32 columns); layouts as :func:`write_csv`."""
    p = _as_path(path)
    frame = to_frame(X, layout, feature_names)
    frame.to_parquet(p, index=False)
