"""The one internal form of sequence data, and the validation that produces it.

Every public entry point converts its input once, with :func:`as_sequences`, into a
:class:`Sequences`: a padded float32 array of shape ``(n_sequences, max_length, n_features)``
plus the true ``lengths``. Everything below the public boundary trusts that form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Sequences", "as_sequences", "input_kind"]


@dataclass(frozen=True)
class Sequences:
    """Padded sequences and their lengths.

    Attributes
    ----------
    values : ndarray of shape (n_sequences, max_length, n_features), float32
        Valid steps first; steps at or after ``lengths[i]`` are zero (never read).
    lengths : ndarray of shape (n_sequences,), int64
        Number of valid steps of each sequence, each >= 1.
    """

    values: np.ndarray
    lengths: np.ndarray

    @property
    def n_sequences(self) -> int:
        return self.values.shape[0]

    @property
    def max_length(self) -> int:
        return self.values.shape[1]

    @property
    def n_features(self) -> int:
        return self.values.shape[2]

    @property
    def equal_length(self) -> bool:
        return bool(np.all(self.lengths == self.max_length))

    def __len__(self) -> int:
        return self.n_sequences

    def mask(self) -> np.ndarray:
        """Boolean array of shape (n_sequences, max_length): True on valid steps."""
        return np.arange(self.max_length)[None, :] < self.lengths[:, None]

    def subset(self, index) -> "Sequences":
        """The sequences at ``index``, trimmed to their own longest length."""
        lengths = self.lengths[index]
        longest = int(lengths.max()) if len(lengths) else 0
        return Sequences(np.ascontiguousarray(self.values[index, :longest]), lengths)

    def with_values(self, values: np.ndarray) -> "Sequences":
        """Same lengths, new values (for example after scaling)."""
        return Sequences(np.ascontiguousarray(values, dtype=np.float32), self.lengths)

    def to_list(self) -> list[np.ndarray]:
        """List of ``(T_i, n_features)`` arrays, one per sequence."""
        return [self.values[i, : self.lengths[i]].copy() for i in range(self.n_sequences)]

    def to_padded(self, fill_value: float = np.nan) -> np.ndarray:
        """Array of shape (n_sequences, max_length, n_features) with ``fill_value`` after each end."""
        out = self.values.copy()
        out[~self.mask()] = fill_value
        return out

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(values, lengths)`` as torch tensors on ``device``."""
        return (
            torch.from_numpy(self.values).to(device),
            torch.from_numpy(self.lengths).to(device),
        )


def input_kind(X) -> str:
    """How the caller laid out ``X``, so that outputs can be returned the same way.

    One of ``"list"`` (list of arrays), ``"2d"`` (univariate array) or ``"3d"``.
    """
    if isinstance(X, (list, tuple)):
        return "list"
    if isinstance(X, Sequences):
        return "3d"
    return "2d" if np.ndim(X) == 2 else "3d"


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _to_float32(array: np.ndarray, name: str) -> np.ndarray:
    """Cast to float32, refusing finite values that float32 cannot hold (they would become inf)."""
    with np.errstate(over="ignore"):  # overflow is reported below, with its position
        out = array.astype(np.float32, copy=False)
    if out.dtype != array.dtype and not _all_finite(out):
        overflow = np.isfinite(array) & ~np.isfinite(out)
        if overflow.any():
            position = tuple(int(v) for v in np.argwhere(overflow)[0])
            raise ValueError(
                f"{name} holds {float(array[position])!r} at index {position}, beyond float32's range "
                f"(+/-{_FLOAT32_MAX:.3g}). Rescale the data (for example divide by a constant) first."
            )
    return out


def _all_finite(array: np.ndarray, chunk_bytes: int = 1 << 24) -> bool:
    """``np.isfinite(array).all()`` in chunks of sequences, so the temporary mask stays small."""
    per_row = max(1, array[0].size) if len(array) else 1
    step = max(1, chunk_bytes // per_row)
    return all(np.isfinite(array[i : i + step]).all() for i in range(0, len(array), step))


def _check_numeric(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(
            f"{name} must hold numbers, got dtype {array.dtype}. "
            "Convert it first, for example with np.asarray(..., dtype=float)."
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {array.dtype}.")
    return array


def _trailing_length(seq: np.ndarray) -> int:
    """Number of steps before the trailing all-NaN padding of a (T, C) array."""
    all_nan = np.isnan(seq).all(axis=1)
    valid = np.flatnonzero(~all_nan)
    return int(valid[-1]) + 1 if len(valid) else 0


def _check_finite(seq: np.ndarray, name: str, index: int, allow_nan: bool) -> None:
    """Raise if a sequence holds inf, or NaN inside its valid part."""
    if np.isinf(seq).any():
        step = int(np.argwhere(np.isinf(seq))[0][0])
        raise ValueError(
            f"{name}[{index}] contains an infinite value at step {step}. "
            "Replace or clip infinite values before passing the data."
        )
    if not allow_nan and np.isnan(seq).any():
        step, feature = (int(v) for v in np.argwhere(np.isnan(seq))[0])
        raise ValueError(
            f"{name}[{index}] contains NaN at step {step}, feature {feature}, inside the sequence. "
            "Only trailing all-NaN steps are read as padding; impute or drop missing values first."
        )


def as_sequences(
    X,
    *,
    name: str = "X",
    n_features: int | None = None,
    allow_nan: bool = False,
    min_length: int = 1,
) -> Sequences:
    """Validate ``X`` and convert it to :class:`Sequences`.

    Parameters
    ----------
    X : array-like or list of array-like
        One of: an array of shape (n_sequences, n_timesteps, n_features); an array of shape
        (n_sequences, n_timesteps), read as univariate; an array whose trailing all-NaN steps are
        padding (tslearn's convention for variable length); a list of arrays of shape
        (T_i, n_features) or (T_i,); or an existing :class:`Sequences`.
    name : str
        Name of the argument, used in error messages.
    n_features : int, optional
        Number of features the data must have (the number seen at fit time).
    allow_nan : bool
        Accept NaN inside sequences (for scorers that handle missing values themselves).
    min_length : int
        Shortest accepted sequence.

    Returns
    -------
    Sequences
    """
    if isinstance(X, Sequences):
        seqs = X
    elif isinstance(X, (list, tuple)):
        seqs = _from_list(X, name, allow_nan)
    else:
        seqs = _from_array(X, name, allow_nan)

    if seqs.n_sequences == 0:
        raise ValueError(f"{name} is empty: it holds no sequences. Pass at least one sequence.")
    short = np.flatnonzero(seqs.lengths < min_length)
    if len(short):
        i = int(short[0])
        raise ValueError(
            f"{name}[{i}] has {int(seqs.lengths[i])} valid time steps; at least {min_length} "
            "are needed. Drop empty or all-NaN sequences, or pad them with real values."
        )
    if n_features is not None and seqs.n_features != n_features:
        raise ValueError(
            f"{name} has {seqs.n_features} features per time step, but the estimator was fitted "
            f"with {n_features}. Pass data with the same features, in the same order, as at fit."
        )
    return seqs


def as_steps(array: np.ndarray, name: str, shape: str, advice: str = "") -> np.ndarray:
    """One sequence as (T, n_features): a 1-D array becomes one column; other than 1-D or 2-D
    raises ValueError naming ``name``, the expected ``shape`` and ``advice``."""
    if array.ndim == 1:
        return array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape {shape}, got {array.ndim} dimensions with "
                         f"shape {array.shape}.{advice}")
    return array


def _as_array(X, name: str, expected: str) -> np.ndarray:
    """``X`` as a numeric numpy array (a torch tensor is copied off its device); a string, None
    or a scalar raises TypeError saying that ``name`` must be ``expected``."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, (str, bytes)) or X is None or np.isscalar(X):
        raise TypeError(f"{name} must be {expected}, got {type(X).__name__}.")
    return _check_numeric(np.asarray(X), name)


def _from_array(X, name: str, allow_nan: bool) -> Sequences:
    array = _as_array(X, name, "an array of shape (n_sequences, n_timesteps[, n_features]) or "
                      "a list of arrays")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(
            f"{name} must have 2 dimensions (n_sequences, n_timesteps) or 3 dimensions "
            f"(n_sequences, n_timesteps, n_features), got {array.ndim} with shape {array.shape}. "
            "For one long series use a list with one (n_timesteps, n_features) array, or reshape."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: it holds no sequences. Pass at least one sequence.")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(
            f"{name} has shape {array.shape}: sequences need at least one time step and one feature."
        )
    array = _to_float32(array, name)
    if _all_finite(array):  # the common case: one pass, no padding
        return Sequences(np.ascontiguousarray(array),
                         np.full(array.shape[0], array.shape[1], dtype=np.int64))
    if np.isnan(array).any():
        not_pad = ~np.isnan(array).all(axis=2)  # (n, T): False on all-NaN steps
        # Length = one past the last step that is not all-NaN.
        lengths = np.where(
            not_pad.any(axis=1), array.shape[1] - np.argmax(not_pad[:, ::-1], axis=1), 0
        ).astype(np.int64)
        for i in range(array.shape[0]):
            _check_finite(array[i, : lengths[i]], name, i, allow_nan)
        values = array.copy()
        values[np.arange(array.shape[1])[None, :] >= lengths[:, None]] = 0.0
        return Sequences(values, lengths)
    if np.isinf(array).any():
        i = int(np.argwhere(np.isinf(array))[0][0])
        _check_finite(array[i], name, i, allow_nan)
    lengths = np.full(array.shape[0], array.shape[1], dtype=np.int64)
    return Sequences(np.ascontiguousarray(array), lengths)


def _from_list(X, name: str, allow_nan: bool) -> Sequences:
    if len(X) == 0:
        raise ValueError(f"{name} is empty: it holds no sequences. Pass at least one sequence.")
    arrays = []
    n_features = None
    for i, item in enumerate(X):
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        if isinstance(item, (str, bytes)) or item is None:
            raise TypeError(f"{name}[{i}] must be an array of numbers, got {type(item).__name__}.")
        try:
            seq = np.asarray(item)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(
                f"{name}[{i}] is ragged: its time steps have different numbers of values ({exc})."
            ) from None
        seq = as_steps(_check_numeric(seq, f"{name}[{i}]"), f"{name}[{i}]",
                       "(T_i,) or (T_i, n_features)")
        seq = _to_float32(seq, f"{name}[{i}]")
        if n_features is None:
            n_features = seq.shape[1]
        elif seq.shape[1] != n_features:
            raise ValueError(
                f"{name}[{i}] has {seq.shape[1]} features but {name}[0] has {n_features}. "
                "Every sequence must have the same number of features."
            )
        if seq.shape[0] and np.isnan(seq).any():
            seq = seq[: _trailing_length(seq)]
        if seq.shape[0] == 0:
            raise ValueError(
                f"{name}[{i}] has 0 valid time steps. Drop empty sequences before passing the data."
            )
        _check_finite(seq, name, i, allow_nan)
        arrays.append(seq)
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    values = np.zeros((len(arrays), int(lengths.max()), n_features), dtype=np.float32)
    for i, seq in enumerate(arrays):
        values[i, : len(seq)] = seq
    return Sequences(values, lengths)


def restore_layout(X, values: np.ndarray, lengths: np.ndarray):
    """Lay out per-sequence outputs the way the caller laid out the input ``X``.

    ``values`` is (n_sequences, max_length, ...) with one row per sequence; ``lengths`` its valid steps.
    A list input gives a list of arrays (1-D items stay 1-D when the trailing axis has size 1 and the
    caller's items were 1-D); a 2-D input gives a 2-D array; otherwise a 3-D array. Steps after a
    sequence's end are NaN in array outputs, as in tslearn. ``values`` may be modified and returned.
    """
    values = np.asarray(values)
    kind = input_kind(X)
    if kind == "list":
        squeeze = values.ndim == 3 and values.shape[2] == 1 and np.ndim(X[0]) == 1
        out = []
        for i, length in enumerate(lengths):
            item = values[i, : int(length)]
            out.append(item[:, 0].copy() if squeeze else item.copy())
        return out
    out = values.astype(np.float32, copy=False)  # callers pass arrays they own: no copy
    if out.shape[1] and not np.all(lengths == out.shape[1]):
        out[np.arange(out.shape[1])[None, :] >= lengths[:, None]] = np.nan
    if kind == "2d" and out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    return out
