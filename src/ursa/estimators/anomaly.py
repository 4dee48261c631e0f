"""SequenceAnomalyDetector: a recurrent autoencoder on sliding windows of long series, with
per-step and per-window scores, PyOD-style thresholds, explanations and a streaming scorer."""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import torch

from .._params import Instance, Interval, Options
from ..data import (
    ParquetDataset,
    Sequences,
    SequenceScaler,
    as_series,
    batch_rows,
    is_token_input,
    dominant_period,
    restore_series_layout,
    sliding_windows,
    window_starts,
)
from ..networks import NextStepNet, SequenceAutoencoderNet, token_nll
from ..persistence import register
from ..training import train
from ._explain import Explanation
from ._outlier import OUTLIER_CONSTRAINTS, OutlierDetectorMixin, pot_threshold
from ._streaming import StreamingScorer, _Accumulator
from .autoencoder import ReconstructionNetwork
from .base import COMMON_CONSTRAINTS, PRIVACY_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["SequenceAnomalyDetector", "StreamingScorer", "SeriesExplanation", "pot_threshold"]

REDUCTIONS = ("step", "window")
# channels="continuous" leaves out binary channels (such as one-hot command flags).
CHANNEL_CHOICES = ("all", "continuous")
# window="auto": the training series' dominant period, within these bounds (a window must hold
# enough steps to have a shape, and few enough to train and score fast); a series without a
# period gets the fallback.
AUTO_WINDOW_MIN, AUTO_WINDOW_MAX, AUTO_WINDOW_FALLBACK = 16, 256, 64


def score_starts(n_timesteps: int, window: int, stride: int) -> tuple[np.ndarray, int | None]:
    """Starts of the scored windows: every ``stride`` steps, plus one window ending at the last
    step when the grid stops short of it (None when it does not)."""
    starts = window_starts(n_timesteps, window, stride)
    tail = n_timesteps - window
    return starts, (tail if starts[-1] != tail else None)


@dataclass
class SeriesExplanation(Explanation):
    """What drove the scores of one series (:class:`ursa.estimators.Explanation` with
    ``method="error"``: the per-step score is a mean of squared reconstruction errors, and each
    channel gets its own terms).

    Attributes
    ----------
    attributions : ndarray of shape (T, n_features)
        Each channel's part of each step's score; rows sum to ``scores``. Channels the detector
        does not model (see ``channels``) have 0.
    scores : ndarray of shape (T,)
        Per-step scores (``decision_function``).
    method : str
        ``"error"``.
    target : None
    channel_shares : ndarray of shape (T, n_features)
        Each channel's share of each step's score; rows sum to 1 (unmodelled channels: 0).
    window_starts : ndarray of shape (n_windows,)
        First step of each scored window.
    window_scores : ndarray of shape (n_windows,)
        Score of each window (mean squared reconstruction error over its steps and channels).
    step_shares : ndarray of shape (n_windows, window)
        Each step's share of its window's score; rows sum to 1.
    """

    channel_shares: np.ndarray
    window_starts: np.ndarray
    window_scores: np.ndarray
    step_shares: np.ndarray


@register
class SequenceAnomalyDetector(OutlierDetectorMixin, ReconstructionNetwork, BaseSequenceEstimator):
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

    The end-aligned tail window only scores the steps that no grid window covers, so a step's
    score is final once the first grid window starting after it has been scored: this is what
    lets :class:`StreamingScorer` reproduce batch scores exactly.

    Thresholds follow PyOD: ``decision_scores_`` are the per-step scores of the training series,
    ``threshold_`` is set from them and ``labels_`` / ``predict`` flag scores above it.

    For scikit-learn this is an outlier detector (``sklearn.base.is_outlier_detector``) whose
    samples are time steps: a 2-D array is one (T, n_features) series, and ``predict`` and
    ``fit_predict`` give one flag per step. PyOD's conventions are kept (flags 1 = anomaly,
    0 = normal; ``decision_function`` higher = more abnormal), not ``OutlierMixin``'s -1 / 1;
    ``score`` (negative mean step score) is higher for more normal data (docs/sklearn.md).

    The defaults are the settings measured on the NAB and UCR series of the anomaly benchmark
    (``benchmarks/RESULTS.md``).

    **Sessions** (``window=None``): each sequence is one sample, such as the log keys of one
    session (DeepLog's task) or a short recording. A session is scored by a recurrent next-step
    model (:class:`ursa.networks.NextStepNet`) rather than the autoencoder: each step's score is
    the error of predicting it from the steps before it, so an order, a value or an ending that
    normal sessions never show scores high, where an autoencoder could rebuild it from its code.
    :meth:`step_scores` gives one score per step, ``decision_function`` one per session (see
    ``session_score``), and the threshold is set on the training sessions' scores. Token
    sequences (:class:`ursa.data.TokenSequences`, or lists of strings) are read through a
    vocabulary fitted at ``fit`` (``vocabulary_``): a step's score is the negative
    log-likelihood of its token (a token never seen in training maps to the unknown id and
    scores high), and the end of a session is predicted as one more step, whose score is added
    to the last token's.

    Parameters
    ----------
    window : int, "auto" or None, default=64
        Steps per window: the context the autoencoder rebuilds, and the shortest series
        accepted. It should span what makes a stretch normal (a period or more of a periodic
        signal). "auto" uses the training series' dominant period (autocorrelation) within
        [16, 256], or 64 when it has none; the window used is ``window_``. None scores whole
        sequences (sessions, see above) with a next-step model of every channel, which has no
        use for ``encoder``, ``latent_dim``, ``bidirectional``, ``channels`` or the window
        settings.
    stride : int, default=1
        Steps between training windows. 1 trains on every window the series hold
        (``max_train_windows`` bounds how many); a larger stride trains on fewer.
    score_stride : int, default=4
        Steps between scored windows (1 <= score_stride <= window); each step is scored in
        about ``window / score_stride`` windows. 1 is the smoothest and the slowest; 4 does a
        quarter of its work and ranked anomalies better than 8 (``docs/anomaly.md``).
    score_reduction : {"window", "step"}, default="window"
        Window-to-step reduction (see above). "window" ranked the labelled anomalies of the
        benchmark higher: their labelled ranges are wide, and a window's mean error is steadier
        than one step's error.
    session_score : {"max", "mean"}, default="max"
        With ``window=None``, a session's score: its highest step score (DeepLog's rule: a
        session is as abnormal as its most surprising step; one odd step in a long session
        is not averaged away) or the mean of its step scores.
    channels : {"continuous", "all"}, default="continuous"
        Which channels the autoencoder models and scores: only those that are not binary in the
        training series (every value 0 or 1, such as one-hot command flags; all of them when
        every channel is binary), or every one. Rare switches of a flag dominate the
        reconstruction error: on the SMAP/MSL telemetry "all" scored near random.
        ``channels_`` holds the indices used.
    cell : {"rnn", "gru", "lstm"}, default="gru"
        Recurrent cell of encoder and decoder, as in :class:`ursa.SequenceAutoencoder`.
    hidden_size : int, default=32
        Units per recurrent layer. Half the autoencoder's default: scoring rebuilds a window
        every ``score_stride`` steps, so a small network keeps long series fast.
    num_layers : int, default=1
        Stacked recurrent layers in encoder and decoder.
    bidirectional : bool, default=False
        Bidirectional encoder.
    dropout : float, default=0.0
        Dropout between stacked layers (with ``num_layers > 1``).
    encoder : {"rnn", "conv-rnn", "rnn-attention", "conv-rnn-attention"}, default="conv-rnn"
        What reads a window into its code. ``"conv-"`` puts two strided convolutions (width
        5, stride 2 each) before the recurrence, which then reads a quarter of the steps (the
        decoder, still recurrent, emits four steps per recurrent step); ``"-attention"``
        pools the recurrent outputs with learned attention weights. ``"conv-rnn"`` is the
        default: on the benchmark series it scored as well as the plain recurrence or better,
        on two seeds, and fits in about half the time (docs/anomaly.md).
    latent_dim : int, default=16
        Size of the code each window passes through: too small to copy any window, so a
        window unlike the training ones is rebuilt badly.
    epochs : int, default=20
        Maximum passes over the training windows (the benchmark's setting): overlapping
        windows show the normal pattern many times in each pass.
    max_steps : int or None, default=None
        Cap on optimiser steps, applied as whole epochs (ceil(max_steps / batches per epoch)),
        so that long training series train for fewer epochs; None trains for ``epochs``.
    batch_size : int, default=128
        Windows per training step: with the convolutional encoder, 128 fitted faster than 64
        at the same accuracy on the benchmark series.
    learning_rate : float, default=5e-3
        Adam's step size; higher than Adam's usual 1e-3, as in the autoencoder: with gradient
        clipping it stays stable and reaches a lower error in the same epochs.
    max_grad_norm : float or None, default=1.0
        Gradient clipping threshold (None disables it).
    validation_fraction : float, default=0.1
        Share of training windows held out for early stopping (0 disables the split).
    patience : int or None, default=5
        Epochs without validation improvement before stopping; the best weights are restored.
        Half the autoencoder's 10, in proportion to the fewer epochs.
    max_train_windows : int, default=50000
        At most this many training windows, evenly spaced over the training series: bounds
        training memory and epoch time (50,000 windows of 64 univariate steps hold 12.8 MB).
    scaling : {"standard", "minmax", None}, default="standard"
        Per-channel scaling fitted on the training series; errors are measured on the scaled
        data, so every channel weighs alike in the score.
    contamination : float in (0, 0.5], default=0.1
        Expected share of anomalous steps in the training series (PyOD's meaning and default);
        used only with ``threshold="contamination"``.
    threshold : {"pot", "contamination"} or float in (0, 1], default="pot"
        How ``threshold_`` is set from ``decision_scores_``: ``"pot"``, peaks over threshold
        (:func:`pot_threshold` with ``pot_level`` and ``pot_risk``); ``"contamination"``, their
        ``1 - contamination`` quantile (PyOD's rule); or a float ``q``, their ``q`` quantile.
        POT flags what is extreme for the training scores' tail, so a clean series is barely
        flagged, where PyOD's rule flags a tenth of any training series (docs/anomaly.md
        compares them on the benchmark series).
    pot_level : float, default=0.98
        Quantile of the training scores above which the tail is modelled
        (``threshold="pot"``); 0.98 as in Siffer et al. (KDD 2017).
    pot_risk : float, default=1e-3
        Probability that a normal step's score exceeds the threshold (``threshold="pot"``):
        about one false alarm per thousand normal steps.
    random_state : int, RandomState or None, default=None
        Seed; the same seed, data and machine give bit-identical fits on CPU.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" uses CUDA when present.
    verbose : bool, default=True
        Show a progress bar (losses and time left) on standard error once the fit has run
        two seconds; quick fits stay silent. ``False`` for none.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of training and inference, as in :class:`ursa.SequenceAutoencoder`;
        bfloat16 is slower than float32 at this estimator's default sizes (docs/autoencoder.md).
    n_threads : int or None, default=None
        torch intra-op threads during fit and scoring. None: a fit runs on one thread
        unless a training step's recurrent products are large (LSTMs from about a million
        multiply-adds per step, other cells from about five million; then torch's setting, one
        per physical core), which keeps small fits from burning CPU and from fighting other
        processes on a busy machine; scoring keeps torch's setting (docs/autoencoder.md).
    callbacks : list of ursa.training.Callback, optional
        Extra training callbacks (not saved with the model).
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints, written every ``checkpoint_every`` epochs;
        ``fit(X, resume=True)`` continues an interrupted fit from it and ends, on CPU, with the
        weights of an uninterrupted fit.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    privacy : dict or None, default=None
        Train with differential privacy (DP-SGD): ``{"epsilon": 3.0, "delta": 1e-5,
        "max_grad_norm": 1.0}`` guarantees (epsilon, delta)-DP for each training window
        (``delta`` defaults to 1 / n_windows). A step lies in up to ``window / stride`` windows,
        so its own guarantee is that of a group of that size. The training series are then not
        scored: ``decision_scores_`` and ``labels_`` are absent and ``threshold_`` is None until
        :meth:`calibrate`. Needs a numeric ``window``, ``channels="all"``, ``scaling=None`` and
        the ``privacy`` extra (opacus); see docs/privacy.md.

    Attributes
    ----------
    window_ : int
        The window used: ``window``, or the period found with ``window="auto"``.
    channels_ : ndarray of int
        The channels modelled and scored (see ``channels``).
    n_features_in_ : int
        Features per time step seen at fit.
    feature_names_in_ : ndarray of str
        The features' names, when known: ``ursa fit`` sets it from the data's columns, and
        you may set it; saved with the model. Absent otherwise.
    vocabulary_ : ursa.data.Vocabulary
        After a fit on token sequences, the vocabulary fitted on them, which encodes every
        later input (saved with the model). Absent after a fit on numbers.
    audio_frontend_ : dict
        After a fit on :func:`ursa.data.read_audio` features, the front-end's settings
        (saved with the model): ``read_audio(files, frontend=model.audio_frontend_)`` gives
        new recordings the same features. Absent otherwise.
    scaler_ : ursa.data.SequenceScaler
        Per-channel scaling fitted on the training series.
    network_ : ursa.networks.SequenceAutoencoderNet
        The trained autoencoder.
    decision_scores_ : ndarray of shape (n_training_steps,)
        Per-step scores of the training series, concatenated in order.
    threshold_ : float or None
        Scores above it are flagged (None after a private fit, until :meth:`calibrate`).
    labels_ : ndarray of shape (n_training_steps,)
        0/1 flags of the training steps.
    history_, loss_curve_, validation_scores_, n_iter_
        Training diagnostics.
    privacy_spent_ : dict
        With ``privacy``: the epsilon the fit spent (at most the budget), delta, the noise
        multiplier, sample rate and steps (saved with the model).

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

    # Files written before ``channels`` existed modelled every channel.
    _OLDER_FILES_PARAMS = {"channels": "all", "encoder": "rnn", "session_score": "max"}

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        **PRIVACY_CONSTRAINTS,
        "window": [Interval(int, 2), Options(("auto",)), None],
        "channels": [Options(CHANNEL_CHOICES)],
        "stride": [Interval(int, 1)],
        "score_stride": [Interval(int, 1)],
        "score_reduction": [Options(REDUCTIONS)],
        "session_score": [Options(("max", "mean"))],
        "max_train_windows": [Interval(int, 1)],
        "max_steps": [Interval(int, 1), None],
        **OUTLIER_CONSTRAINTS,
        "callbacks": [Instance((list, tuple)), None],
    }

    def __init__(
        self, window=64, stride=1, score_stride=4, score_reduction="window", session_score="max",
        channels="continuous",
        cell="gru", hidden_size=32, num_layers=1, bidirectional=False, dropout=0.0,
        encoder="conv-rnn", latent_dim=16, epochs=20, max_steps=None, batch_size=128,
        learning_rate=5e-3, max_grad_norm=1.0, validation_fraction=0.1, patience=5,
        max_train_windows=50000,
        scaling="standard", contamination=0.1, threshold="pot", pot_level=0.98, pot_risk=1e-3,
        random_state=None, device="auto", verbose=True, n_threads=None, precision="float32",
        callbacks=None, checkpoint_dir=None, checkpoint_every=1, privacy=None,
    ):
        self._init_params(locals())

    # ------------------------------------------------------------------ fitting
    def _check_score_stride(self, window: int | None) -> None:
        if window is None:  # sessions: no windows
            return
        stride = self.score_stride
        if (isinstance(stride, bool) or not isinstance(stride, Integral)
                or not 1 <= stride <= window):
            raise ValueError(
                f"score_stride must be an integer in [1, window={window}], got {stride!r}: "
                "a larger stride would leave steps that no window scores."
            )

    def _resolve_window(self, series: list[np.ndarray]) -> int:
        """``window``, or with "auto" the dominant period of the longest training series
        (:func:`ursa.data.dominant_period`) within [AUTO_WINDOW_MIN, AUTO_WINDOW_MAX], or
        AUTO_WINDOW_FALLBACK for a series without one; at most the shortest series' length."""
        if self.window != "auto":
            return int(self.window)
        period = dominant_period(max(series, key=len), max_period=AUTO_WINDOW_MAX)
        window = AUTO_WINDOW_FALLBACK if period is None else int(
            np.clip(period, AUTO_WINDOW_MIN, AUTO_WINDOW_MAX))
        return max(2, min(window, min(len(s) for s in series)))

    def _training_windows(self, series, lengths=None) -> np.ndarray:
        """Scaled training windows (n, window, modelled channels), at most ``max_train_windows``,
        evenly spaced. ``series`` is a list, or an iterable read once in the order of
        ``lengths`` (a stream)."""
        if lengths is None:
            lengths = [len(s) for s in series]
        per_series = [window_starts(int(n), self.window_, self.stride) for n in lengths]
        total = sum(len(p) for p in per_series)
        keep = np.arange(total)
        if total > self.max_train_windows:
            keep = np.unique(np.linspace(0, total - 1, self.max_train_windows).astype(np.int64))
        out = np.empty((len(keep), self.window_, len(self.channels_)), dtype=np.float32)
        offset, filled = 0, 0
        for s, starts in zip(series, per_series):
            mine = keep[(keep >= offset) & (keep < offset + len(starts))] - offset
            view = sliding_windows(s, self.window_, 1)
            out[filled : filled + len(mine)] = self._windows_at(view, starts[mine])
            filled += len(mine)
            offset += len(starts)
        scale_offset, scale = self._scaling()
        out -= scale_offset
        out /= scale
        return out

    def fit(self, X, y=None, *, resume=False):
        """Fit on one or several long series.

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features), a list of such arrays, an array of shape
            (n_series, T, n_features) (NaN-padded at the end for unequal lengths), or a
            :class:`ursa.data.ParquetDataset` (each sequence one series, streamed a block at a
            time; ``window`` must be a number, and ``threshold_`` is None until
            :meth:`calibrate`, since the training series are not scored)
            Training series, assumed mostly normal. Each needs at least ``window`` steps.
        y : ignored
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` (same data and parameters).

        Returns
        -------
        self
        """
        self._fit(X, resume)
        return self

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and flag its steps: ``fit(X).predict(X)``, without scoring ``X`` twice.

        Returns
        -------
        0/1 flags (PyOD; int64), one per step, laid out like :meth:`decision_function`'s
        scores (-1 on the padding of a 3-D array). Not scikit-learn's -1/1 per sample.
        """
        if isinstance(X, ParquetDataset):
            raise ValueError("fit_predict flags the training data, which a fit from a "
                             "ParquetDataset does not score: fit, calibrate(X) on normal data "
                             "that fits in memory, then predict.")
        if self.privacy is not None:
            raise ValueError("fit_predict flags the training data by a threshold set on it, "
                             "which a private fit does not do: fit, calibrate(X) on data you "
                             "may use, then predict.")
        layout, lengths = self._fit(X)
        if layout == "sessions":
            return self._flags(self.decision_scores_)
        ends = np.cumsum(lengths)[:-1]
        scores = restore_series_layout(np.split(self.decision_scores_, ends), layout, lengths)
        return self._flags(scores)

    def _fit(self, X, resume: bool = False):
        """Fit; return the layout and lengths of ``X`` (:func:`ursa.data.as_series`)."""
        if isinstance(X, ParquetDataset):
            return self._fit_stream(X, resume)
        self._validate_params()
        budget = self._privacy_budget()
        if budget is not None and (self.window == "auto" or self.channels != "all"):
            raise ValueError(
                "privacy needs window set to a number of steps and channels='all' (got window="
                f"{self.window!r}, channels={self.channels!r}): 'auto' and 'continuous' are "
                "chosen by reading the training data, outside the privacy budget.")
        if self.window is None:
            if budget is not None:
                raise ValueError("privacy needs window set to a number of steps: window=None "
                                 "trains a next-step model, whose start vector private "
                                 "training cannot yet take per-sequence gradients of.")
            return self._fit_sessions(X, resume, budget)
        if self.window != "auto":
            self._check_score_stride(self.window)
        min_length = 2 if self.window == "auto" else self.window
        if is_token_input(X):  # token streams: one channel of ids, every one modelled
            series, layout, lengths = self._token_series(X, min_length, reset=True)
        else:
            self.__dict__.pop("vocabulary_", None)
            series, layout, lengths = as_series(X, min_length=min_length)
        self.window_ = self._resolve_window(series)
        self._check_score_stride(self.window_)
        if not self._tokens:
            self._set_input_width(series[0].shape[1])
        self.channels_ = np.zeros(1, dtype=np.int64) if self._tokens else self._select_channels(
            np.logical_and.reduce([_binary(s) for s in series]))
        padded = np.zeros((len(series), int(lengths.max()), self.n_features_in_), dtype=np.float32)
        for i, s in enumerate(series):
            padded[i, : len(s)] = s
        self.scaler_ = SequenceScaler(None if self._tokens else self.scaling).fit(
            Sequences(padded, lengths))
        del padded
        self._train_on(self._window_sequences(self._training_windows(series)), resume, budget)
        self._set_decision_scores(None if budget is not None else
                                  np.concatenate([self._score_one(s)[0] for s in series]))
        return layout, lengths

    def _fit_stream(self, dataset: ParquetDataset, resume: bool):
        """Fit on the series of a :class:`ursa.data.ParquetDataset` (each sequence one series),
        holding one block of series at a time: a pass for the scaler, the series' lengths and
        which channels are binary, a pass to cut the training windows (at most
        ``max_train_windows``, chosen as from data in memory), then training on them. The
        training series are not scored (their scores would fill memory): ``threshold_`` is None
        until :meth:`calibrate`."""
        self._validate_params()
        if self.privacy is not None or self.window == "auto":
            raise ValueError(
                "a ParquetDataset streams its series once per pass, so the fit cannot read a "
                "whole series to choose window='auto', nor train privately; set window to a "
                "number of steps and privacy=None, or read the series into memory.")
        self._check_score_stride(self.window)
        self.window_ = int(self.window)
        binary = np.ones(dataset.n_features, dtype=bool)
        lengths = []

        def visit(block):
            seqs = block.sequences
            short = np.flatnonzero(seqs.lengths < self.window_)
            if len(short):
                raise ValueError(f"{dataset.path}: series {block.start + int(short[0])} has "
                                 f"{int(seqs.lengths[short[0]])} steps, fewer than window="
                                 f"{self.window_}. Use a smaller window or longer series.")
            valid = seqs.values[seqs.mask()]
            if np.isnan(valid).any():
                raise ValueError(f"{dataset.path}: a series of block {block.start} has a missing "
                                 "value (NaN); the detector needs complete series. Fill or drop "
                                 "the missing values first.")
            np.logical_and(binary, _binary(valid), out=binary)
            lengths.extend(seqs.lengths.tolist())

        # Every process reads every block: the training windows are cut from all the series.
        self._stream_data(dataset, visit=visit, shared=False)
        self.channels_ = self._select_channels(binary)
        series = (seqs.values[i, : seqs.lengths[i]] for block in dataset.blocks()
                  for seqs in [block.sequences] for i in range(seqs.n_sequences))
        self._train_on(self._window_sequences(self._training_windows(series, lengths)), resume)
        self._set_decision_scores(None)
        return None, np.asarray(lengths)

    def _fit_sessions(self, X, resume: bool, budget):
        """Fit with ``window=None``: every sequence of ``X`` is one sample, rebuilt whole."""
        seqs = self._validate_data(X, reset=True)
        self.window_ = None
        self.channels_ = np.arange(self.n_features_in_)
        self._train_on(self._fit_scaler(seqs), resume, budget)
        self._set_decision_scores(None if budget is not None else self._session_scores(seqs))
        return "sessions", seqs.lengths

    def _validate_data(self, X, *, reset: bool, name: str = "X") -> Sequences:
        """Sessions of tokens get one more step, id 0, after their last token: the model
        predicts where a session ends (:class:`ursa.networks.NextStepNet`)."""
        seqs = super()._validate_data(X, reset=reset, name=name)
        if not self._tokens or isinstance(X, Sequences):
            return seqs
        values = np.pad(seqs.values, ((0, 0), (0, 1), (0, 0)))  # id 0 after each end
        return Sequences(values, seqs.lengths + 1)

    def _session_steps(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Per-step scores of sessions, float32 (n, max_length) with NaN after each end, and
        the sessions' lengths; for tokens, the end's score is added to the last token's."""
        seqs, errors = self._errors(X)
        lengths = seqs.lengths.copy()
        if self._tokens:
            rows = np.arange(len(errors))
            errors[rows, lengths - 2] += errors[rows, lengths - 1]
            lengths -= 1
        errors[np.arange(errors.shape[1])[None, :] >= lengths[:, None]] = np.nan
        return errors, lengths

    def _session_scores(self, X) -> np.ndarray:
        """One score per session: the highest or the mean of its :meth:`step_scores`."""
        errors = self._session_steps(X)[0].astype(np.float64)
        return np.nanmax(errors, axis=1) if self.session_score == "max" else \
            np.nanmean(errors, axis=1)

    def _token_series(self, X, min_length: int, reset: bool = False):
        """Token streams (long series of tokens) as series of ids, (T_i, 1) each, with the
        layout and lengths of :func:`ursa.data.as_series` (a list)."""
        seqs = self._fit_vocabulary(X, "X") if reset else self.vocabulary_.encode(X)
        short = np.flatnonzero(seqs.lengths < min_length)
        if len(short):
            raise ValueError(f"X[{int(short[0])}] has {int(seqs.lengths[short[0]])} tokens, "
                             f"fewer than window={min_length}. Use a smaller window, or "
                             "window=None to score whole sessions.")
        series = [seqs.values[i, :n] for i, n in enumerate(seqs.lengths)]
        return series, "list", seqs.lengths

    def _window_sequences(self, windows: np.ndarray) -> Sequences:
        return Sequences(windows, np.full(len(windows), self.window_, dtype=np.int64))

    def _train_on(self, seqs: Sequences, resume: bool, budget=None) -> None:
        """Train the network on scaled sequences (privately within ``budget`` when given)."""
        device = self._device()
        with self._fit_context() as rng:
            network = self._build_network()
            callbacks = self._callbacks(seqs, resume=resume)
            config = replace(self._training_config(), max_steps=self.max_steps)
            history = train(network, self._loss, seqs, config, rng=rng, device=device,
                            callbacks=callbacks, privacy=budget)
        self.network_ = network
        self._set_history(history)
        self._set_privacy_spent(history.privacy_spent)

    # ------------------------------------------------------------------ scoring core
    def _window_errors(self, windows: np.ndarray, name: str = "X") -> np.ndarray:
        """Squared reconstruction errors (n, window, C) of raw windows (n, window, C), in float64:
        a value far outside the training range (1e20 after scaling, say) has a squared error
        beyond float32's range but a finite score."""
        offset, scale = self._scaling()
        with np.errstate(over="ignore"):  # an overflow is reported below, with its cause
            scaled = np.subtract(windows, offset, dtype=np.float32)
            scaled /= scale
        device = next(self.network_.parameters()).device
        values = torch.from_numpy(scaled).to(device)
        lengths = torch.full((len(scaled),), scaled.shape[1], dtype=torch.int64, device=device)
        reconstruction, _ = self.network_(values, lengths)
        if self._tokens:  # each step's negative log-likelihood, one channel
            return token_nll(reconstruction, values)[..., None].double().cpu().numpy()
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
        view = sliding_windows(series, self.window_, 1)
        with self._threads(), torch.inference_mode():
            self.network_.eval()
            for rows in batch_rows(len(starts), self.predict_batch_size):
                batch = starts[rows]
                yield batch, self._window_errors(self._windows_at(view, batch), name)

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
        starts, tail = score_starts(n, self.window_, self.score_stride)
        acc = _Accumulator(0, len(self.channels_) if per_channel else None, size=n)
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
                acc.add(batch[-1:], reduced[-1:], only_from=int(starts[-1]) + self.window_)
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
    def _require_windows(self, what: str) -> None:
        self._check_is_fitted()
        if self.window_ is None:
            raise ValueError(f"{what} reads windows of long series, but this detector was fitted "
                             "with window=None (whole sequences): use decision_function and "
                             "step_scores.")

    def _validated(self, X, what: str = "this"):
        self._require_windows(what)
        self._check_score_stride(self.window_)
        if self._tokens:
            return self._token_series(X, self.window_)
        return as_series(X, n_features=self.n_features_in_, min_length=self.window_)

    def decision_function(self, X):
        """Per-step anomaly scores (per-sequence with ``window=None``); higher = more abnormal
        (PyOD).

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features), a list of them, or an array of shape
            (n_series, T, n_features); with ``window=None``, sequences as for
            :class:`ursa.SequenceAutoencoder` (or token sequences)

        Returns
        -------
        float64 ndarray of shape (T,) for one series; a list of (T_i,) arrays for a list; an
        array of shape (n_series, T) with NaN after each series' end for a 3-D array. With
        ``window=None``, an array of shape (n_sequences,).
        """
        self._check_is_fitted()
        if self.window_ is None:
            return self._session_scores(X)
        series, layout, lengths = self._validated(X)
        return restore_series_layout([self._score_one(s)[0] for s in series], layout, lengths)

    def step_scores(self, X):
        """Per-step scores: with ``window=None``, each step's prediction error (for tokens, its
        negative log-likelihood), whose maximum (or mean, see ``session_score``) over a
        sequence is its :meth:`decision_function`; for long series, :meth:`decision_function`
        itself.

        Returns
        -------
        With ``window=None``: float32 array of shape (n_sequences, n_timesteps) with NaN after
        each end, or a list of (T_i,) arrays for a list (or token sequences; the last holds
        the score of the session's end too).
        """
        self._check_is_fitted()
        if self.window_ is not None:
            return self.decision_function(X)
        errors, lengths = self._session_steps(X)
        if isinstance(X, (list, tuple)):
            return [errors[i, :n].copy() for i, n in enumerate(lengths)]
        return errors

    def window_scores(self, X):
        """Per-window scores: the mean squared reconstruction error (scaled data) over each
        window's steps and channels.

        Returns
        -------
        (starts, scores) for one series, each of shape (n_windows,); a list of such pairs
        otherwise. Windows start every ``score_stride`` steps, plus one ending at the last step.
        """
        series, layout, _ = self._validated(X, "window_scores")
        out = []
        for s in series:
            _, _, scores, _ = self._score_one(s, windows=True)
            starts, tail = score_starts(len(s), self.window_, self.score_stride)
            out.append((starts if tail is None else np.r_[starts, tail], scores))
        return out[0] if layout == "single" else out

    def explain(self, X, method: str = "auto") -> SeriesExplanation:
        """Which channels and which steps drove the scores of one series.

        Parameters
        ----------
        X : array of shape (T,) or (T, n_features), or a list of one token stream
            One series (explain a slice of a very long series: ``step_shares`` holds
            ``n_windows * window`` values).
        method : {"auto", "error"}
            How to attribute: the score is a mean of squared reconstruction errors, and "error"
            (what "auto" means here) gives each step and channel its own terms exactly.

        Returns
        -------
        SeriesExplanation
        """
        if method not in ("auto", "error"):
            raise ValueError(f"method must be 'auto' or 'error' for a SequenceAnomalyDetector "
                             f"(its scores are sums of reconstruction errors), got {method!r}.")
        series, layout, _ = self._validated(X, "explain")
        if layout != "single" and not (self._tokens and len(series) == 1):
            raise ValueError(
                "explain takes one series, an array of shape (T,) or (T, n_features); got "
                f"{len(series)} series. Call explain on each of them."
            )
        s = series[0]
        scores, parts, wscores, steps = self._score_one(s, per_channel=True, windows=True)
        tiny = np.finfo(np.float64).tiny
        attributions = np.zeros((len(s), self.n_features_in_))  # unmodelled channels: 0
        attributions[:, self.channels_] = parts
        step_shares = steps / np.maximum(steps.sum(axis=1, keepdims=True), tiny)
        starts, tail = score_starts(len(s), self.window_, self.score_stride)
        return SeriesExplanation(
            attributions=attributions,
            scores=scores,
            method="error",
            target=None,
            channel_shares=attributions / np.maximum(scores, tiny)[:, None],
            window_starts=starts if tail is None else np.r_[starts, tail],
            window_scores=wscores.astype(np.float64),
            step_shares=step_shares.astype(np.float64),
        )

    def _select_channels(self, binary: np.ndarray) -> np.ndarray:
        """Indices of the channels the autoencoder models: all, or with "continuous" those
        whose training values are not all 0 or 1 (``binary``, per channel; all of them if every
        channel is binary)."""
        every = np.arange(self.n_features_in_)
        if self.channels == "all" or binary.all():
            return every
        return every[~binary]

    def _windows_at(self, view: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The raw windows (n, window, modelled channels) at ``starts`` of ``view``, a series'
        ``sliding_windows(series, window_, 1)`` (a strided view: no copy of the series)."""
        windows = view[starts]  # (n, window, C)
        if len(self.channels_) < self.n_features_in_:
            windows = windows[..., self.channels_]
        return np.ascontiguousarray(windows)

    def _scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """The scaler's (offset, scale) of the modelled channels."""
        if len(self.channels_) < self.n_features_in_:
            return self.scaler_.offset_[self.channels_], self.scaler_.scale_[self.channels_]
        return self.scaler_.offset_, self.scaler_.scale_

    def _build_network(self):
        config = self._recurrent_config(len(self.channels_))
        if self.window_ is None:
            return NextStepNet(config)
        return SequenceAutoencoderNet(config, self.latent_dim, kind=self.encoder)

    def _get_state(self):
        document, arrays = super()._get_state()
        document["window"] = None if self.window_ is None else int(self.window_)
        document["channels"] = [int(c) for c in self.channels_]
        return document, arrays

    def _set_state(self, document, arrays):
        # Files written before window="auto" existed hold the parameter's own value.
        window = document.get("window", self.window)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 2):
            raise ValueError(f"window must be None or an integer >= 2 in the file, got "
                             f"{window!r}")
        self.window_ = window
        # Files written before ``channels`` existed modelled every channel.
        channels = document.get("channels", list(range(int(document["n_features_in"]))))
        if not isinstance(channels, list) or not channels or not all(
                isinstance(c, int) and not isinstance(c, bool)
                and 0 <= c < int(document["n_features_in"]) for c in channels):
            raise ValueError(f"channels must be a list of channel indices in the file, got "
                             f"{channels!r}")
        self.channels_ = np.asarray(channels, dtype=np.int64)
        super()._set_state(document, arrays)

    def stream(self) -> StreamingScorer:
        """A :class:`StreamingScorer` that scores points as they arrive, without refitting."""
        self._require_windows("stream")
        self._check_score_stride(self.window_)
        if self._tokens:
            raise ValueError("stream scores numeric points; this detector was fitted on token "
                             "streams: score them with decision_function.")
        return StreamingScorer(self)


def _binary(values: np.ndarray) -> np.ndarray:
    """Per channel (last axis), whether every value of ``values`` is 0 or 1."""
    return ((values == 0) | (values == 1)).reshape(-1, values.shape[-1]).all(axis=0)
