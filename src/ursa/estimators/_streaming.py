"""Per-step sums of window errors, and the streaming scorer of SequenceAnomalyDetector that
feeds them point by point and gives the batch scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..data import as_points

if TYPE_CHECKING:
    from .anomaly import SequenceAnomalyDetector

__all__ = ["StreamingScorer"]


class _Accumulator:
    """Per-step sums of window errors over a span of steps that starts at ``origin``."""

    def __init__(self, origin: int, n_channels: int | None, size: int = 0):
        self.origin = origin
        self.n_channels = n_channels
        # Batch scoring knows the series length: one allocation. Streaming grows as it goes.
        self.sums = np.zeros((size,) if n_channels is None else (size, n_channels))
        # Window counts per step are small integers: float32 holds them exactly at half the memory.
        self.counts = np.zeros(size, dtype=np.float32)

    def _grow(self, end: int) -> None:
        extra = end - self.origin - len(self.counts)
        if extra > 0:
            pad = (extra,) if self.n_channels is None else (extra, self.n_channels)
            self.sums = np.concatenate([self.sums, np.zeros(pad)])
            self.counts = np.concatenate([self.counts, np.zeros(extra, dtype=np.float32)])

    def add(self, starts: np.ndarray, errors: np.ndarray, only_from: int | None = None) -> None:
        """Add ``errors`` (n, window[, C]) of windows at ``starts``; with ``only_from``, to steps
        at or after it only (the end-aligned tail window)."""
        window = errors.shape[1]
        steps = (starts[:, None] + np.arange(window)[None, :]).ravel()  # (n * window,) global
        keep = None
        if only_from is not None:
            keep = steps >= only_from
            steps = steps[keep]
        first, end = int(steps.min()), int(steps.max()) + 1
        self._grow(end)
        span = end - first
        index = steps - first
        counts = np.bincount(index, minlength=span)
        lo = first - self.origin
        self.counts[lo : lo + span] += counts
        if self.n_channels is None:
            flat = errors.reshape(-1) if keep is None else errors.reshape(-1)[keep]
            self.sums[lo : lo + span] += np.bincount(index, weights=flat, minlength=span)
        else:
            flat = errors.reshape(-1, self.n_channels)
            if keep is not None:
                flat = flat[keep]
            for c in range(self.n_channels):
                self.sums[lo : lo + span, c] += np.bincount(index, weights=flat[:, c],
                                                            minlength=span)

    def take(self, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Remove and return (sums, counts) of the steps before ``end``."""
        n = end - self.origin
        sums, counts = self.sums[:n], self.counts[:n]
        self.sums, self.counts = self.sums[n:], self.counts[n:]
        self.origin = end
        return sums, counts


class StreamingScorer:
    """Scores points as they arrive, with a rolling buffer, giving the batch scores.

    Each window is scored once, as soon as its last point has arrived. A step's score is
    returned once no later grid window can cover it (at most ``window`` steps after it arrived);
    the concatenation of everything :meth:`update` returned and :meth:`flush` gives exactly
    ``decision_function`` of the whole series (up to float rounding of batched matrix products).
    Memory: the last ``window + score_stride`` points and the pending step sums.

    Parameters
    ----------
    detector : SequenceAnomalyDetector
        A fitted detector (:meth:`SequenceAnomalyDetector.stream` builds the scorer).

    Attributes
    ----------
    n_seen_ : int
        Points received since the stream began.
    n_emitted_ : int
        Step scores returned so far.

    Examples
    --------
    >>> scorer = detector.stream()                     # doctest: +SKIP
    >>> for chunk in chunks:                           # doctest: +SKIP
    ...     scores = scorer.update(chunk)              # final scores of earlier steps
    ...     alarms = scores > detector.threshold_
    >>> rest = scorer.flush()                          # doctest: +SKIP
    """

    def __init__(self, detector: SequenceAnomalyDetector):
        self.detector = detector
        self.window = detector.window_
        self.stride = detector.score_stride
        self.n_features = detector.n_features_in_
        self._reset()

    def _reset(self) -> None:
        self.n_seen_ = 0
        self.n_emitted_ = 0
        self._buffer = np.zeros((0, self.n_features), dtype=np.float32)
        self._buffer_origin = 0  # global index of _buffer[0]
        self._next_start = 0  # global start of the next grid window
        self._acc = _Accumulator(0, None)

    def _add(self, starts: np.ndarray, only_from: int | None = None) -> None:
        det = self.detector
        local = starts - self._buffer_origin
        for batch, errors in det._errors_at(self._buffer, local, "points"):
            self._acc.add(batch + self._buffer_origin, det._reduce(errors, False), only_from)

    def update(self, points) -> np.ndarray:
        """Add new points; return the final scores of the steps that became final (maybe none).

        Parameters
        ----------
        points : array of shape (n_points, n_features), or (n_points,) for a univariate series

        Returns
        -------
        ndarray of shape (n_final,): scores of steps ``n_emitted_ ... n_emitted_ + n_final - 1``.
        """
        array = as_points(points, self.n_features, offset=self.n_seen_)
        self._buffer = np.concatenate([self._buffer, array])
        self.n_seen_ += len(array)
        last = self.n_seen_ - self.window  # last start whose window is complete
        if last >= self._next_start:
            starts = np.arange(self._next_start, last + 1, self.stride, dtype=np.int64)
            self._add(starts)
            self._next_start = int(starts[-1]) + self.stride
        out = self._emit(min(self._next_start, self.n_seen_))
        # Keep what the next grid window and a final tail window need.
        keep_from = max(0, min(self._next_start, self.n_seen_ - self.window))
        drop = keep_from - self._buffer_origin
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_origin = keep_from
        return out

    def _emit(self, end: int) -> np.ndarray:
        if end <= self.n_emitted_:
            return np.zeros(0)
        sums, counts = self._acc.take(end)
        self.n_emitted_ = end
        return sums / counts

    def flush(self) -> np.ndarray:
        """End the stream: return the scores of the remaining steps, as batch scoring of the
        whole stream gives them, and reset the scorer for a new stream.

        Raises ValueError when fewer than ``window`` points have arrived.
        """
        if self.n_seen_ < self.window:
            raise ValueError(
                f"The stream has {self.n_seen_} points, fewer than window={self.window}: no "
                "window can be scored. Send more points before flushing."
            )
        tail = self.n_seen_ - self.window
        last_grid = self._next_start - self.stride
        if tail != last_grid:
            self._add(np.array([tail], dtype=np.int64), only_from=last_grid + self.window)
        out = self._emit(self.n_seen_)
        self._reset()
        return out
