"""SequenceAutoencoder: fixed-size embeddings, reconstruction and reconstruction error."""

from __future__ import annotations

import copy
import threading
import weakref

import numpy as np
import torch
from sklearn.base import TransformerMixin

from .._params import Instance, check_count
from ..data import ParquetDataset, map_rows, restore_layout
from ..networks import (
    SequenceAutoencoderNet,
    categorical,
    masked_mse,
    step_errors,
    step_mask,
)
from ..persistence import register
from ..training import TrainingDiverged, train
from ._explain import ExplainMixin
from .base import COMMON_CONSTRAINTS, PRIVACY_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["SequenceAutoencoder"]

# Copies of fitted networks with the scaler folded in (see _unscaled_network), keyed by the
# fitted network: inference never writes to the estimator (scikit-learn's contract), and a copy
# goes when its network does.
_UNSCALED = weakref.WeakKeyDictionary()
_UNSCALED_LOCK = threading.Lock()


class ReconstructionNetwork:
    """The recurrent autoencoder and its masked reconstruction loss, shared by the estimators that
    train one (SequenceAutoencoder, SequenceAnomalyDetector)."""

    def _build_network(self) -> SequenceAutoencoderNet:
        return SequenceAutoencoderNet(self._recurrent_config(), self.latent_dim,
                                      kind=self.encoder)

    @staticmethod
    def _loss(network, values, lengths):
        reconstruction, _ = network(values, lengths)
        return masked_mse(reconstruction, values, lengths)

    def _unscaled_network(self):
        """A copy of ``network_`` that reads and writes the original scale.

        The scaler is folded into the network's first layer and its readout, so that
        ``transform`` and ``reconstruct`` skip two full passes over the data. Outputs match the
        scaled path to float rounding.
        """
        with _UNSCALED_LOCK:
            cached = _UNSCALED.get(self.network_)
        if cached is not None and cached[0] is self.scaler_:
            return cached[1]
        network = copy.deepcopy(self.network_)
        device = next(network.parameters()).device
        offset = torch.from_numpy(self.scaler_.offset_).to(device)
        scale = torch.from_numpy(self.scaler_.scale_).to(device)
        network.fold_scaling(offset, scale)
        network.eval()
        with _UNSCALED_LOCK:
            _UNSCALED[self.network_] = (self.scaler_, network)
        return network

    def _errors(self, X, per_step: bool = True):
        """Squared error in the scaled space (for tokens, each step's negative log-likelihood),
        batch by batch (no scaled copy of X).

        With the scaler folded into the network, (reconstruction - x) / scale is the error of the
        scaled data, so the input is read as given. ``per_step=False`` reduces each batch to one
        mean per sequence at once, so that no (n_sequences, n_timesteps) array is ever built.
        """
        seqs = self._validate_data(X, reset=False)
        network = self._unscaled_network()
        device = next(network.parameters()).device
        scale = torch.from_numpy(self.scaler_.scale_).to(device)

        missing = seqs.missing

        def errors(v, n):
            steps = step_errors(network(v, n)[0] / scale, v / scale, n)  # (batch, time)
            if per_step:
                return (steps,)
            observed = n
            if missing:  # steps with every feature missing do not count
                observed = (~torch.isnan(v).all(-1)).mul(step_mask(n, v.size(1))).sum(1)
            return (steps.sum(dim=1, dtype=torch.float64) / observed.clamp_min(1),)

        (out,) = self._map_batches(seqs, errors, per_step=(per_step,), network=network)
        return seqs, out  # (n, max_length) zero on padding, or (n,)


@register
class SequenceAutoencoder(TransformerMixin, ReconstructionNetwork, ExplainMixin,
                          BaseSequenceEstimator):
    """Recurrent sequence autoencoder.

    The encoder (a stack of ``cell`` layers) reads each sequence up to its true end; its last state is
    projected to a ``latent_dim`` embedding. The decoder receives the embedding at every step (and as
    its initial state) and rebuilds the sequence. The loss is the mean squared error over valid steps
    of the scaled data.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}, default="gru"
        Recurrent cell. ``"rnn"`` is Elman's network, h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h);
        the GRU is the ordinary choice for a small autoencoder, not a tuned one.
    hidden_size : int, default=64
        Units per recurrent layer; an ordinary starting point, not a tuned value.
    num_layers : int, default=1
        Stacked recurrent layers in encoder and decoder.
    bidirectional : bool, default=False
        Bidirectional encoder; the backward direction starts at each sequence's true end.
    dropout : float, default=0.0
        Dropout between stacked layers.
    encoder : {"rnn", "conv-rnn", "rnn-attention", "conv-rnn-attention"}, default="rnn"
        What reads a sequence into its code. ``"conv-"`` puts two strided convolutions (width
        5, stride 2 each) before the recurrence, which then reads a quarter of the steps (the
        decoder, still recurrent, emits four steps per recurrent step); ``"-attention"``
        pools the recurrent outputs with learned attention weights (``explain(X,
        method="attention")`` returns them).
        The plain recurrence stays the default: the hybrids were measured for clustering
        and detection (docs/clustering.md, docs/anomaly.md), not for reconstruction.
    latent_dim : int, default=16
        Size of the embedding returned by ``transform``; an ordinary starting point.
    epochs : int, default=100
        Maximum passes over the training data; early stopping may end training sooner.
    batch_size : int, default=32
        Sequences per optimiser step; an ordinary starting point.
    learning_rate : float, default=5e-3
        Adam's step size. Higher than Adam's usual 1e-3: with gradient clipping it stays stable
        and reaches a much lower reconstruction error in the same number of epochs.
    max_grad_norm : float or None, default=1.0
        Gradient clipping threshold, which makes the higher learning rate safe (None disables it).
    validation_fraction : float, default=0.1
        Share of sequences held out for early stopping (0 disables the split): an autoencoder
        gains nothing from training past the point where held-out reconstruction stops improving.
    patience : int or None, default=10
        Epochs without validation improvement before stopping; the best weights are restored.
    scaling : {"standard", "minmax", None}, default="standard"
        Per-feature scaling fitted on the training data and inverted on output.
    random_state : int, RandomState or None, default=None
        Seed; the same seed, data and machine give bit-identical fits on CPU.
    device : {"auto", "cpu", "cuda"}, default="auto"
        "auto" uses CUDA when present.
    verbose : bool, default=True
        Show a progress bar (losses and time left) on standard error once the fit has run
        two seconds; quick fits stay silent. ``False`` for none.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of training and inference. ``"bfloat16"`` runs the forward passes under
        bfloat16 autocast (weights, gradients and optimiser state stay float32), on hardware
        with native bfloat16 only (refused elsewhere); it pays for wide LSTMs and costs time on
        small shapes (docs/autoencoder.md). float32 by default, the precision every benchmark
        figure was measured in.
    n_threads : int or None, default=None
        torch intra-op threads during fit and inference. None: a fit runs on one thread
        unless a training step's recurrent products are large (LSTMs from about a million
        multiply-adds per step, other cells from about five million; then torch's setting, one
        per physical core), which keeps small fits from burning CPU and from fighting other
        processes on a busy machine; inference keeps torch's setting (docs/autoencoder.md).
    callbacks : list of ursa.training.Callback, optional
        Extra training callbacks (not saved with the model).
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints (weights, optimiser and random-generator states, history),
        written atomically every ``checkpoint_every`` epochs and after the last one. A fit killed
        or interrupted (Ctrl-C) is continued with ``fit(X, resume=True)`` and ends with the same
        weights as an uninterrupted fit. On a GPU with ``num_layers > 1`` and ``dropout > 0`` the
        resumed weights differ from an uninterrupted fit's: cuDNN draws that dropout from a
        generator of its own, which no checkpoint can hold.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    privacy : dict or None, default=None
        Train with differential privacy (DP-SGD): ``{"epsilon": 3.0, "delta": 1e-5,
        "max_grad_norm": 1.0}`` guarantees (epsilon, delta)-DP for each training sequence
        (``delta`` defaults to 1 / n_sequences, ``max_grad_norm`` to 1). Needs ``scaling=None``
        (a fitted scaler would publish the data's statistics) and the ``privacy`` extra
        (opacus). All sequences train (no validation split); see docs/privacy.md.

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
    scaler_ : ursa.data.SequenceScaler
    network_ : ursa.networks.SequenceAutoencoderNet
    history_ : list of dict
        Per epoch: ``train_loss``, ``val_loss`` (when validating) and ``seconds``.
    loss_curve_, validation_scores_, n_iter_
        scikit-learn style views of ``history_``.
    privacy_spent_ : dict
        With ``privacy``: the epsilon the fit spent (at most the budget), delta, the noise
        multiplier, sample rate and steps (saved with the model).

    Examples
    --------
    >>> import numpy as np
    >>> from ursa import SequenceAutoencoder
    >>> t = np.linspace(0, 6, 30)
    >>> X = np.stack([np.sin(t + p) for p in np.linspace(0, 3, 40)])  # (40, 30): univariate
    >>> ae = SequenceAutoencoder(latent_dim=4, hidden_size=16, epochs=2, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (40, 4)
    >>> ae.reconstruct(X).shape
    (40, 30)
    """

    # NaN inside a sequence is a missing value (BaseSequenceEstimator._missing_values).
    _missing_values = True

    _parameter_constraints = {**COMMON_CONSTRAINTS, **PRIVACY_CONSTRAINTS,
                              "callbacks": [Instance((list, tuple)), None]}

    def __sklearn_tags__(self):
        # A transformer (TransformerMixin) whose outputs are float32, the precision the network
        # computes in, whatever the input's dtype.
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __init__(
        self, cell="gru", hidden_size=64, num_layers=1, bidirectional=False, dropout=0.0,
        encoder="rnn", latent_dim=16, epochs=100, batch_size=32, learning_rate=5e-3,
        max_grad_norm=1.0, validation_fraction=0.1, patience=10, scaling="standard",
        random_state=None, device="auto", verbose=True, n_threads=None, precision="float32",
        callbacks=None, checkpoint_dir=None, checkpoint_every=1, privacy=None,
    ):
        self._init_params(locals())

    def fit(self, X, y=None, *, resume=False):
        """Fit the autoencoder on sequences ``X``.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features]); or token sequences (lists of strings, or
            :class:`ursa.data.TokenSequences`), read through ``vocabulary_``
        y : ignored
        resume : bool, default=False
            Continue from the checkpoint in ``checkpoint_dir`` if there is one (same data and
            parameters required; ``epochs`` may be raised to train longer).

        Returns
        -------
        self
        """
        self._validate_params()
        if isinstance(X, ParquetDataset):  # streamed: the scaler's pass, then the epochs'
            seqs = scaled = self._stream_data(X)
        else:
            seqs = self._validate_data(X, reset=True)
            scaled = self._fit_scaler(seqs)
        device = self._device()
        with self._fit_context() as rng:
            network = self._build_network()
            callbacks = self._callbacks(seqs, resume=resume)
            try:
                history = train(network, self._loss, scaled, self._training_config(),
                                rng=rng, device=device, callbacks=callbacks,
                                privacy=self._privacy_budget())
            except TrainingDiverged as exc:  # keep the last good weights, usable and inspectable
                self.network_ = network
                self._set_history(exc.history)
                raise
        self.network_ = network
        self._set_history(history)
        self._set_privacy_spent(history.privacy_spent)
        return self

    def transform(self, X) -> np.ndarray:
        """Embed each sequence.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features])

        Returns
        -------
        ndarray of shape (n_sequences, latent_dim), float32
            The embeddings, in the precision the network computes in (float32 whatever the
            dtype of ``X``).
        """
        seqs = self._validate_data(X, reset=False)
        network = self._unscaled_network()
        (codes,) = self._map_batches(
            seqs, lambda v, n: (network.encoder(v, n),), per_step=(False,), network=network
        )
        return codes

    def reconstruct(self, X):
        """Rebuild each sequence through its embedding.

        Returns
        -------
        float32 array laid out like ``X`` (same lengths; NaN after each end in a padded array),
        or a list of float32 arrays for a list, in the original scale. For token sequences, a
        list of token lists: the most likely token at each step.
        """
        seqs = self._validate_data(X, reset=False)
        network = self._unscaled_network()
        if self._tokens:  # the most likely token at each step
            (ids,) = self._map_batches(
                seqs, lambda v, n: (network(v, n)[0].argmax(-1),), per_step=(True,),
                network=network)
            return self.vocabulary_.decode(ids, seqs.lengths)
        (values,) = self._map_batches(
            seqs, lambda v, n: (network(v, n)[0],), per_step=(True,), network=network
        )
        return restore_layout(X, values, seqs.lengths)

    def inverse_transform(self, Z, n_timesteps: int) -> np.ndarray:
        """Decode embeddings ``Z`` (n, latent_dim) into sequences of ``n_timesteps`` steps.

        Returns
        -------
        ndarray of shape (n, n_timesteps, n_features), float32, in the original scale; for
        token sequences, a list of ``n`` token lists (the most likely token at each step).
        """
        self._check_is_fitted()
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise ValueError(
                f"Z must have shape (n, {self.latent_dim}) (latent_dim of this model), got {Z.shape}."
            )
        if not np.isfinite(Z).all():
            raise ValueError("Z contains NaN or infinite values; pass finite embeddings.")
        n_timesteps = check_count(n_timesteps, "n_timesteps")
        network = self._unscaled_network()
        device = next(network.parameters()).device

        def decode(rows):
            out = network.decoder(torch.from_numpy(Z[rows]).to(device), n_timesteps)
            return ((out.argmax(-1) if self._tokens else out).cpu().numpy(),)

        with self._threads(), torch.inference_mode():
            (out,) = map_rows(len(Z), self.predict_batch_size, decode)
        if self._tokens:
            return self.vocabulary_.decode(out, np.full(len(Z), n_timesteps))
        return out

    def step_errors(self, X):
        """Per-step reconstruction error (squared error averaged over features, scaled data;
        for token sequences, the negative log-likelihood of each step's token).

        Returns
        -------
        float32 array of shape (n_sequences, n_timesteps) with NaN after each sequence's end,
        or a list of (T_i,) arrays when ``X`` is a list.
        """
        seqs, errors = self._errors(X)
        errors[np.isnan(seqs.values).all(-1)] = np.nan  # every feature missing: no error
        if isinstance(X, (list, tuple)):
            return [errors[i, :length].copy() for i, length in enumerate(seqs.lengths)]
        errors[~seqs.mask()] = np.nan
        return errors

    def decision_function(self, X) -> np.ndarray:
        """Per-sequence reconstruction error: the squared error of the scaled data averaged over
        each sequence's valid steps and its features (for token sequences, the mean negative
        log-likelihood of its tokens). Higher = more abnormal (PyOD).

        Returns
        -------
        ndarray of shape (n_sequences,), float64
        """
        return self._errors(X, per_step=False)[1]

    def score_samples(self, X) -> np.ndarray:
        """Negated :meth:`decision_function` (scikit-learn's sign: lower = more abnormal).

        Returns
        -------
        ndarray of shape (n_sequences,), float64
        """
        return -self.decision_function(X)

    # ----------------------------------------------------------------- explanations
    # explain(X, method) (ExplainMixin): what drives each sequence's reconstruction error
    # (decision_function). "auto" is "error", the exact split of that error into its terms.
    @staticmethod
    def _auto_method() -> str:
        return "error"

    @staticmethod
    def _error_terms(network, values, lengths) -> torch.Tensor:
        """Each step's and channel's term of the reconstruction error (scaled data), (B, T, C):
        its squared error over the step's observed channels and the sequence's observed steps
        (for tokens, its negative log-likelihood over the sequence's steps), so that a
        sequence's terms sum to its ``decision_function``."""
        reconstruction = network(values, lengths)[0]
        if categorical(reconstruction, values):  # tokens: each step's negative log-likelihood
            terms = step_errors(reconstruction, values, lengths) / lengths[:, None]
            return terms.unsqueeze(-1)
        missing = torch.isnan(values)
        observed = ~missing & (step_mask(lengths, values.size(1)) > 0).unsqueeze(-1)
        target = torch.where(missing, torch.zeros((), dtype=values.dtype,
                                                  device=values.device), values)
        squared = torch.where(observed, (reconstruction - target) ** 2, 0.0)
        per_step = observed.sum(-1, keepdim=True).to(values.dtype)  # observed channels
        steps = (per_step > 0).sum(1, keepdim=True).to(values.dtype)  # observed steps
        return squared / per_step.clamp_min(1.0) / steps.clamp_min(1.0)

    def _explained(self, network, values, lengths, target=None):
        return self._error_terms(network, values, lengths).sum((1, 2)), None

    @staticmethod
    def _attention(network, values, lengths):
        return network.encoder.attention_weights(values, lengths), network.encoder.stride

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error of ``X``: higher is better, as scikit-learn's
        model selection (``GridSearchCV``, ``cross_val_score``) expects.

        The error is measured on data scaled by each model's own scaler, so compare models
        fitted with the same ``scaling`` on the same training data.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features])
        y : ignored

        Returns
        -------
        float
            ``-mean(decision_function(X))``: each sequence counts once, whatever its length.
        """
        return -float(np.mean(self.decision_function(X)))
