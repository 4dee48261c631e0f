"""Reader of the UCR/UEA time-series archive's ``.ts`` format."""

from __future__ import annotations

import numpy as np

from ._files import _existing_file, _pack

__all__ = ["read_ts"]

_TS_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")


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
