"""SequenceAnomalyDetector: a recurrent autoencoder on sliding windows of long series, with
per-step and per-window scores, PyOD-style thresholds, explanations and a streaming scorer."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

from .._params import Instance, Interval, Options
from ..data import Sequences, as_sequences, sliding_windows, window_starts
from ..data._sequences import _check_numeric, _to_float32
from ..persistence import register
from ..training import train
from .autoencoder import ReconstructionNetwork
from .base import COMMON_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["SequenceAnomalyDetector", "StreamingScorer", "Explanation"]

REDUCTIONS = ("step", "window")


# --------------------------------------------------------------------------- input handling
def _as_series(X, *, name: str = "X", n_features: int | None = None, min_length: int = 1):
    """Validate ``X`` as one or several long series.

    Returns ``(series, kind, lengths)``: a list of float32 arrays of shape (T_i, C), the caller's
    layout (``"single"`` for one (T,) or (T, C) array, ``"list"``, or ``"3d"`` for an array of
    several series, NaN-padded at the end for unequal lengths) and the lengths.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, (str, bytes)) or X is None or np.isscalar(X):
        raise TypeError(
            f"{name} must be one series, an array of shape (T,) or (T, n_features), a list of "
            f"such arrays, or an array of shape (n_series, T, n_features); got {type(X).__name__}."
        )
    if isinstance(X, (list, tuple, Sequences)):
        seqs = as_sequences(X, name=name, n_features=n_features)
        kind = "list"
    else:
        array = _check_numeric(np.asarray(X), name)
        if array.ndim == 3:
            seqs = as_sequences(array, name=name, n_features=n_features)
            kind = "3d"
        elif array.ndim in (1, 2):
            kind = "single"
            if array.ndim == 1:
                array = array[:, None]
            if array.shape[0] == 0 or array.shape[1] == 0:
                raise ValueError(
                    f"{name} has shape {array.shape}: a series needs at least one time step and "
                    "one feature."
                )
            array = _to_float32(array, name)
            if not np.isfinite(array).all():
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
            seqs = Sequences(np.ascontiguousarray(array)[None], np.array([len(array)]))
        else:
            raise ValueError(
                f"{name} must be one series of shape (T,) or (T, n_features), or an array with 3 "
                f"dimensions (n_series, T, n_features) for several series; got {array.ndim} "
                f"dimensions with shape {array.shape}. For series of different lengths pass a list."
            )
    series = [seqs.values[i, : seqs.lengths[i]] for i in range(seqs.n_sequences)]
    for i, s in enumerate(series):
        if len(s) < min_length:
            where = name if kind == "single" else f"{name}[{i}]"
            raise ValueError(
                f"{where} has {len(s)} time steps, fewer than window={min_length}. Use a smaller "
                "window or a longer series."
            )
    return series, kind, seqs.lengths


def _layout(values: list[np.ndarray], kind: str, lengths: np.ndarray):
    """Per-step outputs back in the caller's layout."""
    if kind == "single":
        return values[0]
    if kind == "list":
        return values
    out = np.full((len(values), int(lengths.max())) + values[0].shape[1:], np.nan)
    for i, v in enumerate(values):
        out[i, : len(v)] = v
    return out


def score_starts(n_timesteps: int, window: int, stride: int) -> tuple[np.ndarray, int | None]:
    """Starts of the scored windows: every ``stride`` steps, plus one window ending at the last
    step when the grid stops short of it (None when it does not)."""
    starts = window_starts(n_timesteps, window, stride)
    tail = n_timesteps - window
    return starts, (tail if starts[-1] != tail else None)


@dataclass
class Explanation:
    """What drove the scores of one series.

    Attributes
    ----------
    scores : ndarray of shape (T,)
        Per-step scores (``decision_function``).
    channel_shares : ndarray of shape (T, n_features)
        Each channel's share of each step's score; rows sum to 1.
    window_starts : ndarray of shape (n_windows,)
        First step of each scored window.
    window_scores : ndarray of shape (n_windows,)
        Score of each window (mean squared reconstruction error over its steps and channels).
    step_shares : ndarray of shape (n_windows, window)
        Each step's share of its window's score; rows sum to 1.
    """

    scores: np.ndarray
    channel_shares: np.ndarray
    window_starts: np.ndarray
    window_scores: np.ndarray
    step_shares: np.ndarray


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


@register
class SequenceAnomalyDetector(ReconstructionNetwork, BaseSequenceEstimator):
    """Anomaly detection on long series with a recurrent autoencoder on sliding windows.

    ``fit`` cuts every training series into windows of ``window`` steps (every ``stride`` steps),
    scales each channel with statistics of the training series, and trains the recurrent
    autoencoder of :class:`ursa.SequenceAutoencoder` (encoder -> ``latent_dim`` code -> decoder)
    to rebuild the windows. Normal behaviour is rebuilt well; anomalies are not.

    Scoring cuts a series into windows every ``score_stride`` steps (plus one window ending at the
    last step) and reconstructs them, in batches of ``predict_batch_size`` windows, so memory stays
    bounded for any length. The squared error of each window step, averaged over channels, is the
    raw error; the **window-to-step reduction** is chosen with ``score_reduction``:

    * ``"window"`` (default): a step's score is the mean of the window scores (mean error over
      the whole window) of the windows that cover it. Smooth: an anomaly raises the score over
      about two windows around it.
    * ``"step"``: a step's score is the mean of its own error over every window that covers it
      (sharper in time).

    The default was chosen by measurement (``benchmarks/anomaly.py --score-reduction step`` and
    ``window``; window 64, 20 epochs, benchmarks/RESULTS.md): over the 11 NAB and UCR series,
    "window" gave mean AUC-ROC / AUC-PR 0.870 / 0.600 against 0.768 / 0.369 for "step", and was
    better in AUC-PR on 8 of the 11 series (NAB's labelled windows are wide, and a window's mean
    error is steadier than one step's error).

    The end-aligned tail window only scores the steps that no grid window covers, so a step's
    score is final once the first grid window starting after it has been scored: this is what
    lets :class:`StreamingScorer` reproduce batch scores exactly.

    Thresholds follow PyOD: ``decision_scores_`` are the per-step scores of the training series,
    ``threshold_`` is set from them and ``labels_`` / ``predict`` flag scores above it.

    Parameters
    ----------
    window : int, default=64
        Steps per window.
    stride : int, default=1
        Steps between training windows.
    score_stride : int, default=8
        Steps between scored windows (1 <= score_stride <= window); each step is scored in
        ``window / score_stride`` windows. 8 keeps scoring above 50,000 points/s on one core for a
        univariate series (benchmarks/RESULTS.md); 1 is the slowest and smoothest.
    score_reduction : {"window", "step"}, default="window"
        Window-to-step reduction (see above).
    cell, hidden_size, num_layers, bidirectional, dropout, latent_dim
        Network shape, as in :class:`ursa.SequenceAutoencoder`.
    epochs : int, default=20
    batch_size : int, default=64
    learning_rate : float, default=5e-3
    max_grad_norm : float or None, default=1.0
    validation_fraction : float, default=0.1
        Share of training windows held out for early stopping.
    patience : int or None, default=5
    max_train_windows : int, default=50000
        At most this many training windows (evenly spaced) are used; bounds training memory.
    scaling : {"standard", "minmax", None}, default="standard"
    contamination : float in (0, 0.5], default=0.1
        Expected share of anomalous steps in the training series (PyOD's meaning).
    threshold : {"contamination", "pot"} or float in (0, 1], default="contamination"
        How ``threshold_`` is set from ``decision_scores_``: their ``1 - contamination`` quantile;
        ``"pot"``, peaks over threshold (a generalised Pareto distribution fitted to the scores
        above their ``pot_level`` quantile, threshold at exceedance probability ``pot_risk``); or
        a float ``q``, their ``q`` quantile.
    pot_level : float, default=0.98
        Quantile of training scores above which the tail is modelled (``threshold="pot"``).
    pot_risk : float, default=1e-3
        Probability that a normal step's score exceeds the threshold (``threshold="pot"``).
    random_state, device, verbose, n_threads, callbacks, checkpoint_dir, checkpoint_every
        As in :class:`ursa.SequenceAutoencoder` (``fit(X, resume=True)`` continues an
        interrupted fit from ``checkpoint_dir``).

    Attributes
    ----------
    n_features_in_ : int
    scaler_ : ursa.data.SequenceScaler
    network_ : ursa.networks.SequenceAutoencoderNet
    decision_scores_ : ndarray of shape (n_training_steps,)
        Per-step scores of the training series, concatenated in order.
    threshold_ : float
    labels_ : ndarray of shape (n_training_steps,)
        0/1 flags of the training steps.
    history_, loss_curve_, validation_scores_, n_iter_
        Training diagnostics.

    Examples
    --------
    >>> import numpy as np
    >>> from ursa import SequenceAnomalyDetector
    >>> t = np.arange(3000)
    >>> series = np.sin(2 * np.pi * t / 50)
    >>> det = SequenceAnomalyDetector(window=32, stride=2, hidden_size=16, epochs=2,
    ...                               random_state=0, device="cpu")
    >>> det = det.fit(series[:1000])                      # a normal stretch
    >>> test = series.copy(); test[2500] += 3.0          # a spike
    >>> scores = det.decision_function(test)             # one score per step
    >>> scores.shape
    (3000,)
    >>> bool(abs(int(np.argmax(scores)) - 2500) < 32)
    True
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "window": [Interval(int, 2)],
        "stride": [Interval(int, 1)],
        "score_stride": [Interval(int, 1)],
        "score_reduction": [Options(REDUCTIONS)],
        "max_train_windows": [Interval(int, 1)],
        "contamination": [Interval(float, 0.0, 0.5, open_low=True)],
        "threshold": [Options(("contamination", "pot")), Interval(float, 0.0, 1.0, open_low=True)],
        "pot_level": [Interval(float, 0.5, 0.9999)],
        "pot_risk": [Interval(float, 0.0, 0.5, open_low=True)],
        "callbacks": [Instance((list, tuple)), None],
    }

    def __init__(
        self,
        window=64,
        stride=1,
        score_stride=8,
        score_reduction="window",
        cell="gru",
        hidden_size=32,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        latent_dim=16,
        epochs=20,
        batch_size=64,
        learning_rate=5e-3,
        max_grad_norm=1.0,
        validation_fraction=0.1,
        patience=5,
        max_train_windows=50000,
        scaling="standard",
        contamination=0.1,
        threshold="contamination",
        pot_level=0.98,
        pot_risk=1e-3,
        random_state=None,
        device="auto",
        verbose=False,
        n_threads=None,
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=1,
    ):
        self.window = window
        self.stride = stride
        self.score_stride = score_stride
        self.score_reduction = score_reduction
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.max_train_windows = max_train_windows
        self.scaling = scaling
        self.contamination = contamination
        self.threshold = threshold
        self.pot_level = pot_level
        self.pot_risk = pot_risk
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.n_threads = n_threads
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ------------------------------------------------------------------ fitting
    def _check_score_stride(self) -> None:
        stride = self.score_stride
        if (isinstance(stride, bool) or not isinstance(stride, Integral)
                or not 1 <= stride <= self.window):
            raise ValueError(
                f"score_stride must be an integer in [1, window={self.window}], got {stride!r}: "
                "a larger stride would leave steps that no window scores."
            )

    def _training_windows(self, series: list[np.ndarray]) -> np.ndarray:
        """Scaled training windows (n, window, C), at most ``max_train_windows``, evenly spaced."""
        per_series = [window_starts(len(s), self.window, self.stride) for s in series]
        total = sum(len(p) for p in per_series)
        keep = np.arange(total)
        if total > self.max_train_windows:
            keep = np.unique(np.linspace(0, total - 1, self.max_train_windows).astype(np.int64))
        out = np.empty((len(keep), self.window, self.n_features_in_), dtype=np.float32)
        offset, filled = 0, 0
        for s, starts in zip(series, per_series):
            mine = keep[(keep >= offset) & (keep < offset + len(starts))] - offset
            view = sliding_windows(s, self.window, 1)  # (T - window + 1, window, C), a view
            out[filled : filled + len(mine)] = view[starts[mine]]
            filled += len(mine)
            offset += len(starts)
        out -= self.scaler_.offset_
        out /= self.scaler_.scale_
        return out

    def fit(self, X, y=None, *, resume=False):
        """Fit on one or several long series.

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features), a list of such arrays, or an array of shape
            (n_series, T, n_features) (NaN-padded at the end for unequal lengths)
            Training series, assumed mostly normal. Each needs at least ``window`` steps.
        y : ignored
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` (same data and parameters).

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_score_stride()
        series, _, _ = _as_series(X, min_length=self.window)
        self.n_features_in_ = series[0].shape[1]
        from ..data import SequenceScaler

        lengths = np.array([len(s) for s in series])
        padded = np.zeros((len(series), int(lengths.max()), self.n_features_in_), dtype=np.float32)
        for i, s in enumerate(series):
            padded[i, : len(s)] = s
        self.scaler_ = SequenceScaler(self.scaling).fit(Sequences(padded, lengths))
        del padded
        windows = self._training_windows(series)
        device = self._device()
        with self._fit_context() as rng:
            network = self._build_network()
            seqs = Sequences(windows, np.full(len(windows), self.window, dtype=np.int64))
            callbacks = self._callbacks(seqs, resume=resume)
            history = train(network, self._loss, seqs, self._training_config(),
                            rng=rng, device=device, callbacks=callbacks)
        self.network_ = network
        self._set_history(history)
        self.decision_scores_ = np.concatenate([self._score_one(s)[0] for s in series])
        self.threshold_ = self._threshold(self.decision_scores_)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        return self

    def _threshold(self, scores: np.ndarray) -> float:
        if self.threshold == "contamination":
            return float(np.quantile(scores, 1.0 - self.contamination))
        if self.threshold == "pot":
            return pot_threshold(scores, level=self.pot_level, risk=self.pot_risk)
        return float(np.quantile(scores, float(self.threshold)))

    # ------------------------------------------------------------------ scoring core
    def _window_errors(self, windows: np.ndarray, name: str = "X") -> np.ndarray:
        """Squared reconstruction errors (n, window, C) of raw windows (n, window, C), in float64:
        a value far outside the training range (1e20 after scaling, say) has a squared error
        beyond float32's range but a finite score."""
        with np.errstate(over="ignore"):  # an overflow is reported below, with its cause
            scaled = np.subtract(windows, self.scaler_.offset_, dtype=np.float32)
            scaled /= self.scaler_.scale_
        device = next(self.network_.parameters()).device
        values = torch.from_numpy(scaled).to(device)
        lengths = torch.full((len(scaled),), scaled.shape[1], dtype=torch.int64, device=device)
        reconstruction, _ = self.network_(values, lengths)
        errors = (reconstruction.double() - values.double()).pow_(2).cpu().numpy()
        if not np.isfinite(errors).all():
            biggest = float(np.abs(windows).max())
            raise ValueError(
                f"{name} gives a non-finite reconstruction error: its values (largest magnitude "
                f"{biggest:.3g}) are beyond what float32 holds once scaled like the training data. "
                f"Rescale {name} like the training data, or refit on data that covers this range.")
        return errors

    def _errors_at(self, series: np.ndarray, starts: np.ndarray, name: str = "X"):
        """Yield (starts, errors (n, window, C)) batch by batch."""
        view = sliding_windows(series, self.window, 1)  # a strided view: no copy
        with self._threads(), torch.inference_mode():
            self.network_.eval()
            for lo in range(0, len(starts), self.predict_batch_size):
                batch = starts[lo : lo + self.predict_batch_size]
                yield batch, self._window_errors(np.ascontiguousarray(view[batch]), name)

    def _reduce(self, errors: np.ndarray, per_channel: bool) -> np.ndarray:
        """Window errors (n, window, C) -> what the accumulator sums per step."""
        if self.score_reduction == "window":
            if per_channel:
                per_window = errors.mean(axis=1, keepdims=True, dtype=np.float64) / errors.shape[2]
                return np.broadcast_to(per_window, errors.shape)  # (n, window, C)
            per_window = errors.mean(axis=(1, 2), dtype=np.float64)[:, None]
            return np.broadcast_to(per_window, errors.shape[:2])  # (n, window)
        if per_channel:
            return errors.astype(np.float64) / errors.shape[2]
        return errors.mean(axis=2, dtype=np.float64)

    def _score_one(self, series: np.ndarray, per_channel: bool = False, windows: bool = False):
        """Scores of one validated series: (step scores, channel parts or None, window scores or
        None, step errors per window or None)."""
        n = len(series)
        starts, tail = score_starts(n, self.window, self.score_stride)
        acc = _Accumulator(0, series.shape[1] if per_channel else None, size=n)
        window_scores, window_steps = [], []
        all_starts = starts if tail is None else np.r_[starts, tail]
        for batch, errors in self._errors_at(series, all_starts):
            if windows:
                step = errors.mean(axis=2)  # (n, window)
                window_scores.append(step.mean(axis=1))
                window_steps.append(step)
            reduced = self._reduce(errors, per_channel)
            if tail is not None and batch[-1] == tail:
                if len(batch) > 1:
                    acc.add(batch[:-1], reduced[:-1])
                acc.add(batch[-1:], reduced[-1:], only_from=int(starts[-1]) + self.window)
            else:
                acc.add(batch, reduced)
        sums, counts = acc.take(n)
        # in place: the sums become the scores, no third per-step array
        parts = np.divide(sums, counts[:, None] if per_channel else counts, out=sums)
        scores = parts.sum(axis=1) if per_channel else parts
        if not windows:
            return scores, (parts if per_channel else None), None, None
        return (scores, (parts if per_channel else None), np.concatenate(window_scores),
                np.concatenate(window_steps))

    # ------------------------------------------------------------------ public scoring
    def _validated(self, X):
        self._check_is_fitted()
        self._check_score_stride()
        return _as_series(X, n_features=self.n_features_in_, min_length=self.window)

    def decision_function(self, X):
        """Per-step anomaly scores; higher = more abnormal (PyOD).

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features), a list of them, or an array of shape
            (n_series, T, n_features)

        Returns
        -------
        ndarray of shape (T,) for one series; a list of (T_i,) arrays for a list; an array of
        shape (n_series, T) with NaN after each series' end for a 3-D array.
        """
        series, kind, lengths = self._validated(X)
        return _layout([self._score_one(s)[0] for s in series], kind, lengths)

    def score_samples(self, X):
        """Negated ``decision_function`` (scikit-learn's sign: lower = more abnormal)."""
        out = self.decision_function(X)
        return [-o for o in out] if isinstance(out, list) else -out

    def predict(self, X):
        """0/1 per step: 1 where the score exceeds ``threshold_``.

        Same layout as :meth:`decision_function`; for a 3-D array the steps after a series'
        end are -1.
        """
        scores = self.decision_function(X)
        if isinstance(scores, list):
            return [(s > self.threshold_).astype(np.int64) for s in scores]
        flags = (scores > self.threshold_).astype(np.int64)
        if scores.ndim == 2:
            flags[np.isnan(scores)] = -1
        return flags

    def window_scores(self, X):
        """Per-window scores: the mean squared reconstruction error (scaled data) over each
        window's steps and channels.

        Returns
        -------
        (starts, scores) for one series, each of shape (n_windows,); a list of such pairs
        otherwise. Windows start every ``score_stride`` steps, plus one ending at the last step.
        """
        series, kind, _ = self._validated(X)
        out = []
        for s in series:
            _, _, scores, _ = self._score_one(s, windows=True)
            starts, tail = score_starts(len(s), self.window, self.score_stride)
            out.append((starts if tail is None else np.r_[starts, tail], scores))
        return out[0] if kind == "single" else out

    def explain(self, X) -> Explanation:
        """Which channels and which steps drove the scores of one series.

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features)
            One series (explain a slice of a very long series: ``step_shares`` holds
            ``n_windows * window`` values).

        Returns
        -------
        Explanation
        """
        series, kind, _ = self._validated(X)
        if kind != "single":
            raise ValueError(
                "explain takes one series, an array of shape (T,) or (T, n_features); got "
                f"{len(series)} series. Call explain on each of them."
            )
        s = series[0]
        scores, parts, wscores, steps = self._score_one(s, per_channel=True, windows=True)
        tiny = np.finfo(np.float64).tiny
        channel_shares = parts / np.maximum(scores, tiny)[:, None]
        step_shares = steps / np.maximum(steps.sum(axis=1, keepdims=True), tiny)
        starts, tail = score_starts(len(s), self.window, self.score_stride)
        return Explanation(
            scores=scores,
            channel_shares=channel_shares,
            window_starts=starts if tail is None else np.r_[starts, tail],
            window_scores=wscores.astype(np.float64),
            step_shares=step_shares.astype(np.float64),
        )

    def stream(self) -> "StreamingScorer":
        """A :class:`StreamingScorer` that scores points as they arrive, without refitting."""
        self._check_is_fitted()
        self._check_score_stride()
        return StreamingScorer(self)

    # ------------------------------------------------------------------ persistence
    def _get_state(self):
        document, arrays = super()._get_state()
        document["threshold"] = self.threshold_
        arrays["decision_scores"] = self.decision_scores_
        return document, arrays

    def _set_state(self, document, arrays):
        super()._set_state(document, arrays)
        self.threshold_ = float(document["threshold"])
        self.decision_scores_ = np.asarray(arrays["decision_scores"], dtype=np.float64)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)


class StreamingScorer:
    """Scores points as they arrive, with a rolling buffer, giving the batch scores.

    Each window is scored once, as soon as its last point has arrived. A step's score is
    returned once no later grid window can cover it (at most ``window`` steps after it arrived);
    the concatenation of everything :meth:`update` returned and :meth:`flush` gives exactly
    ``decision_function`` of the whole series (up to float rounding of batched matrix products).
    Memory: the last ``window + score_stride`` points and the pending step sums.

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
        self.window = detector.window
        self.stride = detector.score_stride
        self.n_features = detector.n_features_in_
        self._reset()

    def _reset(self) -> None:
        self.n_seen_ = 0  # points received
        self.n_emitted_ = 0  # step scores returned
        self._buffer = np.zeros((0, self.n_features), dtype=np.float32)
        self._buffer_origin = 0  # global index of _buffer[0]
        self._next_start = 0  # global start of the next grid window
        self._acc = _Accumulator(0, None)

    def _check(self, points) -> np.ndarray:
        if isinstance(points, (str, bytes)) or points is None:
            raise TypeError(f"points must be an array of numbers, got {type(points).__name__}.")
        array = _check_numeric(np.asarray(points), "points")
        if array.ndim == 1 and self.n_features == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise ValueError(
                f"points must have shape (n_points, {self.n_features}) (n_features of the "
                f"detector){' or (n_points,)' if self.n_features == 1 else ''}, got shape "
                f"{array.shape}. For one multivariate point use points[None, :]."
            )
        array = _to_float32(array, "points")
        if not np.isfinite(array).all():
            step, feature = (int(v) for v in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(
                f"points contains a non-finite value at row {step}, feature {feature} (point "
                f"{self.n_seen_ + step} of the stream). Impute or clip it before scoring."
            )
        return array

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
        array = self._check(points)
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


def pot_threshold(scores, level: float = 0.98, risk: float = 1e-3) -> float:
    """Peaks-over-threshold threshold (extreme value theory; Siffer et al., KDD 2017).

    The scores above their ``level`` quantile ``t`` are modelled by a generalised Pareto
    distribution (shape gamma, scale sigma, fitted by maximum likelihood with scipy); the returned
    threshold is the score that a normal step exceeds with probability ``risk``:
    ``t + sigma / gamma * ((risk * n / n_t) ** -gamma - 1)`` (``t - sigma * log(risk * n / n_t)``
    when gamma is 0), with ``n`` scores of which ``n_t`` exceed ``t``.
    """
    from scipy.stats import genpareto

    scores = np.asarray(scores, dtype=np.float64)
    t = float(np.quantile(scores, level))
    peaks = scores[scores > t] - t
    n, n_t = len(scores), len(peaks)
    if n_t < 10 or float(peaks.std()) == 0.0:
        # Too few distinct excesses to fit a tail: fall back to the empirical quantile.
        return float(np.quantile(scores, 1.0 - risk))
    ratio = risk * n / n_t
    if ratio >= 1.0:
        return t
    gamma, _, sigma = genpareto.fit(peaks, floc=0.0)
    if abs(gamma) < 1e-8:
        return float(t - sigma * np.log(ratio))
    return float(t + sigma / gamma * (ratio ** (-gamma) - 1.0))
