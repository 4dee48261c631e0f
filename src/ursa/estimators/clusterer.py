"""RecurrentClusterer: deep temporal clustering (IDEC / DTC style) on a recurrent autoencoder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin

from .._params import Instance, Interval, Options, check_count
from ..data import Sequences
from ..metrics import silhouette_score
from ..networks import ENCODERS, FRONT_STRIDE, encoder_parts, masked_mse
from ..networks.clustering import (
    POOL_FEATURES,
    SUMMARIES,
    ClusteringNet,
    lagged_differences,
    nt_xent,
    pooled_width,
    random_crops,
)
from ..persistence import register
from ..training import LossStep, TrainingConfig, fit_epochs, private_updates, run, train
from ._clustering_stage import (
    _observed,
    _pool_sequences,
    _smoothness,
    _TargetRefresh,
    initial_centers,
    private_centers,
)
from ._explain import ExplainMixin
from .base import COMMON_CONSTRAINTS, PRIVACY_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["RecurrentClusterer"]

# pool="auto" averages windows so that the recurrence reads about this many steps of the median
# training sequence (see ClusteringNet).
AUTO_POOL_STEPS = 32
# encoder="auto": the encoder of univariate data whose median length is at least the shortest
# measured (24 steps, on 62 UCR sets); other data keeps the plain recurrence (see
# RecurrentClusterer's encoder).
AUTO_ENCODER_UNIVARIATE, AUTO_ENCODER_MIN_LENGTH = "conv-rnn-attention", 24
# The contrastive term's crops keep at least this share of their sequence; NT-Xent's temperature.
CROP_MIN_FRACTION = 0.5
TEMPERATURE = 0.5
# differences="auto" feeds the changes to the encoder when the training sequences' lag-1
# autocorrelation (_smoothness) is at least this (see RecurrentClusterer's differences).
AUTO_DIFFERENCES_SMOOTHNESS = 0.7
# The clustering stage starts a fresh optimiser on pretrained weights; its learning rate rises to
# learning_rate over this many epochs. Without it, the first full-size Adam steps can move most
# codes to another centre in one epoch and leave a cluster (nearly) empty (docs/clustering.md).
CLUSTERING_WARMUP_EPOCHS = 5
# Steps of a private fit's k-means (each a noisy release of sums and counts): the whole set's
# mean, then Lloyd steps. Each costs privacy: few, as measured (docs/privacy.md).
PRIVATE_KMEANS_STEPS = 5
# n_init > 1 picks the restart by the silhouette of its codes, on at most this many of them
# (silhouette costs time quadratic in the number of codes).
SILHOUETTE_SAMPLE = 2000


@register
class RecurrentClusterer(ClusterMixin, TransformerMixin, ExplainMixin, BaseSequenceEstimator):
    """Deep temporal clustering with a recurrent autoencoder.

    Three stages, as in IDEC (Guo et al. 2017) and DTC (Madiraju et al. 2018):

    1. pretrain a recurrent autoencoder (bidirectional ``cell`` encoder, for univariate data behind
       a convolutional front-end and with attention pooling; recurrent decoder) on the scaled,
       time-pooled sequences (reconstruction and a contrastive loss);
    2. initialise ``n_clusters`` centres in its latent space with k-means++ (scikit-learn ``KMeans``)
       or with the ``clusterer`` you pass;
    3. optimise reconstruction + ``gamma`` * KL(p || q) jointly, where q are Student-t soft
       assignments of each code to the centres and p the sharpened target (q^2 / cluster frequency,
       renormalised), refreshed every ``update_interval`` epochs; training stops when fewer than a
       ``tol`` fraction of the labels change between two refreshes. A stage that empties a
       cluster has failed: the fit returns to the weights and centres of step 2.

    The defaults were chosen on four UCR/UEA sets and checked on 62 UCR sets;
    docs/clustering.md gives the evidence, what was rejected, and the latest scores.

    NaN inside a sequence is a missing value: left out of the scaling statistics, the pooled
    windows and the reconstruction loss, and read as the training mean by the encoder.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters, as in scikit-learn's ``KMeans``. At most the number of sequences.
    cell : {"rnn", "gru", "lstm"}, default="gru"
        Recurrent cell of encoder and decoder. LSTM clustered worse on two of the four benchmark
        sets and no better on the others.
    hidden_size : int, default=32
        Units per recurrent layer (and direction). Wider layers did not cluster better; narrower
        ones lost quality on multivariate data.
    num_layers : int, default=1
        Stacked recurrent layers. A second layer doubles the fit time without a clear gain.
    bidirectional : bool, default=True
        Bidirectional encoder: each code has read the sequence from both ends.
    dropout : float, default=0.0
        Dropout between stacked layers (no effect with one layer).
    encoder : {"auto", "rnn", "conv-rnn", "rnn-attention", "conv-rnn-attention"}, default="auto"
        What reads a sequence into its code. ``"conv-"`` puts two strided convolutions (width
        5, stride 2 each) before the recurrence, which then reads a quarter of the steps (the
        decoder, still recurrent, emits four steps per recurrent step; ``pool="auto"`` pools
        four times less, so that the convolutions shorten the series the rest of the way);
        ``"-attention"`` pools the recurrent outputs with learned attention weights (``summary``
        is then not used). "auto" uses "conv-rnn-attention" for univariate data, where it
        clustered clearly better across 62 UCR sets, and "rnn" for multivariate
        data, where the hybrid lost clearly on BasicMotions and JapaneseVowels (the only
        multivariate sets measured), for sequences shorter than 24 steps (the shortest
        measured; median training length) and for a private fit (the setting docs/privacy.md
        measured); the encoder used is ``encoder_`` (docs/clustering.md).
    latent_dim : int, default=16
        Size of the latent space where the centres live (``transform`` output). Halving or
        doubling it made no measurable difference.
    pool : int or "auto", default="auto"
        Summarise windows of this many time steps before the recurrence. "auto" picks
        ceil(median length / 32), so long series are read as about 32 pooled steps, which trains
        faster and clusters better than reading every step.
    pool_features : {"mean", "mean_std"}, default="mean_std"
        What each window contributes: its mean per channel, or its mean and standard deviation
        (twice the channels), which keeps what averaging removes — oscillation faster than the
        window and the noise level — and clustered markedly better on noisy sensor data.
    differences : bool or "auto", default="auto"
        Also feed the encoder each channel's change over one pooling window, x_t - x_{t - pool}
        (over the first window, the change since the first step), divided by its root mean square
        on the training data and pooled like the series; the decoder still rebuilds the series
        only. The changes help smooth series and hurt noisy ones, so "auto" uses them when the
        scaled training sequences' lag-1 autocorrelation (``smoothness_``) is at least 0.7.
        Across 62 UCR sets (60 of them above 0.7) the changes raised the mean NMI clearly; the
        threshold itself was placed on four sets: set it explicitly when you know your data.
    summary : {"last", "mean", "both"}, default="mean"
        What the encoder projects to the code: the last recurrent state, the mean of the recurrent
        outputs over the valid steps, or both. The mean clustered best.
    epochs : int, default=100
        Maximum pretraining epochs.
    max_steps : int or None, default=300
        Cap on pretraining optimiser steps: large data sets train for fewer than ``epochs`` epochs
        (ceil(max_steps / batches per epoch)). The contrastive term needs on the order of a hundred
        steps and gains little after a few hundred; None trains for ``epochs`` whatever the size.
    clustering_epochs : int, default=20
        Maximum epochs of the joint reconstruction + clustering stage; with the default ``gamma``
        the labels settle within this budget.
    n_init : int, default=1
        Number of independent fits (fresh weights, pretraining, centres and clustering stage);
        the one whose labels have the highest silhouette on its own latent codes is kept (an
        internal criterion: the true labels are never used). Restart 0 is the ``n_init=1`` fit
        itself. The silhouette follows the true quality only loosely, so extra restarts gain
        little for their cost.
    batch_size : int, default=128
        Large batches give the contrastive term more negatives and cost little more per step.
    learning_rate : float, default=5e-3
        Adam's step size, higher than the usual 1e-3 and kept stable by ``max_grad_norm``. In the
        clustering stage it is reached over the first 5 epochs (a linear warm-up, which keeps the
        fresh optimiser from knocking codes away from their centres).
    max_grad_norm : float or None, default=1.0
        Gradient clipping threshold, which makes the high learning rate safe (None disables it).
    validation_fraction : float, default=0.0
        Held-out share for early stopping during pretraining (with ``patience``); the clustering
        stage uses every sequence. Off by default: the contrastive loss on random crops is too
        noisy a stopping signal, and stopping early cost quality.
    patience : int or None, default=None
        Epochs without validation improvement before pretraining stops (only with
        ``validation_fraction > 0``); None trains the full budget.
    contrastive : float, default=0.3
        Weight of a contrastive term during pretraining: the codes of two random crops (each
        between half and all of a sequence) of the same sequence are pulled together and pushed
        away from the other sequences of the batch (SimCLR's NT-Xent). It makes codes depend on
        what a sequence is rather than where its features happen to fall in time. 0 disables it;
        0.3 scored best on average (on 62 UCR sets too, where 0 scored clearly worse), and 0 is the
        first value to try when the default clusters poorly (some data sets, spectra among them,
        cluster better without it).
    gamma : float, default=1.0
        Weight of the clustering loss against the reconstruction loss. Heavier than IDEC's 0.1 so
        that the labels settle within ``clustering_epochs``; 0 trains reconstruction only and
        leaves the centres where k-means put them.
    alpha : float, default=1.0
        Degrees of freedom of the Student-t kernel; 1, as in DEC and IDEC.
    update_interval : int, default=1
        Epochs between refreshes of the target distribution p; every epoch keeps the target close
        to the codes in a stage of only ``clustering_epochs`` epochs.
    tol : float, default=1e-3
        Stop the clustering stage when fewer than this fraction of labels change between
        refreshes (IDEC's 0.1 %).
    clusterer : scikit-learn clusterer or None, default=None
        Estimator fitted on the latent codes to initialise the centres (its ``cluster_centers_``,
        or the mean code of each of its ``labels_``); None uses ``KMeans(n_clusters, n_init=10)``.
        It must find exactly ``n_clusters`` clusters. Not saved with the model (the centres are).
    scaling : {"standard", "minmax", None}, default="standard"
        Per-feature scaling fitted on the training data before pooling.
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
        torch intra-op threads during fit and inference. None: a fit runs on one thread
        unless a training step's recurrent products are large (LSTMs from about a million
        multiply-adds per step, other cells from about five million; then torch's setting, one
        per physical core), which keeps small fits from burning CPU and from fighting other
        processes on a busy machine; inference keeps torch's setting (docs/autoencoder.md).
    callbacks : list of ursa.training.Callback, optional
        Extra callbacks, called in both training stages.
    checkpoint_dir : str, path or None, default=None
        Write checkpoints of both stages to ``checkpoint_dir/pretrain`` and
        ``checkpoint_dir/cluster`` (weights, optimiser, target distribution and random-generator
        states). ``fit(X, resume=True)`` continues an interrupted fit in either stage and ends
        with the uninterrupted fit's weights, bit for bit on CPU. On a GPU with
        ``num_layers > 1`` and ``dropout > 0`` the resumed weights differ: cuDNN draws that
        dropout from a generator of its own, which no checkpoint can hold.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    privacy : dict or None, default=None
        Fit with differential privacy: ``{"epsilon": 3.0, "delta": 1e-5, "max_grad_norm":
        1.0}`` guarantees (epsilon, delta)-DP for each training sequence (``delta`` defaults to
        1 / n_sequences). Pretraining takes DP-SGD steps (without the contrastive term, which
        compares the sequences of a batch with each other) and the centres come from a private
        k-means on the latent codes (a quarter of epsilon); the clustering stage is skipped
        (its noisy steps pulled every sequence into one cluster in trials, docs/privacy.md).
        Needs ``scaling=None``, a
        numeric ``pool``, ``differences=False``, ``n_init=1``, ``clusterer=None`` and the
        ``privacy`` extra (opacus). ``labels_`` is not saved with the model; see
        docs/privacy.md.

    Attributes
    ----------
    n_features_in_ : int
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
    labels_ : ndarray of shape (n_sequences,)
        Cluster of each training sequence (``predict`` on the training data).
    cluster_centers_ : ndarray of shape (n_clusters, latent_dim)
        Centres in the latent space.
    encoder_ : str
        The encoder used (``encoder``, with "auto" resolved).
    pool_size_ : int
        Pooling window used.
    differences_ : bool
        Whether the encoder reads the changes (``differences``, with "auto" resolved).
    smoothness_ : float
        Lag-1 autocorrelation of the scaled training sequences that ``differences="auto"``
        compares with 0.7 (see ``differences``); NaN in a file saved before it existed.
    restart_scores_ : ndarray of shape (n_init,)
        Silhouette of each restart's labels on its latent codes (-1 where it is undefined: a
        single cluster); NaN in a file saved before ``n_init`` existed, and after a private fit.
    privacy_spent_ : dict
        With ``privacy``: the epsilon the fit spent (at most the budget), delta, the noise
        multipliers, sample rate, steps and k-means releases (saved with the model).
    best_restart_ : int
        Index of the kept restart (the highest score).
    n_features_in_, scaler_, network_ (ursa.networks.ClusteringNet)
    history_ : list of dict
        Per epoch: ``stage`` ("pretrain" or "cluster"), ``train_loss``, ``val_loss`` (pretraining
        with a validation split), ``seconds``, and for the clustering stage ``label_change``.
    loss_curve_, validation_scores_, n_iter_

    Examples
    --------
    >>> import numpy as np
    >>> from ursa import RecurrentClusterer
    >>> t = np.arange(40)
    >>> X = np.stack([np.sin(f * t + p) for f in (0.2, 0.6) for p in np.linspace(0, 3, 10)])
    >>> model = RecurrentClusterer(n_clusters=2, hidden_size=8, epochs=3, clustering_epochs=2,
    ...                            random_state=0).fit(X)
    >>> model.labels_.shape, model.predict_proba(X).shape, model.transform(X).shape
    ((20,), (20, 2), (20, 16))
    """

    # Files saved before ``differences`` and ``encoder`` existed hold a network without them.
    _OLDER_FILES_PARAMS = {"differences": False, "encoder": "rnn"}

    # NaN inside a sequence is a missing value (BaseSequenceEstimator._missing_values).
    _missing_values = True

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        **PRIVACY_CONSTRAINTS,
        "n_clusters": [Interval(int, 1)],
        "pool": [Interval(int, 1), Options(("auto",))],
        "pool_features": [Options(POOL_FEATURES)],
        "differences": [Instance((bool,)), Options(("auto",))],
        "encoder": [Options(ENCODERS + ("auto",))],
        "clustering_epochs": [Interval(int, 0)],
        "n_init": [Interval(int, 1)],
        "max_steps": [Interval(int, 1), None],
        "summary": [Options(SUMMARIES)],
        "contrastive": [Interval(float, 0.0)],
        "gamma": [Interval(float, 0.0)],
        "alpha": [Interval(float, 0.0, open_low=True)],
        "update_interval": [Interval(int, 1)],
        "tol": [Interval(float, 0.0, 1.0)],
        "clusterer": [Instance((BaseEstimator,)), None],
        "callbacks": [Instance((list, tuple)), None],
        "checkpoint_every": [Interval(int, 1)],
    }

    def __sklearn_tags__(self):
        # A clusterer (ClusterMixin) and a transformer to the latent space (TransformerMixin)
        # whose outputs are float32, the precision the network computes in.
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __init__(
        self, n_clusters=8, cell="gru", hidden_size=32, num_layers=1, bidirectional=True,
        dropout=0.0, encoder="auto", latent_dim=16, pool="auto", pool_features="mean_std",
        differences="auto", summary="mean", epochs=100, max_steps=300, clustering_epochs=20,
        n_init=1, batch_size=128, learning_rate=5e-3, max_grad_norm=1.0, validation_fraction=0.0,
        patience=None, contrastive=0.3, gamma=1.0, alpha=1.0, update_interval=1, tol=1e-3,
        clusterer=None, scaling="standard", random_state=None, device="auto", verbose=True,
        n_threads=None, precision="float32", callbacks=None, checkpoint_dir=None,
        checkpoint_every=1, privacy=None,
    ):
        self._init_params(locals())

    # ----------------------------------------------------------------- network
    def _build_network(self) -> ClusteringNet:
        width = pooled_width(self.n_features_in_, self.pool_size_, self.pool_features)
        config = self._recurrent_config(width * (2 if self.differences_ else 1))
        return ClusteringNet(config, self.latent_dim, self.n_clusters, self.pool_size_, self.alpha,
                             self.summary, self.pool_features,
                             self.n_features_in_ if self.differences_ else 0, self.encoder_)

    def _difference_scale(self, seqs: Sequences) -> torch.Tensor | None:
        """Root mean square of each channel's change over one window on the (scaled) training
        sequences' valid steps; 1 for a channel that never changes. None without differences."""
        if not self.differences_:
            return None
        values, valid = _observed(seqs)  # valid: (B, T, 1), or per channel with missing values
        changes = lagged_differences(values, self.pool_size_)
        valid = valid * valid[:, (torch.arange(values.size(1)) - self.pool_size_).clamp_min(0)]
        rms = ((changes * valid) ** 2).sum((0, 1)).div(valid.sum((0, 1)).clamp_min(1.0)).sqrt()
        return torch.where(rms > 1e-12, rms, torch.ones_like(rms)).float()

    def _check_token_settings(self) -> None:
        """Token ids are neither averaged nor differenced: refuse settings that would."""
        wrong = {name: getattr(self, name) for name, ok in (
            ("pool", self.pool in ("auto", 1)), ("differences", self.differences is not True))
            if not ok}
        if wrong:
            raise ValueError(f"X holds token sequences, which are read one token at a time: "
                             f"pool must be 'auto' or 1 and differences 'auto' or False (got "
                             f"{wrong}).")

    def _choose_encoder(self, seqs: Sequences) -> str:
        if self.encoder != "auto":
            return self.encoder
        if self._tokens or self.n_features_in_ > 1 or self.privacy is not None \
                or np.median(seqs.lengths) < AUTO_ENCODER_MIN_LENGTH:
            return "rnn"
        return AUTO_ENCODER_UNIVARIATE

    def _choose_pool(self, seqs: Sequences) -> int:
        if self.pool != "auto":
            return int(self.pool)
        steps = AUTO_POOL_STEPS * (FRONT_STRIDE if encoder_parts(self.encoder_)[0] else 1)
        return max(1, int(np.ceil(np.median(seqs.lengths) / steps)))

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y=None, *, resume=False):
        """Cluster the sequences ``X``.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features]); or token sequences (lists of strings, or
            :class:`ursa.data.TokenSequences`), read through ``vocabulary_``
        y : ignored
        resume : bool, default=False
            Continue an interrupted fit from the checkpoints in ``checkpoint_dir``.

        Returns
        -------
        self
        """
        self._validate_params()
        seqs = self._validate_data(X, reset=True)
        if self.n_clusters > len(seqs):
            raise ValueError(f"n_clusters={self.n_clusters} is larger than the number of sequences "
                             f"in X ({len(seqs)}); pass at most {len(seqs)} clusters or more data.")
        budget = self._check_private_fit()
        scaled = self._fit_scaler(seqs)
        self.encoder_ = self._choose_encoder(seqs)
        if self._tokens:  # ids are read one by one: no pooling, no differences
            self._check_token_settings()
            self.pool_size_, self.smoothness_, self.differences_ = 1, float("nan"), False
        else:
            self.pool_size_ = self._choose_pool(scaled)
            # (A private fit reads nothing outside its budget: its differences are off.)
            self.smoothness_ = float("nan") if budget is not None else _smoothness(scaled)
            self.differences_ = (self.smoothness_ >= AUTO_DIFFERENCES_SMOOTHNESS
                                 if self.differences == "auto" else self.differences)
        difference_scale = self._difference_scale(scaled)
        pooled = _pool_sequences(scaled, self.pool_size_, self.pool_features, difference_scale)
        device = self._device()
        with self._fit_context() as rng:
            # Restart 0 draws from the fit's own generators (so n_init=1 is the single fit);
            # restart r > 0 from a child of them, seeded independently of what restart 0 drew.
            children = rng.spawn(self.n_init - 1)
            scores, best = [], None
            for restart in range(self.n_init):
                if restart:
                    rng = children[restart - 1]
                    torch.manual_seed(int(rng.integers(2**31 - 1)))
                network, history = self._fit_once(seqs, pooled, rng, device, resume, restart,
                                                  difference_scale, budget)
                codes, q = self._codes_and_soft(network, pooled)
                labels = q.argmax(1)
                scores.append(float("nan") if budget is not None
                              else self._internal_score(codes, labels))
                if best is None or scores[-1] > scores[best[0]]:  # (NaN: the only restart)
                    best = (restart, network, history, labels)
        restart, network, history, labels = best
        network.eval()
        self.network_ = network
        self._set_history(history)
        self.restart_scores_ = np.asarray(scores)
        self.best_restart_ = restart
        self.cluster_centers_ = network.centers.detach().cpu().numpy().copy()
        self.labels_ = labels
        private = self.__dict__.pop("_private", None)  # set by _fit_once for a private fit
        self._set_privacy_spent(None if private is None else private.spent())
        return self

    def _check_private_fit(self):
        """The privacy budget after checking that the settings keep to it (None: no privacy)."""
        budget = self._privacy_budget()
        if budget is None:
            return None
        wrong = {name: getattr(self, name) for name, ok in (
            ("pool", self.pool != "auto"), ("differences", self.differences is False),
            ("n_init", self.n_init == 1), ("clusterer", self.clusterer is None)) if not ok}
        if wrong:
            raise ValueError(
                f"privacy needs a numeric pool, differences=False, n_init=1 and clusterer=None "
                f"(got {wrong}): each of these reads the training data outside the privacy "
                "budget (the lengths, the smoothness, the restarts' silhouettes, a clusterer "
                "without noise).")
        return budget

    def _fit_once(self, seqs: Sequences, pooled: Sequences, rng, device, resume: bool,
                  restart: int, difference_scale: torch.Tensor | None = None, budget=None):
        """One restart: pretrain a fresh network, initialise the centres, cluster."""
        network = self._build_network().to(device)
        if difference_scale is not None:
            network.difference_scale.copy_(difference_scale)
        private = None
        if budget is not None:
            n, config = len(pooled), self._pretrain_config()
            private = self._private = private_updates(
                budget, [network], n, config.batch_size, epochs=fit_epochs(config, n),
                releases=PRIVATE_KMEANS_STEPS)
        # Each restart keeps its own pretraining checkpoint, so an interrupted n_init > 1 fit
        # resumes where it stopped.
        phase = "pretrain" if restart == 0 else f"pretrain-{restart}"
        callbacks = self._callbacks(seqs, resume=resume, phase=phase)
        history = train(network, self._pretrain_loss(private is None), pooled,
                        self._pretrain_config(), rng=rng, device=device, callbacks=callbacks,
                        privacy=private)
        for record in history:
            record["stage"] = "pretrain"
        codes = self._codes(network, pooled)
        if private is None:
            centers = initial_centers(codes, self.n_clusters, self.clusterer, rng)
        else:
            centers = private_centers(codes, self.n_clusters, float(self.latent_dim) ** 0.5,
                                      private, PRIVATE_KMEANS_STEPS, rng)
        with torch.no_grad():
            network.centers.copy_(torch.from_numpy(centers).to(device))
        if self.clustering_epochs > 0 and private is None:
            history += self._cluster(network, seqs, pooled, rng, device, resume, restart)
        return network, history

    @staticmethod
    def _internal_score(codes: np.ndarray, labels: np.ndarray) -> float:
        """Silhouette of the labels on the latent codes (on a fixed sample of
        SILHOUETTE_SAMPLE codes for large sets); -1, the worst value, when it is undefined
        (a single cluster)."""
        n_labels = len(np.unique(labels))
        if n_labels < 2 or n_labels >= len(labels):
            return -1.0
        sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
        return silhouette_score(codes, labels, sample_size=sample, random_state=0)

    def _pretrain_config(self) -> TrainingConfig:
        return replace(self._training_config(), max_steps=self.max_steps)

    def _pretrain_loss(self, contrastive: bool = True):
        """The pretraining loss; without ``contrastive`` (a private fit: the term compares the
        sequences of a batch with each other) reconstruction only."""
        weight = float(self.contrastive) if contrastive else 0.0

        def loss(module, values, lengths):
            autoencoder = module.autoencoder
            batch, n_steps = values.shape[:2]
            contrast = weight > 0 and batch > 1
            if contrast:
                # The sequences and two random crops of each go through the encoder as one batch
                # of 3B (each crop zero-padded back to the batch's length; the encoder masks it):
                # one recurrent pass instead of three.
                inputs, input_lengths = [values], [lengths]
                for _ in range(2):
                    crop, crop_lengths = random_crops(values, lengths, CROP_MIN_FRACTION)
                    inputs.append(torch.nn.functional.pad(crop, (0, 0, 0, n_steps - crop.size(1))))
                    input_lengths.append(crop_lengths)
                z, a, b = autoencoder.encoder(torch.cat(inputs), torch.cat(input_lengths)).split(batch)
            else:
                z = autoencoder.encoder(values, lengths)
            target = values[..., : module.target_width]  # the series, not their changes
            total = masked_mse(autoencoder.decoder(z, n_steps), target, lengths)
            if contrast:
                total = total + weight * nt_xent(a, b, TEMPERATURE)
            return total

        return loss

    def _codes(self, network, pooled: Sequences) -> np.ndarray:
        return self._codes_and_soft(network, pooled)[0]

    def _soft(self, network, pooled: Sequences) -> np.ndarray:
        return self._codes_and_soft(network, pooled)[1]

    def _codes_and_soft(self, network, pooled: Sequences) -> tuple[np.ndarray, np.ndarray]:
        """Latent codes and soft assignments q of already pooled sequences, in one pass (the
        decoder is not run)."""

        def codes_and_q(values, lengths):
            z = network.autoencoder.encoder(values, lengths)
            return z, network.assign(z)

        codes, q = self._map_batches(pooled, codes_and_q, per_step=(False, False), network=network)
        return codes.astype(np.float64), q

    def _cluster(self, network, seqs: Sequences, pooled: Sequences, rng, device, resume: bool,
                 restart: int) -> list[dict]:
        """The clustering stage: reconstruction + KL to the refreshed target distribution.

        Checkpointed like pretraining (``checkpoint_dir/cluster``, one folder per restart), with
        the target distribution among the saved state, so a fit killed here resumes exactly.
        """
        refresh = _TargetRefresh(self, network, pooled, device)
        gamma = float(self.gamma)

        def loss(module, values, lengths, index):
            reconstruction, _, q = module(values, lengths)
            p = refresh.target[torch.from_numpy(index).to(refresh.target.device)]
            kl = (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(1).mean()
            target = values[..., : module.target_width]
            return masked_mse(reconstruction, target, lengths) + gamma * kl

        config = replace(self._training_config(), epochs=self.clustering_epochs,
                         validation_fraction=0.0, patience=None,
                         warmup_epochs=CLUSTERING_WARMUP_EPOCHS)
        network.to(device)
        step = LossStep(network, loss, config, pass_index=True)
        phase = "cluster" if restart == 0 else f"cluster-{restart}"
        callbacks = [refresh, *self._callbacks(seqs, resume=resume, phase=phase,
                                               start=network.state_dict())]
        history = run(network, [step.phase(config.epochs)], pooled, batch_size=config.batch_size,
                      rng=rng, device=device, callbacks=callbacks, optimizer=step.optimizer,
                      stateful={"target": refresh}, config=config)
        for record in history:
            record["stage"] = "cluster"
        return history

    # ----------------------------------------------------------------- inference
    def transform(self, X) -> np.ndarray:
        """Latent code of each sequence, the space where the centres live.

        Returns
        -------
        ndarray of shape (n_sequences, latent_dim), float32
        """
        seqs = self._validate_data(X, reset=False)  # checks fitted first
        (codes,) = self._map_batches(  # batches are scaled as drawn: no scaled copy of X
            seqs, self._in_scaled_space(lambda v, n: (self.network_.encode(v, n),)),
            per_step=(False,))
        return codes

    def predict_proba(self, X) -> np.ndarray:
        """Soft assignments q (Student-t kernel) of each sequence to the centres.

        Returns
        -------
        ndarray of shape (n_sequences, n_clusters), float32
            Rows sum to 1.
        """
        seqs = self._validate_data(X, reset=False)
        net = self.network_
        (q,) = self._map_batches(
            seqs, self._in_scaled_space(lambda v, n: (net.assign(net.encode(v, n)),)),
            per_step=(False,))
        return q

    def predict(self, X) -> np.ndarray:
        """Cluster of each sequence: the nearest centre under the Student-t kernel.

        Returns
        -------
        ndarray of shape (n_sequences,), int64
        """
        return self.predict_proba(X).argmax(1)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit on ``X`` and return ``labels_``.

        Returns
        -------
        ndarray of shape (n_sequences,), int64
        """
        return self.fit(X).labels_

    def score(self, X, y=None) -> float:
        """Assignment confidence: the mean log of each sequence's largest soft assignment.

        Higher is better, as scikit-learn's model selection expects: 0 when every sequence sits
        on a centre, log(1 / n_clusters) when none is closer to one centre than to another. It
        measures how crisp the clusters are, not whether they are right, and fewer clusters are
        crisper (one cluster scores 0): compare models with the same ``n_clusters`` (choose
        ``n_clusters`` with a silhouette, or with labels where you have them).

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features])
        y : ignored

        Returns
        -------
        float
        """
        q = self.predict_proba(X).max(1).astype(np.float64)
        return float(np.log(np.maximum(q, np.finfo(np.float64).tiny)).mean())

    def prototypes(self, n_timesteps: int) -> np.ndarray:
        """Each cluster's prototype: its centre decoded into a sequence of ``n_timesteps``
        steps, in the original scale (each decoded pooled step repeated over the ``pool_size_``
        steps it summarises; with ``pool_features="mean_std"`` the window means).

        Returns
        -------
        ndarray of shape (n_clusters, n_timesteps, n_features), float32
        """
        self._check_is_fitted()
        n_timesteps = check_count(n_timesteps, "n_timesteps")
        network = self.network_
        pooled_steps = -(-n_timesteps // self.pool_size_)
        with self._threads(), torch.inference_mode():
            network.eval()
            decoded = network.autoencoder.decoder(network.centers, pooled_steps)
        means = decoded[..., : self.n_features_in_].float().cpu().numpy()
        steps = np.repeat(means, self.pool_size_, axis=1)[:, :n_timesteps]
        return (steps * self.scaler_.scale_ + self.scaler_.offset_).astype(np.float32)

    # ----------------------------------------------------------------- explanations
    # explain(X, method) (ExplainMixin): what drives each sequence's assignment, the log of its
    # soft assignment to its cluster. "auto" is integrated gradients, with an attention encoder
    # too: its weights passed the deletion check less often (docs/clustering.md).
    @staticmethod
    def _auto_method() -> str:
        return "integrated-gradients"

    @staticmethod
    def _explained(network, values, lengths, target=None):
        q = network.assign(network.encode(values, lengths))
        if target is None:
            target = q.argmax(1)
        return torch.log(q.gather(1, target[:, None]).squeeze(1).clamp_min(1e-12)), target

    def _attention(self, network, values, lengths):
        encoder = network.autoencoder.encoder
        return (encoder.attention_weights(*network.inputs(values, lengths)),
                self.pool_size_ * encoder.stride)

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> tuple[dict, dict]:
        document, arrays = super()._get_state()
        document["encoder"] = self.encoder_
        document["pool_size"] = int(self.pool_size_)
        document["differences"] = bool(self.differences_)
        document["smoothness"] = float(self.smoothness_)
        document["restart_scores"] = [float(v) for v in self.restart_scores_]
        document["best_restart"] = int(self.best_restart_)
        if getattr(self, "privacy_spent_", None) is None:  # a private fit's labels stay here
            arrays["labels"] = np.asarray(self.labels_, dtype=np.int64)
        return document, arrays

    def _set_state(self, document: dict, arrays: dict) -> None:
        # Files written before encoder="auto" existed hold the parameter's own value.
        encoder = document.get("encoder", self.encoder)
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS} in the file, got {encoder!r}")
        self.encoder_ = encoder
        pool = document["pool_size"]
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool_size must be an integer >= 1, got {pool!r}")
        self.pool_size_ = pool
        # Files written before differences="auto" existed hold the parameter's own (bool) value.
        used = document.get("differences", self.differences)
        if not isinstance(used, bool):
            raise ValueError(f"differences must be true or false in the file, got {used!r}")
        self.differences_ = used
        smoothness = document.get("smoothness", float("nan"))
        if isinstance(smoothness, bool) or not isinstance(smoothness, (int, float)):
            raise ValueError(f"smoothness must be a number, got {smoothness!r}")
        self.smoothness_ = float(smoothness)
        # Files written before n_init existed hold one fit: restart 0, score not recorded (NaN).
        scores = document.get("restart_scores", [float("nan")])
        if not isinstance(scores, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores):
            raise ValueError(f"restart_scores must be a list of numbers, got {scores!r}")
        self.restart_scores_ = np.asarray(scores, dtype=np.float64)
        best = document.get("best_restart", 0)
        if isinstance(best, bool) or not isinstance(best, int) or not 0 <= best < len(scores):
            raise ValueError(f"best_restart must be an index into restart_scores, got {best!r}")
        self.best_restart_ = best
        super()._set_state(document, {k: v for k, v in arrays.items() if k != "labels"})
        if "labels" in arrays:
            self.labels_ = np.array(arrays["labels"], dtype=np.int64)
        self.cluster_centers_ = self.network_.centers.detach().cpu().numpy().copy()
