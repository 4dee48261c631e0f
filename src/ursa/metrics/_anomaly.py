"""Anomaly-detection metrics on per-step labels and scores.

Every function takes ``labels`` (1 = anomalous step, 0 = normal) and ``scores`` (higher = more
abnormal), both of shape (n_timesteps,), and is threshold-free except where named.

* :func:`auc_roc` and :func:`auc_pr` (average precision) treat steps independently.
* :func:`vus_pr` and :func:`range_auc_pr` are the range-aware measures of Paparrizos et al.,
  "Volume Under the Surface: a new accuracy evaluation measure for time-series anomaly detection",
  PVLDB 15(11), 2022, with the rules of the TSB-AD benchmark's reference code (NeurIPS 2024),
  written here and checked against that code's values.
* :func:`best_f1` is the best F1 over all thresholds.
* :func:`point_adjusted_f1_inflated` applies "point adjustment" (a whole labelled range counts as
  found when any of its steps is flagged). It is **inflated**: on the NAB series a random score
  reaches F1 0.95 with it. It is only here to compare with papers that report it; never use it as
  a headline number.
"""

from __future__ import annotations

import numpy as np

from .._params import check_count

__all__ = [
    "auc_roc",
    "auc_pr",
    "best_f1",
    "range_auc_pr",
    "vus_pr",
    "point_adjusted_f1_inflated",
    "anomaly_ranges",
]


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: labels -> int8 0/1, scores -> float64; same length; both classes."""
    for name, value in (("labels", labels), ("scores", scores)):
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(
                f"{name} must be an array of shape (n_timesteps,), got {type(value).__name__}."
            )
    y = np.asarray(labels)
    s = np.asarray(scores)
    for name, array in (("labels", y), ("scores", s)):
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
        ) or np.issubdtype(array.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}.")
        if array.ndim != 1:
            raise ValueError(
                f"{name} must have shape (n_timesteps,), got {array.ndim} dimensions with shape "
                f"{array.shape}. Score one series at a time, or concatenate series first."
            )
    if len(y) != len(s):
        raise ValueError(
            f"labels has {len(y)} steps but scores has {len(s)}; pass one score per labelled step."
        )
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        index = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(
            f"scores[{index}] is {s[index]}; every score must be finite. Drop or fill steps "
            "without a score before evaluating."
        )
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"labels[{index}] is {y[index].item()!r}; labels must be 0 (normal) or 1 (anomaly)."
        )
    y = y.astype(np.int8)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        which = "no anomalous" if n_pos == 0 else "no normal"
        raise ValueError(
            f"labels has {which} steps; these metrics need both classes. Evaluate on a stretch "
            "that holds at least one anomaly and one normal step."
        )
    return y, s


def anomaly_ranges(labels) -> np.ndarray:
    """The labelled anomalies as ranges: ndarray of shape (n_ranges, 2), inclusive [first, last]."""
    y = np.asarray(labels).astype(np.int8)
    padded = np.concatenate([[0], y, [0]])
    change = np.flatnonzero(np.diff(padded))
    return change.reshape(-1, 2) - np.array([0, 1])


def auc_roc(labels, scores) -> float:
    """Area under the ROC curve (ties share credit); 0.5 for a random score."""
    y, s = _check(labels, scores)
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def auc_pr(labels, scores) -> float:
    """Area under the precision-recall curve, as average precision (a step function, no
    interpolation); a random score gets about the share of anomalous steps."""
    y, s = _check(labels, scores)
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def best_f1(labels, scores) -> tuple[float, float]:
    """Best F1 over all thresholds ``scores >= t``.

    Returns
    -------
    (f1, threshold) : tuple of float
    """
    y, s = _check(labels, scores)
    return _best_f1(y, s)


def _best_f1(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    tp = np.cumsum(y[order])
    # Only cut where the score changes: ties are flagged together.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp = tp[last_of_tie]
    flagged = np.flatnonzero(last_of_tie) + 1
    f1 = 2 * tp / (flagged + y.sum())
    best = int(np.argmax(f1))
    return float(f1[best]), float(sorted_scores[last_of_tie][best])


def point_adjusted_f1_inflated(labels, scores) -> tuple[float, float]:
    """Best F1 with point adjustment. INFLATED: not a measure of detection quality.

    Point adjustment counts every step of a labelled range as detected as soon as one of its steps
    is flagged, which rewards noisy scores: a random score reaches F1 0.95 with it on the NAB
    series (ursa's benchmark data README). Use only to compare with papers that report it, always
    labelled as inflated and beside :func:`auc_pr` and :func:`vus_pr`.

    Returns
    -------
    (f1, threshold) : tuple of float
    """
    y, s = _check(labels, scores)
    adjusted = s.copy()
    for first, last in anomaly_ranges(y):
        adjusted[first : last + 1] = s[first : last + 1].max()
    return _best_f1(y, adjusted)


def _extended_labels(y: np.ndarray, ranges: np.ndarray, buffer: int) -> np.ndarray:
    """Paparrizos et al.'s continuous labels: 1 inside each range and, on ``buffer // 2`` steps
    on each side, sqrt(1 - d / buffer) at distance d from the range, capped at 1 where buffers
    of neighbouring ranges overlap."""
    label = y.astype(np.float64)
    half = buffer // 2
    if half == 0:
        return label
    n = len(y)
    distance = np.arange(1, half + 1)
    weight = np.sqrt(1.0 - distance / buffer)  # (half,)
    for first, last in ranges:
        left = first - distance
        ok = left >= 0
        label[left[ok]] += weight[ok]
        right = last + distance
        ok = right < n
        label[right[ok]] += weight[ok]
    return np.minimum(label, 1.0)


def _widened_ranges(ranges: np.ndarray, buffer: int, n: int) -> np.ndarray:
    """The ranges widened by ``buffer // 2`` steps on each side (within the series), merged where
    the widened ranges overlap; ranges whose widenings only touch stay apart (TSB-AD's rule)."""
    half = buffer // 2
    gaps = ranges[1:, 0] - ranges[:-1, 1]  # steps from each range's end to the next one's start
    split = np.flatnonzero(gaps > 2 * half)  # separate when end + half < next start - half
    firsts = ranges[np.r_[0, split + 1], 0] - half
    lasts = ranges[np.r_[split, len(ranges) - 1], 1] + half
    return np.stack([np.maximum(firsts, 0), np.minimum(lasts, n - 1)], axis=1)


class _RangeCurves:
    """What every buffer length shares: the score order and the thresholds."""

    def __init__(self, y: np.ndarray, s: np.ndarray, n_thresholds: int | None):
        self.y = y
        self.order = np.argsort(-s, kind="stable")
        sorted_scores = s[self.order]
        if n_thresholds is None:
            thresholds = np.unique(sorted_scores)[::-1]
        else:
            # The protocol's thresholds: the scores at evenly spaced ranks of the sorted scores.
            picks = np.linspace(0, len(s) - 1, n_thresholds).astype(np.int64)
            thresholds = sorted_scores[picks]
        # Steps flagged at threshold t: every score >= t (ties flagged together).
        self.n_flagged = np.searchsorted(-sorted_scores, -thresholds, side="right")
        self.rank = np.empty(len(s), dtype=np.int64)
        self.rank[self.order] = np.arange(len(s))
        self.ranges = anomaly_ranges(y)
        self.n_positive = float(y.sum())

    def _flagged_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over the flagged steps, at every threshold."""
        return np.concatenate([[0.0], np.cumsum(values[self.order])])[self.n_flagged]

    def auc_pr(self, buffer: int) -> float:
        label = _extended_labels(self.y, self.ranges, buffer)
        tp = self._flagged_sum(label)
        # Positives: half the labelled steps plus half of (the labelled steps and the buffer
        # weights of the flagged buffer steps): unflagged buffer steps are no positives to miss.
        buffer_weights = np.where(self.y == 1, 0.0, label)
        positives = self.n_positive + self._flagged_sum(buffer_weights) / 2.0
        # Existence reward: the share of widened ranges with a flagged step; a range counts
        # from the threshold that flags its highest-ranked step.
        widened = _widened_ranges(self.ranges, buffer, len(self.y))
        bounds = np.stack([widened[:, 0], widened[:, 1] + 1], axis=1).ravel()
        rank = np.r_[self.rank, 0]  # reduceat needs an index past the last range's end
        first_rank = np.sort(np.minimum.reduceat(rank, bounds)[::2])
        existence = np.searchsorted(first_rank, self.n_flagged, side="left") / len(widened)
        recall = np.minimum(tp / positives, 1.0) * existence
        precision = tp / self.n_flagged
        # Average precision: each threshold's precision times the recall it adds.
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def range_auc_pr(labels, scores, buffer=None, n_thresholds=250) -> float:
    """Range-AUC-PR (Paparrizos et al., PVLDB 2022) for one buffer length, by TSB-AD's rules.

    Labels are widened by ``buffer // 2`` steps on each side of every anomalous range, with
    weights sqrt(1 - d / buffer) that fall with the distance d from the range. At each threshold,
    TP is the sum of those weights over the flagged steps; P is the labelled steps plus half the
    weights of the *flagged* buffer steps; recall is TP / P, capped at 1 and multiplied by the
    existence reward (the share of widened ranges, merged where they overlap, with a flagged
    step); precision is TP over the flagged steps. The score is the average precision: the sum
    over thresholds of the recall each one adds times its precision. This is the per-buffer term
    of :func:`vus_pr`, the rules of the TSB-AD reference code (``generate_curve``,
    ``version="opt"``), which the tests check against its values.

    Parameters
    ----------
    labels, scores : array-like of shape (n_timesteps,)
    buffer : int or None
        Buffer length ``l``; None uses the median length of the labelled ranges (the paper's
        default).
    n_thresholds : int or None, default=250
        Thresholds at evenly spaced ranks of the sorted scores, as in the paper's protocol;
        None uses every distinct score.
    """
    y, s = _check(labels, scores)
    if buffer is None:
        ranges = anomaly_ranges(y)
        buffer = int(np.median(ranges[:, 1] - ranges[:, 0] + 1))
    buffer = check_count(buffer, "buffer", minimum=0)
    if n_thresholds is not None:
        n_thresholds = check_count(n_thresholds, "n_thresholds", minimum=2)
    return _RangeCurves(y, s, n_thresholds).auc_pr(buffer)


def vus_pr(labels, scores, max_buffer=128, n_thresholds=250) -> float:
    """Volume under the range-PR surface (VUS-PR; Paparrizos et al., PVLDB 2022), as TSB-AD
    computes it.

    The mean of :func:`range_auc_pr` over every buffer length ``l = 0, 1, ..., max_buffer``: a
    threshold-free score that forgives detections a little before or after a labelled range, less
    the further away they are, without depending on one chosen buffer length. It equals the
    TSB-AD benchmark's VUS-PR (NeurIPS 2024) for the same ``max_buffer`` (its ``slidingWindow``)
    and 250 thresholds, so its figures can be set beside published ones.

    Parameters
    ----------
    labels, scores : array-like of shape (n_timesteps,)
    max_buffer : int, default=128
        Largest buffer length ``L``. The paper's protocol sets it to twice the series' period or
        the detector's window (ursa's benchmark uses 2 x window = 128).
    n_thresholds : int or None, default=250
        As in :func:`range_auc_pr`.
    """
    y, s = _check(labels, scores)
    max_buffer = check_count(max_buffer, "max_buffer", minimum=0)
    if n_thresholds is not None:
        n_thresholds = check_count(n_thresholds, "n_thresholds", minimum=2)
    curves = _RangeCurves(y, s, n_thresholds)
    return float(np.mean([curves.auc_pr(buffer) for buffer in range(max_buffer + 1)]))
