"""RecurrentGAN: synthetic sequences (TimeGAN, a plain recurrent GAN or a recurrent diffusion
model), optionally conditional.

The objectives live in ``_gan_objectives``, the condition encoding in ``_conditions``; this module
holds the parameters, the wiring, sampling and the fitted state.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.utils import TransformerTags

from .._params import Instance, Interval, Options, check_count, seeds
from ..data import Sequences, SequenceScaler, map_rows, restore_layout
from ..networks.gan import ARCHITECTURES, DIFFUSION_LEVELS, GANConfig, build_gan
from ..networks.recurrent import step_mask
from ..persistence import register
from ..training import OptimizerSet, available_cores, private_updates, run, step_executor
from ._conditions import ConditionEncoder
from ._gan_objectives import (
    DiffusionObjective, RCGANObjective, TimeGANObjective, draw_noise, released_statistics)
from .base import COMMON_CONSTRAINTS, PRIVACY_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["RecurrentGAN"]

_SHARED = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout", "latent_dim",
           "batch_size", "learning_rate", "max_grad_norm", "scaling", "random_state", "device",
           "verbose", "n_threads", "precision", "checkpoint_dir", "checkpoint_every")

# Below this ratio of synthetic to real mean pairwise distance, fit warns of mode collapse.
COLLAPSE_RATIO = 0.3

# Units per recurrent layer when ``hidden_size`` is None: the GANs', the diffusion denoiser's.
GAN_HIDDEN_SIZE, DIFFUSION_HIDDEN_SIZE = 32, 64

# TimeGAN's data-space discriminator weight when ``data_weight`` is None.
DEFAULT_DATA_WEIGHT = 1.0

# The kernel-embedding term's weight when ``distribution_weight`` is None in a private fit whose
# generator learns from released statistics (docs/privacy.md).
STATISTICS_KERNEL_WEIGHT = 1000.0


@register
class RecurrentGAN(BaseSequenceEstimator):
    """Recurrent generative adversarial network for sequences (TimeGAN by default).

    ``architecture="timegan"`` (Yoon et al., NeurIPS 2019) trains in three phases: (1) an embedder
    and a recovery network as an autoencoder into a latent sequence space; (2) a supervisor that
    predicts the next latent step, teaching the latent dynamics; (3) jointly: the generator (noise
    -> latent sequence, refined by the supervisor) against a discriminator on latent sequences,
    with the supervised and moment-matching losses, while the autoencoder keeps being refined.
    ``architecture="rcgan"`` is a plain recurrent generator and discriminator on the data
    (Esteban et al. 2017); it runs only the adversarial phase. ``architecture="diffusion"`` is
    not adversarial: a bidirectional recurrent denoiser learns to recover whole sequences from
    copies with Gaussian noise added at random levels (Ho et al., NeurIPS 2020), one phase of
    ``iterations`` steps, and sampling denoises pure noise in ``sampling_steps`` steps (DDIM,
    Song et al., ICLR 2021). Where the two were compared (docs/generation.md), it scored better
    than TimeGAN, and a fit has no adversarial oscillation.

    Conditional generation: ``fit(X, y)`` with class labels or static attributes (2-D floats);
    ``sample(n, y=...)`` draws for given conditions. Why the defaults are what they are:
    ``docs/generation.md``; scores and fit times: ``benchmarks/RESULTS.md``.

    Parameters
    ----------
    architecture : {"timegan", "rcgan", "diffusion"}, default="timegan"
        The objective: TimeGAN's latent-space GAN, a GAN on the data itself, or a diffusion
        model on the data. The parameters of the adversarial objectives (noise, discriminators,
        matching terms) apply to the GANs only.
    cell : {"rnn", "gru", "lstm"}, default="gru"
        Recurrent cell of every network (GRUs, the reference's, scored better than LSTMs).
    hidden_size : int or None, default=None
        Units per recurrent layer. None: 32 for the GANs (the reference's 24 is no faster on a
        CPU and scored worse), 64 per direction for the diffusion model's denoiser (32 scored
        worse on ETTh1; docs/generation.md).
    num_layers : int, default=2
        Layers per network (the supervisor has one less). Two train faster than the reference's
        three and scored no worse.
    bidirectional : bool, default=False
        Bidirectional discriminators. A GAN's generation stays causal in any case; the
        diffusion model's denoiser is always bidirectional (it denoises whole sequences).
    dropout : float, default=0.0
    latent_dim : int, default=32
        Size of TimeGAN's latent space per time step.
    noise_dim : int or None, default=None
        Noise channels per step; None uses the number of features, as the reference does.
    static_noise_dim : int or None, default=None
        Noise channels drawn once per sequence and fed at every step beside the per-step noise;
        None uses the number of features, 0 turns it off. Per-sequence factors (a frequency, a
        level) are then drawn directly instead of accumulated from per-step noise.
    iterations : int, default=10000
        Iterations of the joint (TimeGAN), adversarial (RCGAN) or denoising (diffusion) phase.
        TimeGAN's reference runs 50,000; more than 10,000 scored no better here.
    sampling_steps : int, default=50
        Diffusion: denoising steps from noise to a sample, at most the 200 noise levels it
        trains on. Each step costs a pass of the denoiser; fewer steps sample faster and
        coarser.
    generator_steps : int, default=1
        TimeGAN: generator and embedder updates per discriminator update in the joint phase; the
        phase takes ``iterations * generator_steps`` updates.
    pretrain_iterations : int or None, default=1000
        Iterations of each TimeGAN pretraining phase; None uses ``iterations``. The autoencoder
        keeps improving in the joint phase, so long pretraining buys little.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        Adam's step size for every network (the reference's).
    max_grad_norm : float or None, default=None
        Gradient clipping threshold; None disables it (the reference does not clip).
    gamma : float, default=1.0
        Weight of the adversarial loss on unsupervised latent sequences (TimeGAN's gamma).
    supervised_weight : float, default=100.0
        Weight of sqrt(supervised loss) in the generator objective (TimeGAN's).
    moment_weight : float, default=100.0
        Weight of the moment-matching loss in the generator objective (TimeGAN's).
    covariance_weight, feature_distribution_weight : float, default=0.0
        Weights of extra matching terms in the generator objective: the gap between synthetic
        and real cross-feature covariances; the squared MMD between whole data-space sequences
        taken per feature. 0 leaves each out: neither improved both scores on every data set.
    distribution_weight : float or None, default=None
        Weight of the squared MMD between whole data-space sequences (it rises when the
        generator leaves part of the data out). None is 0, which scored best across data sets
        without privacy, except in a private fit with ``data_bound``, where matching the
        data's released kernel embedding is the generator's main signal: 1000 there.
    data_weight : float or None, default=None
        TimeGAN: weight of a second discriminator that reads data-space sequences (the
        recovery's outputs against the data), as the post-hoc discriminative test does. None
        uses 1.0 for TimeGAN and 0 for RCGAN, whose discriminator reads the data already.
    ema_decay : float, default=0.999
        Sample with an exponential moving average of the generator's (and supervisor's, or the
        denoiser's) weights, which smooths the oscillation of adversarial training and the
        noise of a diffusion model's updates; update t uses the decay
        min(ema_decay, (1 + t) / (10 + t)). 0 turns it off.
    scaling : {"minmax", "standard", None}, default="minmax"
        Per-feature scaling fitted on the training data and inverted on output. With "minmax"
        the data-space outputs end in a sigmoid (values in [0, 1], as in the reference).
    output_margin : float, default=0.0
        With ``scaling="minmax"``: scale the data to [output_margin, 1 - output_margin], so that
        the sigmoid can reach the data's extremes; samples may then exceed the training range by
        ``output_margin / (1 - 2 * output_margin)`` of it. It did not improve the scores.
    random_state : int, RandomState or None, default=None
        Seed; the same seed, data and machine give bit-identical fits on CPU.
    device : {"auto", "cpu", "cuda"}, default="auto"
    verbose : bool, default=True
        Show a progress bar (losses and time left) on standard error once the fit has run
        two seconds; quick fits stay silent. ``False`` for none.
    precision : {"float32"}, default="float32"
        The name every estimator shares; the GAN trains in float32 only. Its networks are too
        small for bfloat16 to pay, and its step threads would each need their own autocast.
    n_threads : int or None, default=None
        torch intra-op threads during fit and sampling; None: as in
        :class:`ursa.SequenceAutoencoder` (the GAN's small networks get one thread per step
        thread; sampling keeps torch's setting).
    step_threads : {1, 2} or "auto", default="auto"
        TimeGAN: threads that run the independent parts of each joint iteration at once; the fit
        is the same bit for bit either way. "auto" uses 2 on a CPU with two cores or more for
        this process, else 1; fits with dropout between layers use 1 (the order of random draws
        would depend on timing).
    callbacks : list of ursa.training.Callback, optional
        Called once per history record (not saved with the model).
    checkpoint_dir : str, path or None, default=None
        Write checkpoints here (the networks, every optimiser, the weight average, the position
        in the phases and in the data, the random-generator states); ``fit(X, resume=True)``
        continues an interrupted fit and ends with the uninterrupted fit's model, bit for bit on
        CPU (on a GPU not with dropout between layers: cuDNN draws it from its own generator).
    checkpoint_every : int, default=1
        History records (of 100 iterations each) between checkpoints.
    privacy : dict or None, default=None
        Train with differential privacy: ``{"epsilon": 10.0, "delta": 1e-5, "max_grad_norm":
        1.0, "data_bound": 1.0}`` (``delta`` defaults to 1 / n_sequences). With
        ``"data_bound": b`` (no value of the scaled data beyond b in magnitude, known without
        reading it, e.g. 1 after min-max scaling to known bounds), TimeGAN learns from
        statistics: the data's per-step means and spreads and its mean kernel embedding are
        released once with noise, taking the whole budget, and the generator, supervisor and
        recovery are trained to match them (the moment and ``distribution_weight`` terms); no
        step reads the data. This scored far better than private discriminators. Without it
        (and with RCGAN), the networks that read the data (the discriminators; with TimeGAN
        also the embedder, recovery and supervisor) take DP-SGD steps and the generator learns
        only through them. Either way the samples are covered by the guarantee. Needs
        ``scaling=None`` (scale with bounds that do not come from the data), equal-length
        sequences, no ``y``, and the ``privacy`` extra (opacus). See docs/privacy.md.

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
    network_ : ursa.networks.gan.TimeGANNet, RCGANNet or DiffusionNet
        All networks in one module.
    history_ : list of dict
        One record per 100 iterations of a phase: ``phase`` ("embedding", "supervised", "joint",
        "adversarial" or "denoising"), ``iteration``, the phase's losses averaged over those
        iterations and ``seconds``; ``train_loss`` repeats the phase's main loss.
    n_iter_ : int
        Iterations of the joint (adversarial, denoising) phase run, in units of ``iterations``.
    lengths_ : ndarray of shape (n_sequences,)
        Training lengths; ``sample`` draws lengths from them when they vary (after a private
        fit, whose sequences have one length, that length alone).
    condition_kind_ : {None, "labels", "attributes"}; classes_ : ndarray or None
        What ``y`` was in fit, and its classes when it held labels.
    diversity_ratio_ : float
        Mean pairwise distance of synthetic sequences over that of training sequences (scaled
        data); near 0 means mode collapse (``fit`` warns below 0.3). Not computed under
        ``privacy`` (it reads the training data outside the budget).
    privacy_spent_ : dict
        With ``privacy``: the epsilon the fit spent (at most the budget), delta, the noise
        multiplier, sample rate and steps (saved with the model).

    Examples
    --------
    >>> import numpy as np, ursa
    >>> X = ursa.datasets.make_sines(64, n_timesteps=12, n_features=2, random_state=0)
    >>> gan = ursa.RecurrentGAN(hidden_size=8, latent_dim=4, num_layers=1, iterations=5,
    ...                         batch_size=16, random_state=0).fit(X)
    >>> gan.sample(3, random_state=0).shape
    (3, 12, 2)
    """

    # Files written before these parameters existed were trained without what they add.
    _OLDER_FILES_PARAMS = {"static_noise_dim": 0, "ema_decay": 0.0, "data_weight": 0.0,
                           "output_margin": 0.0}

    _parameter_constraints = {
        **{k: COMMON_CONSTRAINTS[k] for k in _SHARED},
        **PRIVACY_CONSTRAINTS,
        "architecture": [Options(ARCHITECTURES)], "noise_dim": [Interval(int, 1), None],
        "hidden_size": [Interval(int, 1), None],
        "static_noise_dim": [Interval(int, 0), None], "iterations": [Interval(int, 1)],
        "sampling_steps": [Interval(int, 1, DIFFUSION_LEVELS)],
        "generator_steps": [Interval(int, 1)], "pretrain_iterations": [Interval(int, 0), None],
        **{k: [Interval(float, 0.0)] for k in (
            "gamma", "supervised_weight", "moment_weight", "covariance_weight",
            "feature_distribution_weight")},
        "data_weight": [Interval(float, 0.0), None],
        "distribution_weight": [Interval(float, 0.0), None],
        "ema_decay": [Interval(float, 0.0, 1.0, open_high=True)],
        "output_margin": [Interval(float, 0.0, 0.5, open_high=True)],
        "step_threads": [Interval(int, 1, 2), Options(("auto",))],
        "callbacks": [Instance((list, tuple)), None],
    }

    def __sklearn_tags__(self):
        # A generator: scikit-learn has no estimator type for one, so estimator_type stays None
        # (not "density_estimator": its score_samples would promise a log-density, which a GAN
        # has not). ``y`` is optional (conditions). transform, TimeGAN's per-step embedding, is
        # float32 and 3-D: transformer tags (scikit-learn asks them of anything with transform),
        # but not TransformerMixin, which stands for a (n_sequences, n_outputs) table.
        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        return tags

    def __init__(
        self, architecture="timegan", cell="gru", hidden_size=None, num_layers=2,
        bidirectional=False, dropout=0.0, latent_dim=32, noise_dim=None, static_noise_dim=None,
        iterations=10000, sampling_steps=50, generator_steps=1, pretrain_iterations=1000,
        batch_size=128,
        learning_rate=1e-3, max_grad_norm=None, gamma=1.0, supervised_weight=100.0,
        moment_weight=100.0, covariance_weight=0.0, distribution_weight=None,
        feature_distribution_weight=0.0, data_weight=None, ema_decay=0.999, scaling="minmax",
        output_margin=0.0, random_state=None, device="auto", verbose=True, n_threads=None,
        precision="float32", step_threads="auto", callbacks=None, checkpoint_dir=None,
        checkpoint_every=1, privacy=None,
    ):
        self._init_params(locals())

    # ----------------------------------------------------------------- building
    def _config(self) -> GANConfig:
        return GANConfig(
            n_features=self._data_width(), architecture=self.architecture, cell=self.cell,
            hidden_size=self._hidden_size(), num_layers=self.num_layers, latent_dim=self.latent_dim,
            noise_dim=sum(self._noise_widths()), condition_dim=self.conditions_.width,
            bidirectional=self.bidirectional, dropout=self.dropout,
            bounded_output=self._tokens or self.scaling == "minmax",
            data_discriminator=self._data_weight() > 0, sampling_steps=self.sampling_steps)

    def _data_width(self) -> int:
        """Features per step the networks read and write: the data's, or for token sequences
        one per vocabulary id (one-hot)."""
        return len(self.vocabulary_) if self._tokens else self.n_features_in_

    def _validate_data(self, X, *, reset: bool, name: str = "X") -> Sequences:
        """Token sequences reach the networks one-hot: each step a vector of ``len(vocabulary_)``
        values, 1 at its id, so that every data-space term of the objective (moments,
        covariances, the data-space discriminator) reads them as numbers in [0, 1]."""
        seqs = super()._validate_data(X, reset=reset, name=name)
        if not self._tokens or isinstance(X, Sequences):
            return seqs
        ids = seqs.values[..., 0].astype(np.int64)
        one_hot = np.zeros((*ids.shape, len(self.vocabulary_)), dtype=np.float32)
        np.put_along_axis(one_hot, ids[..., None], 1.0, axis=-1)
        one_hot[~seqs.mask()] = 0.0
        return Sequences(one_hot, seqs.lengths)

    def _tokens_of(self, values: np.ndarray, lengths) -> list[list]:
        """Generated or rebuilt one-hot-like steps -> token lists: the known token with the
        highest value at each step (padding and the unknown id never occur in training data)."""
        first = self.vocabulary_.first_id
        ids = values[..., first:].argmax(-1) + first
        return self.vocabulary_.decode(ids, lengths)

    def _build_network(self):
        return build_gan(self._config())

    def _fit_scaler(self, seqs: Sequences) -> Sequences:
        if self._tokens or self.scaling != "minmax" or not self.output_margin:
            return super()._fit_scaler(seqs)
        self.scaler_ = SequenceScaler("minmax", feature_range=(
            self.output_margin, 1.0 - self.output_margin)).fit(seqs)
        return self.scaler_.transform(seqs)

    def _distribution_weight(self, budget=None) -> float:
        """``distribution_weight`` with None resolved: off, except where a private fit's
        generator learns from the released statistics (:meth:`_learns_from_statistics`)."""
        if self.distribution_weight is not None:
            return float(self.distribution_weight)
        return STATISTICS_KERNEL_WEIGHT if self._learns_from_statistics(budget) else 0.0

    def _learns_from_statistics(self, budget) -> bool:
        """Whether a private fit trains its generator on noisy releases of the data's statistics
        (TimeGAN with ``data_bound``) rather than through private discriminators."""
        return (budget is not None and self.architecture == "timegan"
                and budget.data_bound is not None)

    def _hidden_size(self) -> int:
        """``hidden_size`` with None resolved for the architecture."""
        if self.hidden_size is not None:
            return self.hidden_size
        return DIFFUSION_HIDDEN_SIZE if self.architecture == "diffusion" else GAN_HIDDEN_SIZE

    def _data_weight(self) -> float:
        """``data_weight`` with None resolved for the architecture."""
        if self.architecture != "timegan":
            return 0.0
        return DEFAULT_DATA_WEIGHT if self.data_weight is None else float(self.data_weight)

    def _set_conditions(self, encoder: ConditionEncoder) -> None:
        self.conditions_ = encoder
        self.condition_kind_ = encoder.kind_
        self.classes_, self.class_counts_ = encoder.classes_, encoder.class_counts_

    def _noise_widths(self) -> tuple[int, int]:
        """(per-step, per-sequence) noise channels; None means one per feature. The diffusion
        model starts from noise shaped like the data."""
        if self.architecture == "diffusion":
            return self._data_width(), 0
        static = self.n_features_in_ if self.static_noise_dim is None else self.static_noise_dim
        return self.noise_dim or self.n_features_in_, static

    def _noise(self, n: int, n_steps: int, device, generator=None) -> torch.Tensor:
        return draw_noise(n, n_steps, *self._noise_widths(), device, generator,
                          normal=self.architecture == "diffusion")

    def _step_threads(self, device) -> int:
        """``step_threads`` resolved: 1 where the parts draw random numbers (dropout between
        layers) or there is no joint step (rcgan)."""
        if self.architecture != "timegan" or (self.dropout > 0 and self.num_layers > 1):
            return 1
        if self.step_threads != "auto":
            return int(self.step_threads)
        return 2 if torch.device(device).type == "cpu" and available_cores() >= 2 else 1

    def _objective(self, network, conditions, executor, private=None, n_steps=None,
                   budget=None):
        matching = {f"{name}_loss": getattr(self, f"{name}_weight") for name in (
            "covariance", "feature_distribution")}
        matching["distribution_loss"] = self._distribution_weight(budget)
        settings = dict(noise=self._noise, conditions=conditions, matching=matching,
                        learning_rate=self.learning_rate, max_grad_norm=self.max_grad_norm,
                        ema_decay=self.ema_decay)
        if self.architecture == "rcgan":
            return RCGANObjective(network, iterations=self.iterations, private=private,
                                  n_steps=n_steps, batch_size=self.batch_size, **settings)
        if self.architecture == "diffusion":
            return DiffusionObjective(network, iterations=self.iterations, **settings)
        return TimeGANObjective(
            network, pretrain_iterations=self._pretrain_iterations(), iterations=self.iterations,
            generator_steps=self.generator_steps, gamma=self.gamma,
            supervised_weight=self.supervised_weight, moment_weight=self.moment_weight,
            data_weight=self._data_weight(), executor=executor, private=private,
            statistics=self._learns_from_statistics(budget), n_steps=n_steps,
            batch_size=self.batch_size, **settings)

    def _pretrain_iterations(self) -> int:
        return self.iterations if self.pretrain_iterations is None else self.pretrain_iterations

    def _private_steps(self) -> int:
        """Private steps of a fit: every step that reads the data (see _gan_objectives)."""
        if self._learns_from_statistics(self._privacy_budget()):
            return 0
        if self.architecture == "rcgan":
            return self.iterations
        return 2 * self._pretrain_iterations() + self.iterations * self.generator_steps

    def _private_releases(self, budget) -> int:
        """Noisy releases of a private fit that learns from statistics: the data's moments
        (for the moment term and the kernel's width) and, with a distribution weight, its kernel
        embedding."""
        if not self._learns_from_statistics(budget):
            return 0
        return 1 + int(self._distribution_weight(budget) > 0)

    def _private_modules(self, network) -> list:
        if self._learns_from_statistics(self._privacy_budget()):
            return []
        if self.architecture == "rcgan":
            return [network.discriminator]
        return [m for m in (network.embedder, network.recovery, network.supervisor,
                            network.discriminator, network.data_discriminator) if m is not None]

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y=None, *, resume=False):
        """Fit the GAN on sequences ``X``.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features]); or token sequences (lists of strings, or
            :class:`ursa.data.TokenSequences`), read through ``vocabulary_``
        y : None, array of shape (n_sequences,) or (n_sequences, n_attributes)
            Optional condition: class labels (integers or strings) or static attributes.
        resume : bool, default=False
            Continue an interrupted fit from the checkpoint in ``checkpoint_dir`` (same data,
            conditions and parameters).

        Returns
        -------
        self
        """
        self._validate_params()
        if self.precision != "float32":
            raise ValueError(f"precision={self.precision!r}: RecurrentGAN trains in float32 only "
                             "(its networks are too small for bfloat16 to pay). Use "
                             "precision='float32'.")
        if self.architecture == "rcgan" and self.data_weight:
            raise ValueError(f"data_weight={self.data_weight!r} applies to architecture='timegan' "
                             "only: rcgan's discriminator reads the data. Leave it None (or 0).")
        self._check_diffusion_params()
        seqs = self._validate_data(X, reset=True)
        budget = self._check_private_fit(seqs, y)
        self._set_conditions(ConditionEncoder().fit(y, len(seqs)))
        conditions = self.conditions_.transform(y, len(seqs))
        scaled = self._fit_scaler(seqs)
        # (A private fit keeps the one length, not one entry per training sequence.)
        self.lengths_ = seqs.lengths[:1].copy() if budget is not None else seqs.lengths.copy()
        device = self._device()
        with self._fit_context() as rng:
            network = self._build_network()
            network.to(device)
            c_all = None if conditions is None else torch.from_numpy(conditions).to(device)
            callbacks = self._callbacks(seqs, resume=resume, targets=conditions)
            threads = self._step_threads(device)
            releases = 0 if budget is None else self._private_releases(budget)
            private = None if budget is None else private_updates(
                budget, self._private_modules(network), len(seqs), self.batch_size,
                steps=self._private_steps(), releases=releases)
            with step_executor(threads, share_cores=self.n_threads is None) as executor:
                objective = self._objective(network, c_all, executor, private,
                                            seqs.max_length, budget=budget)
                if releases:
                    objective.target_moments, objective.target_embedding = released_statistics(
                        scaled, private, budget.data_bound, device, embedding=releases > 1,
                        generator=torch.Generator().manual_seed(int(rng.integers(2**31 - 1))))
                history = run(network, objective.phases(), scaled, batch_size=self.batch_size,
                              rng=rng, device=device, callbacks=callbacks,
                              optimizer=OptimizerSet(objective.optimizers),
                              stateful=objective.stateful,
                              sample_rate=None if private is None else private.sample_rate)
            objective.finish()  # sample with the averaged generator
            self.network_ = network
            self._set_history(history)
            self._set_privacy_spent(None if private is None else private.spent())
            self.diversity_ratio_ = (float("nan") if private is not None
                                     else self._diversity(scaled, conditions, rng))
        if self.diversity_ratio_ < COLLAPSE_RATIO:
            warnings.warn(
                f"Possible mode collapse: synthetic sequences are {self.diversity_ratio_:.2f} times "
                "as diverse as the training data (mean pairwise distance). Train longer, lower "
                "learning_rate or try another random_state.", UserWarning, stacklevel=2)
        return self

    def _check_diffusion_params(self) -> None:
        """The GANs' parameters that would change nothing in a diffusion fit are refused."""
        if self.architecture != "diffusion":
            return
        for name in ("noise_dim", "static_noise_dim", "data_weight", "distribution_weight"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}={getattr(self, name)!r} applies to the GANs only; "
                                 "architecture='diffusion' has no generator noise, "
                                 "discriminator or matching term. Leave it None.")
        for name in ("covariance_weight", "feature_distribution_weight"):
            if getattr(self, name):
                raise ValueError(f"{name}={getattr(self, name)!r} applies to the GANs only; "
                                 "architecture='diffusion' has no matching term. Leave it 0.")

    def _check_private_fit(self, seqs, y):
        """The privacy budget, after checking that this fit can keep to it (None: no privacy)."""
        budget = self._privacy_budget()
        if budget is None:
            return None
        if self.architecture == "diffusion":
            raise ValueError("privacy is not available with architecture='diffusion' yet: use "
                             "architecture='timegan' (or 'rcgan') for a private fit.")
        if y is not None:
            raise ValueError("privacy does not cover conditions yet: fit without y, or fit one "
                             "private model per condition.")
        if not seqs.equal_length:
            raise ValueError("privacy needs equal-length sequences: the lengths of the training "
                             "sequences would otherwise be released by sampling. Crop or pad "
                             "them to one length (NaN padding marks variable length).")
        return budget

    def _set_history(self, history: list[dict]) -> None:
        super()._set_history(history)  # n_iter_: adversarial iterations, not records
        steps = [r["iteration"] for r in history
                 if r.get("phase") in ("joint", "adversarial", "denoising")]
        self.n_iter_ = -(-max(steps, default=0) // (
            self.generator_steps if self.architecture == "timegan" else 1))

    def _diversity(self, scaled: Sequences, conditions, rng) -> float:
        """:func:`ursa.metrics.diversity_ratio` of 256 samples against training sequences."""
        from ..metrics import diversity_ratio

        m = min(256, len(scaled))
        pick = rng.choice(len(scaled), size=m, replace=False)
        steps = int(scaled.lengths[pick].min())
        c = None if conditions is None else conditions[pick]
        fake = self._generate(m, steps, c, torch.Generator().manual_seed(
            int(rng.integers(2**31 - 1))), original_scale=False)
        return diversity_ratio(scaled.values[pick, :steps], fake)

    # ----------------------------------------------------------------- sampling
    def _generate(self, n: int, n_steps: int, conditions, generator, *,
                  original_scale: bool) -> np.ndarray:
        """(n, n_steps, C) float32 generated batch by batch into one array, in the data's scale
        with ``original_scale``, else in the scaled space the networks work in."""
        network = self.network_
        device = next(network.parameters()).device

        def generate(rows):  # (batch, n_steps, C) for the rows' conditions
            z = self._noise(rows.stop - rows.start, n_steps, device, generator)
            c = None if conditions is None else torch.from_numpy(
                np.ascontiguousarray(conditions[rows])).to(device)
            piece = network(z, c).cpu().numpy()
            if original_scale:
                self.scaler_.inverse_transform_values(piece, inplace=True)
            return (piece,)

        with self._threads(), torch.inference_mode():
            network.eval()
            (out,) = map_rows(n, self.predict_batch_size, generate)
        return out

    def sample(self, n_samples, n_timesteps=None, y=None, random_state=None):
        """Draw ``n_samples`` synthetic sequences in the original scale.

        Parameters
        ----------
        n_samples : int
        n_timesteps : int or None
            Length of every sequence. None: the training length when it was constant, otherwise
            lengths drawn from the training lengths (and a list of arrays is returned).
        y : None or array of shape (n_samples,) / (n_samples, n_attributes)
            Conditions, for a model fitted with ``y``. Omitted with class labels: labels are drawn
            with the training class frequencies (see ``sample_labels_`` after the call).
        random_state : int, RandomState or None
            Seed for the noise and drawn lengths; the same seed gives the same sequences.

        Returns
        -------
        float32 ndarray of shape (n_samples, n_timesteps, n_features), or a list of
        (T_i, n_features) float32 arrays when lengths vary. For a model fitted on token
        sequences, a list of token lists (the most likely known token at each step).
        """
        self._check_is_fitted()
        n_samples = check_count(n_samples, "n_samples")
        n_timesteps = check_count(n_timesteps, "n_timesteps", allow_none=True)
        rng = np.random.default_rng(seeds(random_state, derive=False)[0])
        if y is None and self.condition_kind_ == "labels":
            y = self.sample_labels_ = self.conditions_.draw_labels(n_samples, rng)
        conditions = self.conditions_.transform(y, n_samples)
        variable = n_timesteps is None and not np.all(self.lengths_ == self.lengths_[0])
        lengths = (rng.choice(self.lengths_, size=n_samples) if variable else
                   np.full(n_samples, int(self.lengths_[0] if n_timesteps is None else n_timesteps)))
        generator = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        values = self._generate(n_samples, int(lengths.max()), conditions, generator,
                                original_scale=True)
        if self._tokens:
            return self._tokens_of(values, lengths)
        if variable:
            return [values[i, :length].copy() for i, length in enumerate(lengths)]
        return values

    # ----------------------------------------------------------------- data -> outputs
    def _require_timegan(self, method: str) -> None:
        if self.architecture != "timegan":
            raise ValueError(f"{method} needs the embedder of architecture='timegan'; this model "
                             f"is architecture={self.architecture!r}.")

    def transform(self, X) -> np.ndarray:
        """TimeGAN's per-step latent embedding of ``X``: float32, (n_sequences, n_timesteps,
        latent_dim), NaN after each end (a list of (T_i, latent_dim) arrays for list input)."""
        self._require_timegan("transform")
        seqs = self._validate_data(X, reset=False)
        (codes,) = self._map_batches(
            seqs, self._in_scaled_space(lambda v, n: (self.network_.embed(v),)), per_step=(True,))
        return restore_layout(X, codes, seqs.lengths)

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit on ``X`` (and conditions ``y``) and return :meth:`transform` of ``X``."""
        return self.fit(X, y).transform(X)

    def reconstruct(self, X):
        """Embed and recover ``X`` (TimeGAN's autoencoder): float32, original scale, laid out
        like ``X``."""
        self._require_timegan("reconstruct")
        seqs = self._validate_data(X, reset=False)
        (values,) = self._map_batches(
            seqs, self._in_scaled_space(
                lambda v, n: (self.network_.recovery(self.network_.embed(v)),)),
            per_step=(True,))
        values = self.scaler_.inverse_transform_values(values, inplace=True)
        if self._tokens:
            return self._tokens_of(values, seqs.lengths)
        return restore_layout(X, values, seqs.lengths)

    def decision_function(self, X, y=None) -> np.ndarray:
        """The discriminator's mean probability that each sequence is synthetic, float64 of
        shape (n_sequences,). Higher = less like the training data (PyOD's sign).

        TimeGAN scores with its latent discriminator, RCGAN with its only one; the diffusion
        model has none. A discriminator separates the data from the generator's current samples,
        not from anomalies: use SequenceAnomalyDetector to find outliers."""
        seqs = self._validate_data(X, reset=False)
        if self.architecture == "diffusion":
            raise ValueError("decision_function needs a discriminator; architecture='diffusion' "
                             "has none. Fit architecture='timegan' or 'rcgan' for one.")
        conditions = self.conditions_.transform(y, len(seqs))

        @self._in_scaled_space
        def score(v, n, c=None):
            logits = self.network_.discriminate_data(v, n, c)  # (batch, time)
            mask = step_mask(n, v.size(1))
            return (((1 - torch.sigmoid(logits)) * mask).sum(1) / n,)

        (scores,) = self._map_batches(seqs, score, per_step=(False,), extra=conditions)
        return scores.astype(np.float64)

    def score_samples(self, X, y=None) -> np.ndarray:
        """Negated :meth:`decision_function` (scikit-learn's sign: lower = more abnormal)."""
        return -self.decision_function(X, y)

    # ----------------------------------------------------------------- persistence
    def _get_state(self):
        document, arrays = super()._get_state()
        conditions_document, conditions_arrays = self.conditions_.get_state()
        document.update(conditions_document, diversity_ratio=self.diversity_ratio_)
        arrays.update(conditions_arrays, lengths=self.lengths_.astype(np.int64))
        return document, arrays

    def _set_state(self, document, arrays):
        self._set_conditions(ConditionEncoder.from_state(document, arrays))
        self.lengths_ = np.asarray(arrays["lengths"], dtype=np.int64)
        self.diversity_ratio_ = float(document["diversity_ratio"])
        super()._set_state(document, arrays)
