"""What every ursa estimator shares: parameter checks, data validation, seeding, threads, device,
batched inference and persistence."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._params import Instance, Interval, Options, check_params, fit_seed
from ..data import (
    SCALINGS,
    ParquetDataset,
    Sequences,
    SequenceScaler,
    TokenSequences,
    Vocabulary,
    as_sequences,
    is_token_input,
    map_rows,
)
from ..networks import CELLS, ENCODERS, RecurrentConfig
from ..persistence import check_device_here, save_model
from ..training import (
    PRECISIONS,
    THREAD_LOCK,
    Checkpoint,
    ProgressBar,
    TrainingConfig,
    autocast,
    check_precision,
    distributed,
    intra_op_threads,
    privacy_budget,
)

__all__ = ["BaseSequenceEstimator", "COMMON_CONSTRAINTS", "PRIVACY_CONSTRAINTS"]

# n_threads=None fits on one intra-op thread unless the recurrent products of a training step are
# large enough to gain from torch's own setting (one thread per physical core): measured, a second
# thread sped up LSTMs from about a million multiply-adds per step (gates x hidden x (inputs +
# hidden) x batch) and every cell from about five million, was worth nothing below that, and on
# a busy machine threads that wait on each other burn CPU (docs/autoencoder.md). The rule reads
# only the parameters and the data's width, so a fit stays repeatable bit for bit.
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_PARALLEL_WORK = {"lstm": 1_000_000, "gru": 5_000_000, "rnn": 5_000_000}

# Parameters every recurrent estimator shares (DESIGN.md's common names).
COMMON_CONSTRAINTS = {
    "cell": [Options(CELLS)],
    "hidden_size": [Interval(int, 1)],
    "num_layers": [Interval(int, 1)],
    "bidirectional": [Instance((bool,))],
    "dropout": [Interval(float, 0.0, 0.99)],
    "encoder": [Options(ENCODERS)],
    "latent_dim": [Interval(int, 1)],
    "epochs": [Interval(int, 1)],
    "batch_size": [Interval(int, 1)],
    "learning_rate": [Interval(float, 0.0, open_low=True)],
    "max_grad_norm": [Interval(float, 0.0, open_low=True), None],
    "validation_fraction": [Interval(float, 0.0, 0.9)],
    "patience": [Interval(int, 1), None],
    "scaling": [Options(SCALINGS)],
    "random_state": [Interval(int, 0), Instance((np.random.RandomState,)), None],
    "device": [Options(("auto", "cpu", "cuda")), Instance((str, torch.device))],
    "verbose": [Instance((bool, Integral))],
    "n_threads": [Interval(int, 1), None],
    "precision": [Options(PRECISIONS)],
    "checkpoint_dir": [Instance((str, os.PathLike)), None],
    "checkpoint_every": [Interval(int, 1)],
}
# The estimators that train privately (a dict checked by ursa.training.privacy_budget).
PRIVACY_CONSTRAINTS = {"privacy": [Instance((dict,)), None]}

# Parameters that may change between an interrupted fit and its resumption: they do not change
# what is learned (or, for epochs, let a finished run be extended).
# How a fit runs, not what it computes (RecurrentGAN's step_threads gives the same fit either way);
# and the run-length limits, which may be raised.
_RESUMABLE_CHANGES = {"verbose", "n_threads", "step_threads", "callbacks", "checkpoint_dir",
                      "checkpoint_every", "epochs", "max_steps", "device"}


class BaseSequenceEstimator(BaseEstimator):
    """Base class: subclasses declare ``_parameter_constraints`` and implement ``_fit``."""

    _parameter_constraints: dict = COMMON_CONSTRAINTS
    # Parameters added since files of this format version were first written, with the value that
    # rebuilds the models in files that lack them (see _from_saved).
    _OLDER_FILES_PARAMS: dict = {}
    # Sequences per forward pass at inference: bounds memory whatever the input size.
    predict_batch_size = 1024
    # Whether NaN inside a sequence is read as a missing value (left out of the scaler's
    # statistics and the losses, read as the training mean by the encoder) rather than refused.
    _missing_values = False

    def __sklearn_tags__(self):
        """scikit-learn tags shared by every ursa estimator.

        Input is 3-D (n_sequences, n_timesteps, n_features) or 2-D, read as univariate
        sequences (or, for a long-series scorer, as one (T, n_features) series); trailing
        all-NaN steps are padding, and NaN inside a sequence is a missing value for the
        estimators that mask them (``allow_nan``) and refused by the others; ``y`` is not
        required; a fit with an integer ``random_state`` is repeatable.
        """
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = self._missing_values
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` has run (or a fitted model was loaded): what
        ``sklearn.utils.validation.check_is_fitted`` asks."""
        return hasattr(self, "network_")

    def _init_params(self, values: dict) -> None:
        """Store the ``__init__`` arguments in ``values`` (its ``locals()``) as attributes of
        the same names, and nothing else (scikit-learn's contract for ``__init__``)."""
        for name in self._get_param_names():
            setattr(self, name, values[name])

    # ----------------------------------------------------------------- fitting helpers
    def _validate_params(self) -> None:
        check_params(self, self._parameter_constraints)
        if "privacy" in self._parameter_constraints:
            self._privacy_budget()

    def _privacy_budget(self):
        """``privacy`` as a :class:`ursa.training.PrivacyBudget` (None without privacy), checked
        against the settings it cannot cover: a scaler fitted on the data (its statistics would
        be released outside the budget) and bfloat16 (per-sequence gradients are float32)."""
        budget = privacy_budget(self.privacy)
        if budget is None:
            return None
        if self.scaling is not None:
            raise ValueError(
                f"privacy is set, but scaling={self.scaling!r} learns each channel's statistics "
                "from the training data, outside the privacy budget. Scale the data with bounds "
                "that do not come from it (e.g. a sensor's known range) and pass scaling=None.")
        if self.precision != "float32":
            raise ValueError(f"privacy needs precision='float32' (got {self.precision!r}): "
                             "per-sequence gradients are taken in float32.")
        return budget

    def _set_privacy_spent(self, spent: dict | None) -> None:
        """Record what a fit spent (``privacy_spent_``; absent after a fit without privacy)."""
        if spent is None:
            self.__dict__.pop("privacy_spent_", None)
        else:
            self.privacy_spent_ = spent

    def _validate_data(self, X, *, reset: bool, name: str = "X") -> Sequences:
        """``X`` as :class:`Sequences`. Token sequences (:func:`ursa.data.is_token_input`)
        become ids: at fit through a vocabulary fitted on them (``vocabulary_``), later through
        that one."""
        allow_nan = self._missing_values
        if reset:
            # Features of ursa.data.read_audio carry the front-end that computed them: kept with
            # the model, so that new recordings get the same features.
            frontend = getattr(X, "frontend", None)
            if isinstance(frontend, dict):
                self.audio_frontend_ = dict(frontend)
            else:
                self.__dict__.pop("audio_frontend_", None)
            if is_token_input(X):
                return self._fit_vocabulary(X, name)
            self.__dict__.pop("vocabulary_", None)
            seqs = as_sequences(X, name=name, allow_nan=allow_nan)
            self._set_input_width(seqs.n_features)
            return seqs
        self._check_is_fitted()
        if self._tokens and not isinstance(X, Sequences):
            return self.vocabulary_.encode(X, name)
        if not self._tokens and isinstance(X, (list, tuple)) and is_token_input(X):
            raise TypeError(f"{name} holds token sequences, but this {type(self).__name__} was "
                            "fitted on numeric sequences; pass numeric data, or refit on tokens.")
        return as_sequences(X, name=name, n_features=self.n_features_in_, allow_nan=allow_nan)

    @property
    def _tokens(self) -> bool:
        """Whether the estimator was fitted on token sequences."""
        return getattr(self, "vocabulary_", None) is not None

    def _fit_vocabulary(self, X, name: str) -> Sequences:
        """Fit ``vocabulary_`` on token sequences ``X`` (or take the one they carry) and encode
        them."""
        if getattr(self, "privacy", None) is not None:
            raise ValueError(f"privacy is set, but {name} holds token sequences: private "
                             "training of the token embedding is not supported. Train on "
                             "tokens without privacy, or on numeric features.")
        given = getattr(X, "vocabulary", None) if isinstance(X, TokenSequences) else None
        vocabulary = given if given is not None and hasattr(given, "tokens_") else \
            (given if given is not None else Vocabulary()).fit(X, name)
        seqs = vocabulary.encode(X, name)
        self.vocabulary_ = vocabulary
        self._set_input_width(1)
        return seqs

    def _set_input_width(self, n_features: int) -> None:
        """A fit's ``n_features_in_``. The feature names of an earlier fit's data go: whoever
        knows this data's names sets them (as ``ursa fit`` does)."""
        self.n_features_in_ = n_features
        self.__dict__.pop("feature_names_in_", None)

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _fit_scaler(self, seqs: Sequences) -> Sequences:
        # Token ids are not scaled (the identity scaler keeps the pipeline one).
        self.scaler_ = SequenceScaler(None if self._tokens else self.scaling).fit(seqs)
        return self.scaler_.transform(seqs)

    def _stream_data(self, dataset: ParquetDataset, visit=None,
                     shared: bool = True) -> "_ScaledBlocks":
        """Fit from a :class:`ursa.data.ParquetDataset`: the input width and the scaler, in one
        pass over the blocks (with ``shared``, across processes, each reads its share of them
        and the statistics are merged; without, each reads them all), and the scaled view the
        loop streams from. ``visit(block)``, when given, sees every block read in the pass."""
        if getattr(self, "privacy", None) is not None:
            raise ValueError("privacy is set, but X is a ParquetDataset: private training "
                             "samples every sequence independently at each step, which needs "
                             "the data in memory. Read it with ursa.data.read_parquet.")
        distributed.join(self._device())
        self._set_input_width(dataset.n_features)
        scaler = SequenceScaler(self.scaling)
        blocks = range(distributed.rank(), dataset.n_blocks, distributed.world_size()) \
            if shared else range(dataset.n_blocks)
        for block in dataset.blocks(blocks):
            if visit is not None:
                visit(block)
            scaler.partial_fit(block.sequences)
        if shared and distributed.active():  # every process takes part, blocks of its own or not
            width = dataset.n_features
            mine = scaler.statistics() if len(blocks) else np.stack(
                [np.zeros(width), np.zeros(width), np.zeros(width),
                 np.full(width, np.inf), np.full(width, -np.inf)])
            scaler = SequenceScaler(self.scaling)
            for stats in distributed.gather(mine):
                if stats[0].sum() > 0:
                    scaler.merge_statistics(stats)
        unseen = np.flatnonzero(scaler.n_samples_seen_ == 0)
        if len(unseen):
            raise ValueError(f"{dataset.path}: feature {int(unseen[0])} is missing (NaN) at "
                             "every step of every sequence: there is nothing to learn it from. "
                             "Drop that feature or give it values.")
        self.scaler_ = scaler
        if dataset.feature_names is not None:
            self.feature_names_in_ = np.asarray(dataset.feature_names, dtype=object)
        return _ScaledBlocks(dataset, scaler)

    def _device(self) -> torch.device:
        """The device the ``device`` parameter names; launched by ``torchrun`` on GPUs,
        ``"cuda"`` is this process's own GPU (``LOCAL_RANK``)."""
        if isinstance(self.device, torch.device):
            return distributed.local_device(self.device)
        if self.device == "auto":
            return distributed.local_device(
                torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} was asked for, but CUDA is not available here. "
                "Use device='auto' or 'cpu'."
            )
        return distributed.local_device(torch.device(self.device))

    def _placement(self) -> torch.device:
        """Where a loaded model's tensors go: the device the ``device`` parameter names when this
        machine has it, else the CPU, so that a model fitted on a GPU loads anywhere (a later
        ``fit`` still asks for the named device and says so if it is missing)."""
        try:
            check_device_here(self.device)  # the check ursa.load(path, device=...) makes
        except ValueError:
            return torch.device("cpu")
        return self._device()

    def _threads(self, count=None):
        """Run with ``count`` intra-op threads (default ``n_threads``; None keeps torch's
        setting): :func:`ursa.training.intra_op_threads`."""
        return intra_op_threads(self.n_threads if count is None else count)

    def _fit_threads(self) -> int | None:
        """Intra-op threads of a fit: ``n_threads``, or with None one thread unless a training
        step's recurrent products are large (None then: torch's own setting)."""
        if self.n_threads is not None:
            return self.n_threads
        width = self._hidden_size()
        work = _GATES[self.cell] * width * (self.n_features_in_ + width) * self.batch_size
        return None if work >= _PARALLEL_WORK[self.cell] else 1

    def _hidden_size(self) -> int:
        """Units per recurrent layer (``hidden_size``, resolved where it may be None)."""
        return self.hidden_size

    @contextlib.contextmanager
    def _fit_context(self):
        """Seed torch without touching the caller's global generators; yield a numpy Generator.

        Fits are serialised across threads: seeding forks torch's process-wide generator.
        Launched by ``torchrun``, the process joins its group first (the fit is then data
        parallel, :mod:`ursa.training.distributed`), and every process takes rank 0's seed.
        """
        distributed.join(self._device())
        seed = distributed.broadcast_seed(fit_seed(self.random_state))
        # Every GPU's generator: a fit on "cuda:1" draws from that one, not the current device's.
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        check_precision(self.precision, self._device())
        with THREAD_LOCK, self._threads(self._fit_threads()), \
                torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield np.random.default_rng(seed)

    def _recurrent_config(self, input_size: int | None = None) -> RecurrentConfig:
        """The recurrent settings every estimator shares (cell, hidden_size, num_layers,
        bidirectional, dropout), reading ``input_size`` features per step (default: the data's).
        Token ids are read through an embedding of ``hidden_size`` values per token."""
        if self._tokens:
            input_size = self.hidden_size
        return RecurrentConfig(
            input_size=self.n_features_in_ if input_size is None else input_size,
            vocab_size=len(self.vocabulary_) if self._tokens else 0,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
        )

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_grad_norm=self.max_grad_norm,
            validation_fraction=self.validation_fraction,
            patience=self.patience,
            precision=self.precision,
        )

    def _callbacks(self, seqs: Sequences | None = None, resume: bool = False,
                   phase: str | None = None, checkpoint: bool = True,
                   targets: np.ndarray | None = None, start: dict | None = None) -> list:
        """User callbacks, then a progress bar (``verbose``), then the checkpoint writer.

        With ``checkpoint_dir`` set, the checkpoint carries a fingerprint of the parameters and
        of ``seqs`` (the training data) and ``targets`` (anything else fitted on, such as
        conditions), and ``resume=True`` continues from it. Estimators that train in several
        phases pass ``phase``: each phase keeps its own checkpoint sub-folder. A stage that starts
        from an earlier stage's weights passes them as ``start``: its checkpoint is resumed only
        when it started from the same weights.
        """
        callbacks = list(getattr(self, "callbacks", None) or [])
        if self.verbose and distributed.is_writer():
            callbacks.append(ProgressBar(type(self).__name__ + (f" ({phase})" if phase else "")))
        directory = getattr(self, "checkpoint_dir", None) if checkpoint else None
        if directory:
            if phase:
                directory = os.path.join(directory, phase)
            callbacks.append(Checkpoint(directory, every=getattr(self, "checkpoint_every", 1),
                                        resume=resume,
                                        fingerprint=self._fingerprint(seqs, phase, targets),
                                        start=None if start is None else _digest(start)))
        elif resume and checkpoint:
            raise ValueError("resume=True needs checkpoint_dir: set checkpoint_dir to the folder "
                             "the interrupted fit wrote its checkpoint to.")
        return callbacks

    def _fingerprint(self, seqs: Sequences | None, phase: str | None = None,
                     targets: np.ndarray | None = None) -> str:
        """SHA-256 over the class, the parameters that shape the fit, the phase and the data."""
        params = {k: repr(v) for k, v in sorted(self.get_params(deep=False).items())
                  if k not in _RESUMABLE_CHANGES}
        digest = hashlib.sha256(json.dumps([type(self).__name__, params, phase]).encode())
        if isinstance(seqs, _ScaledBlocks):
            digest.update(seqs.dataset.fingerprint().encode())
        elif seqs is not None:
            digest.update(np.ascontiguousarray(seqs.lengths).tobytes())
            digest.update(np.ascontiguousarray(seqs.values).tobytes())
        if targets is not None:
            digest.update(np.ascontiguousarray(targets).tobytes())
        return digest.hexdigest()

    def _set_history(self, history: list[dict]) -> None:
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [r["train_loss"] for r in history]
        self.validation_scores_ = [r["val_loss"] for r in history if "val_loss" in r] or None

    # ----------------------------------------------------------------- inference helpers
    def _in_scaled_space(self, fn, network=None):
        """Wrap a batch function so that it sees scaled values: each batch is scaled on the
        device as it is drawn, so inference never holds a scaled copy of the whole input.
        (Padding becomes -offset/scale, which no output reads: outputs are masked by length.)"""
        network = self.network_ if network is None else network
        device = next(network.parameters()).device
        offset = torch.from_numpy(self.scaler_.offset_).to(device)
        scale = torch.from_numpy(self.scaler_.scale_).to(device)

        def scaled(values, lengths, *rest):
            return fn((values - offset) / scale, lengths, *rest)

        return scaled

    def _map_batches(self, seqs: Sequences, fn, per_step: tuple[bool, ...],
                     network=None, name: str = "X", extra: np.ndarray | None = None,
                     ) -> list[np.ndarray]:
        """Apply ``fn(values, lengths) -> tuple of tensors`` batch by batch, in input order
        (:func:`ursa.data.map_rows`: at most ``predict_batch_size`` sequences in flight).

        Sequences are sorted by length so that each batch carries little padding. ``extra``
        (one row per sequence, e.g. encoded conditions) is passed as a third argument, the rows
        of the batch's sequences. Outputs flagged in ``per_step`` have a time axis (axis 1),
        zero after each sequence's end. A non-finite output (input far outside the range seen at
        fit) raises ``ValueError`` naming the sequence, rather than returning a silent NaN.
        """
        # Equal lengths: contiguous slices (views, no copies, no reordering).
        order = None if seqs.equal_length else np.argsort(seqs.lengths, kind="stable")
        network = self.network_ if network is None else network
        device = next(network.parameters()).device
        precision = self.precision

        def apply(rows):
            batch = (Sequences(seqs.values[rows], seqs.lengths[rows]) if order is None
                     else seqs.subset(rows))
            values, lengths = batch.tensors(device)
            args = () if extra is None else (torch.from_numpy(
                np.ascontiguousarray(extra[rows])).to(device),)
            with autocast(precision, device):
                outputs = fn(values, lengths, *args)
            pieces = [(o.float() if o.dtype == torch.bfloat16 else o).detach().cpu().numpy()
                      for o in outputs]
            for piece in pieces:
                finite = np.isfinite(piece).reshape(len(piece), -1).all(axis=1)
                if not finite.all():
                    bad = int(np.arange(len(seqs))[rows][np.argmin(finite)])
                    biggest = float(np.abs(seqs.values[bad, : seqs.lengths[bad]]).max())
                    raise ValueError(
                        f"{name}[{bad}] gives a non-finite output: its values (largest "
                        f"magnitude {biggest:.3g}) are far outside the range this model was "
                        "fitted on. Rescale the data like the training data, or refit on "
                        "data that covers this range."
                    )
            return pieces

        with self._threads(), torch.inference_mode():
            network.eval()
            return map_rows(len(seqs), self.predict_batch_size, apply, order=order,
                            time_axis=per_step, n_timesteps=seqs.max_length)

    # ----------------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted estimator to ``path`` (one safetensors file; see :func:`ursa.load`).

        Parameters that are objects rather than settings (callbacks, a RandomState, a clusterer
        instance) are saved as None; the fitted state they led to is saved. After a fit across
        processes, rank 0 writes the file and every process returns once it is written."""
        self._check_is_fitted()
        if distributed.is_writer():
            document, arrays = self._get_state()
            params = {k: _jsonable_param(v) for k, v in self.get_params(deep=False).items()}
            document = {"params": params, **document}
            save_model(path, type(self).__name__, document, arrays)
        distributed.barrier()
        return path

    def _get_state(self) -> tuple[dict, dict]:
        """Fitted state: a JSON-able dict and a dict of numpy arrays. Extend in subclasses."""
        scaler_config, scaler_arrays = self.scaler_.get_state()
        weights = {f"network.{k}": v.detach().cpu().numpy()
                   for k, v in self.network_.state_dict().items()}
        arrays = {**weights, **{f"scaler.{k}": v for k, v in scaler_arrays.items()}}
        document = {
            "n_features_in": self.n_features_in_,
            "scaler": scaler_config,
            "history": self.history_,
        }
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            document["feature_names_in"] = _feature_names(names, self.n_features_in_)
        if getattr(self, "privacy_spent_", None) is not None:
            document["privacy_spent"] = self.privacy_spent_
        if self._tokens:
            document["vocabulary"] = self.vocabulary_.get_state()
        if getattr(self, "audio_frontend_", None) is not None:
            document["audio_frontend"] = self.audio_frontend_
        return document, arrays

    @classmethod
    def _from_saved(cls, document: dict, arrays: dict, device=None):
        params = document["params"]
        if not isinstance(params, dict):
            raise TypeError("'params' must be a mapping")
        if device is not None:  # ursa.load(path, device=...): checked by load, overrides the file
            params = {**params, "device": device}
        known = cls._get_param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}")
        # A parameter added after a file was written is absent from it: it takes the value that
        # reproduces the saved model, not today's default.
        estimator = cls(**{**cls._OLDER_FILES_PARAMS, **params})
        estimator._validate_params()
        estimator._set_state(document, arrays)
        return estimator

    def _set_state(self, document: dict, arrays: dict) -> None:
        self.n_features_in_ = int(document["n_features_in"])
        self.scaler_ = SequenceScaler.from_state(
            document["scaler"],
            {k[len("scaler."):]: v for k, v in arrays.items() if k.startswith("scaler.")},
        )
        self._set_history(list(document["history"]))
        spent = document.get("privacy_spent")
        if spent is not None and not (isinstance(spent, dict) and isinstance(
                spent.get("epsilon"), (int, float)) and isinstance(spent.get("delta"), (int, float))):
            raise ValueError("'privacy_spent' must be a mapping with numbers 'epsilon' and 'delta'")
        self._set_privacy_spent(spent)
        if document.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(
                _feature_names(document["feature_names_in"], self.n_features_in_), dtype=object)
        self.__dict__.pop("vocabulary_", None)
        if document.get("vocabulary") is not None:
            self.vocabulary_ = Vocabulary.from_state(document["vocabulary"])
        self.__dict__.pop("audio_frontend_", None)
        if document.get("audio_frontend") is not None:
            if not isinstance(document["audio_frontend"], dict):
                raise ValueError("'audio_frontend' must be a mapping")
            self.audio_frontend_ = dict(document["audio_frontend"])
        weights = {k[len("network."):]: v for k, v in arrays.items() if k.startswith("network.")}
        # Check the saved weights against the saved parameters on the "meta" device first (no
        # memory is allocated there), so that a hostile file cannot make us build a huge network.
        with torch.device("meta"):
            probe = self._build_network()
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in weights.items()}
        if expected != found:
            differing = sorted(set(expected.items()) ^ set(found.items()))[:3]
            raise ValueError(f"the weights do not match the saved parameters (e.g. {differing})")
        network = self._build_network()
        network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()},
                                strict=True)
        network.eval()
        self.network_ = network.to(self._placement())


class _ScaledBlocks:
    """A ParquetDataset's blocks as the training loop reads them (a
    :class:`ursa.training.sources.BlockSource`): scaled, missing values allowed where the
    estimator allows them."""

    def __init__(self, dataset: ParquetDataset, scaler: SequenceScaler):
        self.dataset, self.scaler = dataset, scaler
        self.n_sequences = dataset.n_sequences
        self.block_sizes, self.block_starts = dataset.block_sizes, dataset.block_starts

    def read_block(self, k: int) -> Sequences:
        return self.scaler.transform(self.dataset.block(k).sequences)


def _digest(weights: dict) -> str:
    """SHA-256 over a state dict's names and values."""
    digest = hashlib.sha256()
    for name, value in weights.items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _feature_names(names, n_features: int) -> list[str]:
    """``feature_names_in_`` as a list of ``n_features`` distinct strings, or a ValueError."""
    names = [str(n) if isinstance(n, np.str_) else n for n in list(names)]
    if len(names) != n_features or not all(isinstance(n, str) for n in names) \
            or len(set(names)) != len(names):
        raise ValueError(f"feature_names_in_ must be {n_features} distinct strings (one per "
                         f"feature), got {names[:5]!r}")
    return names


def _jsonable_param(value):
    """A parameter as saved in a model file: settings as JSON values; objects (a RandomState,
    callbacks, a clusterer instance) as None, since they are not part of the saved model (their
    effect, the fitted state, is)."""
    if isinstance(value, (torch.device, os.PathLike)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str, bool))
                                                for v in value):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and (v is None or isinstance(
            v, (int, float, str, bool))) for k, v in value.items()):
        return value  # e.g. privacy={"epsilon": 3.0}
    return None
