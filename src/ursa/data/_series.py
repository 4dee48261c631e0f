"""Long series: validation of one or several long series (and of chunks of a stream), and
per-step outputs put back in the caller's layout.

Scorers that cut windows from long series (the anomaly detector) take one series as a ``(T,)``
or ``(T, n_features)`` array, where :func:`as_sequences` would read a 2-D array as several
univariate sequences. Several series are sequences, validated by :func:`as_sequences`.
"""

from __future__ import annotations

import numpy as np

from ._sequences import (
    Sequences,
    _all_finite,
    _as_array,
    _check_numeric,
    _to_float32,
    as_sequences,
)

__all__ = ["as_points", "as_series", "restore_series_layout"]


def as_series(X, *, name: str = "X", n_features: int | None = None, min_length: int = 1):
    """Validate ``X`` as one or several long series.

    Parameters
    ----------
    X : array-like or list of array-like
        One series, an array of shape (T,) or (T, n_features); several, a list of such arrays
        (or a :class:`Sequences`); or an array of shape (n_series, T, n_features), NaN-padded at
        the end for unequal lengths (tslearn's convention).
    name : str, default="X"
        Name of the argument, used in error messages.
    n_features : int, optional
        Number of features the series must have (the number seen at fit time).
    min_length : int, default=1
        Shortest accepted series (a scorer's window).

    Returns
    -------
    series : list of ndarray of shape (T_i, n_features), float32
        The valid steps of each series.
    layout : {"single", "list", "3d"}
        How the caller laid them out, for :func:`restore_series_layout`.
    lengths : ndarray of shape (n_series,)
        The length of each series.
    """
    if isinstance(X, (list, tuple, Sequences)):
        seqs = as_sequences(X, name=name, n_features=n_features)
        layout = "list"
    else:
        array = _as_array(X, name, "one series, an array of shape (T,) or (T, n_features), a "
                          "list of such arrays, or an array of shape (n_series, T, n_features)")
        if array.ndim == 3:
            seqs = as_sequences(array, name=name, n_features=n_features)
            layout = "3d"
        elif array.ndim in (1, 2):
            seqs = _one_series(array, name, n_features)
            layout = "single"
        else:
            raise ValueError(
                f"{name} must be one series of shape (T,) or (T, n_features), or an array with 3 "
                f"dimensions (n_series, T, n_features) for several series; got {array.ndim} "
                f"dimensions with shape {array.shape}. For series of different lengths pass a list."
            )
    series = [seqs.values[i, : seqs.lengths[i]] for i in range(seqs.n_sequences)]
    for i, s in enumerate(series):
        if len(s) < min_length:
            where = name if layout == "single" else f"{name}[{i}]"
            raise ValueError(
                f"{where} has {len(s)} time steps, fewer than window={min_length}. Use a smaller "
                "window or a longer series."
            )
    return series, layout, seqs.lengths


def _one_series(array: np.ndarray, name: str, n_features: int | None) -> Sequences:
    """One (T,) or (T, C) array as a Sequences of one series. Unlike a padded 3-D array, a single
    series has no padding: NaN anywhere in it is a missing value, and an error."""
    if array.ndim == 1:
        array = array[:, None]
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} has shape {array.shape}: a series needs at least one time step and "
            "one feature."
        )
    array = _to_float32(array, name)
    if not _all_finite(array):
        step, feature = (int(v) for v in np.argwhere(~np.isfinite(array))[0])
        what = "NaN" if np.isnan(array[step, feature]) else "an infinite value"
        raise ValueError(
            f"{name} contains {what} at step {step}, feature {feature}. Impute, drop or "
            "clip missing and infinite values before scoring."
        )
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{name} has {array.shape[1]} features per time step, but the estimator was "
            f"fitted with {n_features}. Pass a (T, {n_features}) array with the same "
            "features, in the same order, as at fit."
        )
    return Sequences(np.ascontiguousarray(array)[None], np.array([len(array)]))


def restore_series_layout(values: list[np.ndarray], layout: str, lengths: np.ndarray):
    """Per-step outputs of each series, laid out as the caller laid out the series.

    Parameters
    ----------
    values : list of ndarray of shape (T_i, ...)
        One output per series, in order.
    layout, lengths
        As returned by :func:`as_series`.

    Returns
    -------
    The one array for ``"single"``; the list for ``"list"``; for ``"3d"`` an array of shape
    (n_series, max(T_i), ...) with NaN after each series' end.
    """
    if layout == "single":
        return values[0]
    if layout == "list":
        return values
    out = np.full((len(values), int(lengths.max())) + values[0].shape[1:], np.nan)
    for i, v in enumerate(values):
        out[i, : len(v)] = v
    return out


def as_points(points, n_features: int, *, name: str = "points", offset: int = 0) -> np.ndarray:
    """Validate a chunk of points that continue a series (streaming scoring).

    Parameters
    ----------
    points : array-like of shape (n_points, n_features), or (n_points,) when n_features is 1
        The new points.
    n_features : int
        Features per point (the number seen at fit time).
    name : str, default="points"
        Name of the argument, used in error messages.
    offset : int, default=0
        Points of the stream before this chunk, so that an error names the point in the stream.

    Returns
    -------
    ndarray of shape (n_points, n_features), float32
    """
    if isinstance(points, (str, bytes)) or points is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(points).__name__}.")
    array = _check_numeric(np.asarray(points), name)
    if array.ndim == 1 and n_features == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != n_features:
        raise ValueError(
            f"{name} must have shape (n_points, {n_features}) (n_features at fit)"
            f"{' or (n_points,)' if n_features == 1 else ''}, got shape "
            f"{array.shape}. For one multivariate point use {name}[None, :]."
        )
    array = _to_float32(array, name)
    if not np.isfinite(array).all():
        step, feature = (int(v) for v in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(
            f"{name} contains a non-finite value at row {step}, feature {feature} (point "
            f"{offset + step} of the stream). Impute or clip it before scoring."
        )
    return array
