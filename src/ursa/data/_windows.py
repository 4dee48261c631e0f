"""Sliding windows over one long series, and the way back from windows to time steps.

A long series of ``T`` steps is cut into windows of ``window`` steps that start every ``stride``
steps: window ``k`` covers steps ``k * stride, ..., k * stride + window - 1`` and there are
``(T - window) // stride + 1`` windows. A model scores windows; :func:`windows_to_steps` maps
those scores back to one value per time step.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._sequences import _check_numeric, as_steps

__all__ = ["sliding_windows", "window_starts", "windows_to_steps"]

REDUCTIONS = ("mean", "max", "last")


def _int_arg(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_geometry(n_timesteps, window, stride, n_name="n_timesteps") -> tuple[int, int, int]:
    n_timesteps = _int_arg(n_timesteps, n_name, 1)
    window = _int_arg(window, "window", 1)
    stride = _int_arg(stride, "stride", 1)
    if window > n_timesteps:
        raise ValueError(
            f"window={window} is longer than the series ({n_timesteps} time steps). Use a "
            f"window <= {n_timesteps}, or a series with at least {window} steps."
        )
    return n_timesteps, window, stride


def _n_windows(n_timesteps: int, window: int, stride: int) -> int:
    return (n_timesteps - window) // stride + 1


def window_starts(n_timesteps, window, stride=1) -> np.ndarray:
    """Start index of each window.

    Parameters
    ----------
    n_timesteps : int
        Length ``T`` of the series.
    window : int
        Steps per window, ``1 <= window <= T``.
    stride : int
        Steps between the starts of consecutive windows.

    Returns
    -------
    ndarray of shape (n_windows,), int64
        ``0, stride, 2 * stride, ...``; ``n_windows = (T - window) // stride + 1``.
    """
    n_timesteps, window, stride = _check_geometry(n_timesteps, window, stride)
    return np.arange(_n_windows(n_timesteps, window, stride), dtype=np.int64) * stride


def sliding_windows(series, window, stride=1) -> np.ndarray:
    """Cut one series into overlapping windows.

    Parameters
    ----------
    series : array-like of shape (T,) or (T, C)
        One numeric, finite series; 1-D is univariate.
    window : int
        Steps per window, ``1 <= window <= T``.
    stride : int
        Steps between the starts of consecutive windows (``stride > window`` skips steps).

    Returns
    -------
    ndarray of shape (n_windows, window, C)
        ``n_windows = (T - window) // stride + 1``; window ``k`` is
        ``series[k * stride : k * stride + window]``. Same dtype as ``series``.
        This is a strided **view** of ``series`` (no copy), usually **read-only**, and its
        windows share memory; call ``np.array(result)`` (or ``.copy()``) before writing to it.
        The last ``(T - window) % stride`` steps are in no window.
    """
    array = as_steps(_check_numeric(np.asarray(series), "series"), "series", "(T,) or (T, C)",
                     " For several sequences, call sliding_windows on each.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"series has shape {array.shape}: it needs at least one step and feature.")
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            step, feature = (int(v) for v in np.argwhere(~finite)[0])
            raise ValueError(
                f"series has a non-finite value ({array[step, feature]}) at step {step}, feature "
                f"{feature}. Impute or drop missing and infinite values before windowing."
            )
    n_timesteps, window, stride = _check_geometry(array.shape[0], window, stride, "len(series)")
    view = sliding_window_view(array, window, axis=0)  # (T - window + 1, C, window)
    return view[::stride].transpose(0, 2, 1)


def windows_to_steps(window_values, n_timesteps, window, stride=1, reduce="mean") -> np.ndarray:
    """Map per-window values back to one value per time step.

    Parameters
    ----------
    window_values : array-like of shape (n_windows,) or (n_windows, window)
        One value per window (given to every step the window covers), or one value per step of
        each window, in the order of :func:`sliding_windows` with the same arguments.
    n_timesteps : int
        Length ``T`` of the series that was windowed.
    window, stride : int
        As given to :func:`sliding_windows`.
    reduce : {"mean", "max", "last"}
        How to combine the values of all windows covering a step: their mean, their maximum, or
        the value from the last (most recent) window covering it, as in streaming scoring.

    Returns
    -------
    ndarray of shape (n_timesteps,), float64
        Steps covered by no window are **NaN**: the last ``(T - window) % stride`` steps, and
        the gaps between windows when ``stride > window``. Check with ``np.isnan``, or choose
        ``stride`` so that ``(T - window) % stride == 0`` and ``stride <= window``.
    """
    n_timesteps, window, stride = _check_geometry(n_timesteps, window, stride)
    if reduce not in REDUCTIONS:
        options = ", ".join(map(repr, REDUCTIONS))
        raise ValueError(f"reduce must be one of {options}, got {reduce!r}.")
    values = np.asarray(window_values)
    if values.dtype == object or not (
        np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.bool_)
    ) or np.issubdtype(values.dtype, np.complexfloating):
        raise TypeError(f"window_values must hold real numbers, got dtype {values.dtype}.")
    values = values.astype(np.float64, copy=False)
    expected = _n_windows(n_timesteps, window, stride)
    if values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] != window):
        raise ValueError(
            f"window_values must have shape (n_windows,) or (n_windows, window={window}), got "
            f"{values.shape}."
        )
    if values.shape[0] != expected:
        raise ValueError(
            f"window_values has {values.shape[0]} windows, but n_timesteps={n_timesteps}, "
            f"window={window}, stride={stride} give {expected} windows "
            f"((n_timesteps - window) // stride + 1). Pass one value per window of "
            "sliding_windows(series, window, stride) with the same arguments."
        )
    if not np.isfinite(values).all():
        index = tuple(int(v) for v in np.argwhere(~np.isfinite(values))[0])
        raise ValueError(
            f"window_values{list(index)} is {values[index]}; every window value must be finite."
        )
    if values.ndim == 1:
        values = np.broadcast_to(values[:, None], (expected, window))

    steps = np.arange(n_timesteps)
    if reduce == "last":
        k = np.minimum(steps // stride, expected - 1)  # last window starting at or before t
        offset = steps - k * stride
        covered = offset < window
        out = np.full(n_timesteps, np.nan)
        out[covered] = values[k[covered], offset[covered]]
        return out

    index = (np.arange(expected)[:, None] * stride + np.arange(window)[None, :]).ravel()
    counts = np.bincount(index, minlength=n_timesteps)
    covered = counts > 0
    if reduce == "mean":
        sums = np.bincount(index, weights=values.ravel(), minlength=n_timesteps)
        out = np.full(n_timesteps, np.nan)
        out[covered] = sums[covered] / counts[covered]
        return out
    out = np.full(n_timesteps, -np.inf)
    np.maximum.at(out, index, values.ravel())
    out[~covered] = np.nan
    return out


def dominant_period(series, min_period: int = 4, max_period: int = 512,
                    min_correlation: float = 0.1) -> int | None:
    """The dominant period of a series, from its autocorrelation; None when it has none.

    Each channel is centred and its autocorrelation (by FFT) averaged over the non-constant
    channels; the period is the lag, between ``min_period`` and ``max_period`` (and at most a
    third of the series), of the highest local maximum of that autocorrelation. A series whose
    highest such maximum is below ``min_correlation`` has no period worth the name (None).

    Parameters
    ----------
    series : array of shape (T,) or (T, C)
    min_period, max_period : int
        Lags searched.
    min_correlation : float, default=0.1
        Autocorrelation the peak must reach.
    """
    array = as_steps(_check_numeric(np.asarray(series, dtype=np.float64), "series"), "series",
                     "(T,) or (T, C)")
    array = array[np.isfinite(array).all(axis=1)]
    max_lag = min(int(max_period), len(array) // 3)
    if max_lag <= min_period:
        return None
    centred = array - array.mean(axis=0)
    power = (centred ** 2).sum(axis=0)
    centred = centred[:, power > 0]
    if centred.shape[1] == 0:
        return None
    size = 1 << int(np.ceil(np.log2(2 * len(centred))))
    spectrum = np.fft.rfft(centred, n=size, axis=0)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[: max_lag + 2]
    acf = (acf / acf[0]).mean(axis=1)  # (max_lag + 2,), 1 at lag 0
    lags = np.arange(max(int(min_period), 1), max_lag + 1)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1])]
    if len(peaks) == 0:
        return None
    best = peaks[np.argmax(acf[peaks])]
    return int(best) if acf[best] >= min_correlation else None
