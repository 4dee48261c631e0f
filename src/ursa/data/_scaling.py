"""Per-feature scaling fitted on the valid steps of training sequences only."""

from __future__ import annotations

import numpy as np

from ._sequences import Sequences

__all__ = ["SequenceScaler", "SCALINGS"]

SCALINGS = ("standard", "minmax", None)


class SequenceScaler:
    """Scale each feature with statistics taken over every valid time step of the training data.

    ``method="standard"`` maps to zero mean and unit variance, ``"minmax"`` to ``feature_range``
    ([0, 1] unless given, as scikit-learn's ``MinMaxScaler``), ``None`` is the identity. A constant
    feature gets scale 1 so that it is centred rather than divided by zero. Missing values (NaN
    inside a sequence) are left out of the statistics and stay NaN when scaled. The state is two
    float32 vectors, ``offset_`` and ``scale_``: ``scaled = (x - offset_) / scale_`` (the
    feature range is folded into them).
    """

    def __init__(self, method: str | None = "standard", feature_range: tuple = (0.0, 1.0)):
        if method not in SCALINGS:
            raise ValueError(f"scaling must be one of 'standard', 'minmax' or None, got {method!r}.")
        try:
            low, high = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise ValueError(f"feature_range must be a pair of numbers (low, high), got "
                             f"{feature_range!r}.") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"feature_range must be finite with low < high, got {feature_range!r}.")
        if method != "minmax" and (low, high) != (0.0, 1.0):
            raise ValueError(f"feature_range applies to method='minmax' only, got method={method!r} "
                             f"with feature_range={feature_range!r}.")
        self.method = method
        self.feature_range = (low, high)

    def fit(self, seqs: Sequences) -> "SequenceScaler":
        valid = seqs.values[seqs.mask()].astype(np.float64)  # (n_valid_steps, n_features)
        n_features = seqs.n_features
        missing = np.isnan(valid)
        if missing.any():  # statistics of the observed values
            unseen = np.flatnonzero(missing.all(axis=0))
            if len(unseen):
                raise ValueError(
                    f"feature {int(unseen[0])} is missing (NaN) at every step of every sequence: "
                    "there is nothing to learn it from. Drop that feature or give it values.")
            mean, std, low, high = np.nanmean, np.nanstd, np.nanmin, np.nanmax
        else:
            mean, std, low, high = np.mean, np.std, np.min, np.max
        if self.method == "standard":
            offset = mean(valid, axis=0)
            scale = std(valid, axis=0)
        elif self.method == "minmax":
            offset = low(valid, axis=0)
            scale = high(valid, axis=0) - offset
        else:
            offset = np.zeros(n_features)
            scale = np.ones(n_features)
        return self._set(offset, scale)

    def partial_fit(self, seqs: Sequences) -> "SequenceScaler":
        """Update the statistics with another part of the training data (scikit-learn's
        ``partial_fit``): after the last part the scaler is the one :meth:`fit` gives on all of
        them, to rounding. Statistics are combined exactly (counts, means and sums of squared
        deviations, extremes); ``n_samples_seen_`` counts each feature's observed values.
        A feature not observed yet is left unscaled."""
        valid = seqs.values[seqs.mask()].astype(np.float64)
        observed = ~np.isnan(valid)
        count = observed.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(valid, axis=0) / np.maximum(count, 1), 0.0)
            m2 = np.nansum((valid - mean) ** 2, axis=0)
        low = np.where(observed, valid, np.inf).min(axis=0, initial=np.inf)
        high = np.where(observed, valid, -np.inf).max(axis=0, initial=-np.inf)
        return self.merge_statistics(np.stack([count, mean, m2, low, high]))

    def statistics(self) -> np.ndarray:
        """What :meth:`partial_fit` has seen, as one (5, n_features) float64 array: counts,
        means, sums of squared deviations, minima, maxima (for :meth:`merge_statistics`)."""
        return self._stats.copy()

    def merge_statistics(self, stats: np.ndarray) -> "SequenceScaler":
        """Combine statistics of another part of the data (:meth:`statistics` of a scaler fed
        other parts, e.g. by another process) with these, and rescale."""
        stats = np.asarray(stats, dtype=np.float64)
        mine = getattr(self, "_stats", None)
        if mine is not None:
            if stats.shape != mine.shape:
                raise ValueError(f"statistics of {stats.shape[1]} features cannot be merged with "
                                 f"those of {mine.shape[1]}.")
            n_a, mean_a, m2_a, low_a, high_a = mine
            n_b, mean_b, m2_b, low_b, high_b = stats
            n = n_a + n_b
            with np.errstate(invalid="ignore", divide="ignore"):
                delta = mean_b - mean_a
                mean = np.where(n > 0, mean_a + delta * n_b / np.maximum(n, 1), 0.0)
                m2 = m2_a + m2_b + np.where(n > 0, delta ** 2 * n_a * n_b / np.maximum(n, 1), 0.0)
            stats = np.stack([n, mean, m2, np.minimum(low_a, low_b), np.maximum(high_a, high_b)])
        self._stats = stats
        n, mean, m2, low, high = stats
        self.n_samples_seen_ = n.astype(np.int64)
        seen = n > 0
        if self.method == "standard":
            offset = np.where(seen, mean, 0.0)
            scale = np.where(seen, np.sqrt(m2 / np.maximum(n, 1)), 1.0)
        elif self.method == "minmax":
            offset = np.where(seen, low, 0.0)
            scale = np.where(seen, high - low, 1.0)
        else:
            offset, scale = np.zeros(len(n)), np.ones(len(n))
        return self._set(offset, scale)

    def _set(self, offset: np.ndarray, scale: np.ndarray) -> "SequenceScaler":
        # Constant features (a spread below float32's resolution of the values) are only shifted;
        # tiny but real spreads (1e-20 around 0) are kept: scaling them is exact in float32.
        scale = np.where(scale > np.maximum(1e-6 * np.abs(offset), 1e-30), scale, 1.0)
        low, high = self.feature_range
        if (low, high) != (0.0, 1.0):
            # [min, max] -> [low, high]: scaled = low + (x - min) / range * (high - low).
            scale = scale / (high - low)
            offset = offset - low * scale
        self.offset_ = offset.astype(np.float32)
        self.scale_ = scale.astype(np.float32)
        return self

    def transform(self, seqs: Sequences) -> Sequences:
        values = np.subtract(seqs.values, self.offset_, dtype=np.float32)
        values /= self.scale_
        if not seqs.equal_length:
            values[~seqs.mask()] = 0.0
        return seqs.with_values(values)

    def inverse_transform_values(self, values: np.ndarray, inplace: bool = False) -> np.ndarray:
        """Invert the scaling of a (..., n_features) array (in place when ``inplace``)."""
        out = values if inplace else values.copy()
        out *= self.scale_
        out += self.offset_
        return out

    def inverse_transform(self, seqs: Sequences) -> Sequences:
        values = self.inverse_transform_values(seqs.values)
        if not seqs.equal_length:
            values[~seqs.mask()] = 0.0
        return seqs.with_values(values)

    # Persistence: plain arrays and a string, never pickled objects.
    def get_state(self) -> tuple[dict, dict]:
        config = {"method": self.method}
        if self.feature_range != (0.0, 1.0):
            config["feature_range"] = list(self.feature_range)
        return config, {"offset": self.offset_, "scale": self.scale_}

    @classmethod
    def from_state(cls, config: dict, arrays: dict) -> "SequenceScaler":
        # Files written before feature_range existed scaled min-max to [0, 1].
        scaler = cls(config["method"], config.get("feature_range", (0.0, 1.0)))
        scaler.offset_ = np.asarray(arrays["offset"], dtype=np.float32)
        scaler.scale_ = np.asarray(arrays["scale"], dtype=np.float32)
        return scaler
