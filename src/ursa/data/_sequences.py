"""The one internal form of sequence data, and the validation that produces it.

Every public entry point converts its input once, with :func:`as_sequences`, into a
:class:`Sequences`: a padded float32 array of shape ``(n_sequences, max_length, n_features)``
plus the true ``lengths``. Everything below the public boundary trusts that form.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ChannelsFirstWarning", "Sequences", "as_sequences", "input_kind"]


class ChannelsFirstWarning(UserWarning):
    """Sequence data that looks laid out channels first, as aeon and sktime lay it out:
    (n_cases, n_channels, n_timepoints), where ursa reads (n_sequences, n_timesteps,
    n_features)."""


# The channels-first check (see _channels_first): the last axis must be at least this many
# times as long as the middle one, and this long; a middle axis this short or shorter is
# taken for channels whatever the values (a recurrent model reads nothing in so few steps);
# beyond it the values must also change smoothly along the last axis, as time series do
# (mean lag-1 autocorrelation at least CHANNELS_FIRST_SMOOTHNESS), which rows of features
# (embeddings, one-hot codes) do not. At most CHANNELS_FIRST_SAMPLE values are read.
CHANNELS_FIRST_RATIO = 4
CHANNELS_FIRST_MIN_LENGTH = 8
CHANNELS_FIRST_FEW_STEPS = 3
CHANNELS_FIRST_SMOOTHNESS = 0.5
CHANNELS_FIRST_SAMPLE = 1 << 20
# A list's first items are checked (as many as CHANNELS_FIRST_SAMPLE values allow).
CHANNELS_FIRST_LIST_ITEMS = 64


@dataclass(frozen=True)
class Sequences:
    """Padded sequences and their lengths.

    Attributes
    ----------
    values : ndarray of shape (n_sequences, max_length, n_features), float32
        Valid steps first; steps at or after ``lengths[i]`` are zero (never read). NaN at a
        valid step marks a missing value (accepted only where ``as_sequences`` allows it).
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

    @property
    def missing(self) -> bool:
        """Whether any value is missing (NaN)."""
        return bool(np.isnan(self.values).any())

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
    if array.dtype == object:
        array = _from_objects(array, name)
    if not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(
            f"{name} must hold numbers, got dtype {array.dtype}. "
            "Convert it first, for example with np.asarray(..., dtype=float)."
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {array.dtype}.")
    return array


def _from_objects(array: np.ndarray, name: str) -> np.ndarray:
    """An object array that holds numbers (as pandas gives for mixed columns), as float64; any
    other object array raises TypeError naming ``name``."""
    missing = np.argwhere(np.equal(array, None))
    if len(missing):
        raise TypeError(
            f"{name} must hold numbers, got dtype object with None at index "
            f"{tuple(int(v) for v in missing[0])}. Use np.nan for padding after a sequence's "
            "end, and impute missing values inside a sequence."
        )
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must hold numbers, got dtype object that does not convert to numbers "
            f"({exc}). Convert it first, for example with np.asarray(..., dtype=float)."
        ) from None


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
            "Only trailing all-NaN steps are read as padding here; impute or drop missing values "
            "first (SequenceAutoencoder and RecurrentClusterer accept them as missing values)."
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
        Accept NaN inside sequences as missing values (for estimators that mask them, and
        scorers that handle them themselves); trailing all-NaN steps are padding either way.
    min_length : int
        Shortest accepted sequence.

    Returns
    -------
    Sequences

    Warns
    -----
    ChannelsFirstWarning
        When a 3-D array, or a list of 2-D arrays, looks laid out as aeon and sktime lay data
        out, (n_cases, n_channels, n_timepoints): a middle axis at least 4 times shorter than
        the last, and either at most 3 long or with values that change smoothly along the last
        axis (docs/sklearn.md).
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
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse {type(X).__name__}: sparse input is not supported "
                        f"(sequences are dense). Pass {name}.toarray().")
    if isinstance(X, (str, bytes)) or X is None or np.isscalar(X):
        raise TypeError(f"{name} must be {expected}, got {type(X).__name__}.")
    return _check_numeric(np.asarray(X), name)


def _lag1_autocorrelation(rows: np.ndarray) -> float:
    """Mean lag-1 autocorrelation along the last axis of the finite, non-constant rows of a
    2-D array; 0 when there are none."""
    rows = rows[np.isfinite(rows).all(axis=1)].astype(np.float64)
    rows = rows - rows.mean(axis=1, keepdims=True)
    energy = (rows**2).sum(axis=1)
    varying = energy > 1e-12 * max(1.0, float(energy.max(initial=0.0)))
    if not varying.any():
        return 0.0
    rows, energy = rows[varying], energy[varying]
    return float(np.mean((rows[:, :-1] * rows[:, 1:]).sum(axis=1) / energy))


def _channels_first(items: list[np.ndarray]) -> bool:
    """Whether sequences read as (n_timesteps, n_features) arrays ``items`` look like
    (n_channels, n_timepoints) arrays instead: every item has the same, short first axis and a
    last axis at least CHANNELS_FIRST_RATIO times as long, and either the first axis is at most
    CHANNELS_FIRST_FEW_STEPS long or the values change smoothly along the last axis."""
    steps = {item.shape[0] for item in items}
    if len(steps) != 1:
        return False
    (a,) = steps
    b = min(item.shape[1] for item in items)
    if b < max(CHANNELS_FIRST_RATIO * a, CHANNELS_FIRST_MIN_LENGTH):
        return False
    if a <= CHANNELS_FIRST_FEW_STEPS:
        return True
    rows = np.concatenate([item[:, :b] for item in items[: _sample_size(a * b)]])
    return _lag1_autocorrelation(rows) >= CHANNELS_FIRST_SMOOTHNESS


def _sample_size(values_per_item: int) -> int:
    """How many items of ``values_per_item`` values the channels-first check reads."""
    return max(1, CHANNELS_FIRST_SAMPLE // max(1, values_per_item))


def _outside_ursa_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by the caller at the first frame outside
    the ursa package (the user's call)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _warn_channels_first(what: str, a: int, b: str, fix: str) -> None:
    warnings.warn(
        f"{what}, which ursa reads as sequences of {a} time steps with {b} features each: "
        "ursa's layout is (n_sequences, n_timesteps, n_features). It looks like aeon/sktime's "
        f"layout (n_cases, n_channels, n_timepoints) instead, {a} channels of {b} time points. "
        f"If it is, pass {fix}. If the layout is right, silence this warning with "
        "warnings.filterwarnings('ignore', category=ursa.data.ChannelsFirstWarning).",
        ChannelsFirstWarning, stacklevel=_outside_ursa_stacklevel())


def _check_list_layout(X, name: str) -> None:
    """Warn (ChannelsFirstWarning) when the first items of a list of sequences look like
    aeon/sktime's (n_channels, n_timepoints) arrays."""
    items = []
    for item in X[:CHANNELS_FIRST_LIST_ITEMS]:
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        if not isinstance(item, np.ndarray):  # nested lists: left to the item checks
            return
        if item.ndim != 2 or item.size == 0 or not (
                np.issubdtype(item.dtype, np.number) or np.issubdtype(item.dtype, np.bool_)):
            return
        items.append(item)
    if items and _channels_first(items):
        a = items[0].shape[0]
        lengths = sorted({item.shape[1] for item in items})
        b = str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]} to {lengths[-1]}"
        _warn_channels_first(f"{name} is a list of arrays of shape ({a}, {b})", a, b,
                             f"[x.T for x in {name}]")


def _from_array(X, name: str, allow_nan: bool) -> Sequences:
    array = _as_array(X, name, "an array of shape (n_sequences, n_timesteps[, n_features]) or "
                      "a list of arrays")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and array.size and _channels_first(
            list(array[: _sample_size(array.shape[1] * array.shape[2])])):
        _warn_channels_first(f"{name} has shape {array.shape}", array.shape[1],
                             str(array.shape[2]), f"{name}.transpose(0, 2, 1)")
    elif array.ndim != 3:
        raise ValueError(
            f"{name} must have 2 dimensions (n_sequences, n_timesteps) or 3 dimensions "
            f"(n_sequences, n_timesteps, n_features), got {array.ndim} with shape {array.shape}. "
            "Reshape your data: "
            + (f"one univariate sequence is {name}.reshape(1, -1); " if array.ndim == 1 else "")
            + "one long series is a list with one (n_timesteps, n_features) array."
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
    _check_list_layout(X, name)
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
            hint = ""
            if seq.shape[0] == arrays[0].shape[0]:  # same steps, different "features"
                hint = (" If each item is (n_channels, n_timepoints), aeon/sktime's layout, "
                        f"transpose them: [x.T for x in {name}].")
            raise ValueError(
                f"{name}[{i}] has {seq.shape[1]} features but {name}[0] has {n_features}. "
                f"Every sequence must have the same number of features.{hint}"
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
