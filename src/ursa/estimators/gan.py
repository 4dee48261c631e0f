"""RecurrentGAN: synthetic sequences (TimeGAN or a plain recurrent GAN), optionally conditional."""

from __future__ import annotations

import contextlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .._params import Instance, Interval, Options
from ..data import Sequences, SequenceScaler, restore_layout
from ..networks.gan import ARCHITECTURES, GANConfig, build_gan
from ..networks.recurrent import step_mask
from ..persistence import register
from ..training.adversarial import Counters, OptimizerSet, Phase, train_phases
from .base import COMMON_CONSTRAINTS, BaseSequenceEstimator

__all__ = ["RecurrentGAN"]

_SHARED = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout", "latent_dim",
           "batch_size", "learning_rate", "max_grad_norm", "scaling", "random_state", "device",
           "verbose", "n_threads", "checkpoint_dir", "checkpoint_every")

# Below this ratio of synthetic to real mean pairwise distance, fit warns of mode collapse.
COLLAPSE_RATIO = 0.3

# TimeGAN's data-space discriminator weight when ``data_weight`` is None.
DEFAULT_DATA_WEIGHT = 1.0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (batch, time[, features]) over valid steps (mask (batch, time))."""
    if values.dim() == 3:
        mask = mask.unsqueeze(-1).expand_as(values)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def _mse(a, b, mask):
    return _masked_mean((a - b) ** 2, mask)


def _bce(logits, target: float, mask):
    loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target),
                                              reduction="none")
    return _masked_mean(loss, mask)


def _batch_moments(values, mask):
    """Per-(step, feature) statistics over the batch, counting only valid steps: returns
    (centred values, zero at padded steps; mean (time, features); count (time, 1))."""
    m = mask.unsqueeze(-1)  # (batch, time, 1)
    count = m.sum(0).clamp(min=1.0)  # (time, 1)
    mean = (values * m).sum(0) / count  # (time, features)
    return (values - mean) * m, mean, count


def _moment_loss(fake, real, mask):
    """TimeGAN's moment loss: mean |std_fake - std_real| + mean |mean_fake - mean_real|, with the
    moments taken over the batch for every (step, feature)."""
    (centred_f, mean_f, count), (centred_r, mean_r, _) = (_batch_moments(fake, mask),
                                                          _batch_moments(real, mask))
    var_f = (centred_f ** 2).sum(0) / count
    var_r = (centred_r ** 2).sum(0) / count
    valid = (mask.sum(0) > 0).float().unsqueeze(-1).expand_as(mean_f)
    std_gap = (torch.sqrt(var_f + 1e-6) - torch.sqrt(var_r + 1e-6)).abs()
    mean_gap = (mean_f - mean_r).abs()
    denom = valid.sum().clamp(min=1.0)
    return ((std_gap + mean_gap) * valid).sum() / denom


def _covariance_loss(fake, real, mask):
    """Mean absolute gap between the fake and real cross-feature covariances, each taken over
    the batch at every step: the off-diagonal entries only (the moment loss matches the
    variances). 0 for a single feature."""
    n_features = fake.size(-1)
    if n_features < 2:
        return fake.new_zeros(())

    def covariance(values):
        centred, _, count = _batch_moments(values, mask)
        return torch.einsum("btc,btd->tcd", centred, centred) / count[..., None]

    off = 1.0 - torch.eye(n_features, device=fake.device)
    valid = (mask.sum(0) > 1).float()[:, None, None] * off  # (time, features, features)
    gap = (covariance(fake) - covariance(real)).abs()
    return (gap * valid).sum() / valid.sum().clamp(min=1.0)


def _mmd_loss(fake, real, mask, scales=(0.25, 1.0, 4.0)):
    """Squared maximum mean discrepancy between the batch's fake and real sequences (each
    flattened over its valid steps), with a sum of Gaussian kernels whose widths are multiples
    of the mean squared distance between the real sequences (the mean, unlike the median, stays
    wide when the data has separate modes, so the widest kernel reaches across them). Unlike the
    moment losses it compares whole sequences: a part of the data the generator leaves out
    raises it, and fake sequences that crowd together repel each other (the fake-fake term)."""
    m = mask.unsqueeze(-1)
    return _gaussian_mmd((fake * m).flatten(1), (real * m).flatten(1), scales)


def _feature_mmd_loss(fake, real, mask, scales=(0.25, 1.0, 4.0)):
    """Mean over the features of the squared MMD between the batch's fake and real sequences of
    that feature alone (kernel widths from that feature's own real-to-real distances). In the
    whole-sequence MMD a feature weighs as one of many, and features that move together
    outweigh it; here each one is matched on its own."""
    m = mask.unsqueeze(-1)
    return _gaussian_mmd((fake * m).permute(2, 0, 1), (real * m).permute(2, 0, 1), scales).mean()


def _gaussian_mmd(a, b, scales):
    """Squared MMD between the rows of ``a`` (fake) and ``b`` (real), each (..., n, d): leading
    dimensions are independent groups. The kernel is a sum of Gaussians whose widths are
    ``scales`` times the mean squared distance between the rows of ``b``."""
    last = (-2, -1)  # the (row, row) dimensions of each group's distance matrix
    both = torch.cat([a, b], dim=-2)
    d2 = torch.cdist(both, both).pow(2)
    n = a.size(-2)
    width = (d2[..., n:, n:].detach().sum(last) / max(1, n * (n - 1))).clamp(min=1e-6)
    k = sum(torch.exp(-d2 / (s * width[..., None, None])) for s in scales)
    return k[..., :n, :n].mean(last) + k[..., n:, n:].mean(last) - 2 * k[..., :n, n:].mean(last)


class _InlineExecutor:
    """Runs each submitted call at once, in the calling thread: ``step_threads=1``."""

    class _Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    def submit(self, fn, *args, **kwargs):
        return self._Done(fn(*args, **kwargs))


@contextlib.contextmanager
def _step_executor(threads: int, share_cores: bool):
    """What the joint step hands its independent parts to: the calling thread itself when
    ``threads`` is 1; when it is 2, a second thread, which runs with the calling thread's intra-op
    thread count (OpenMP keeps that count per thread). With ``share_cores`` the two threads
    split that count between them (at least one each) for the duration."""
    if threads < 2:
        yield _InlineExecutor()
        return
    before = torch.get_num_threads()
    count = max(1, before // 2) if share_cores else before
    torch.set_num_threads(count)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="ursa-gan-step",
                                initializer=torch.set_num_threads, initargs=(count,)) as executor:
            yield executor
    finally:
        torch.set_num_threads(before)


def _available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Adversary(NamedTuple):
    """A discriminator of TimeGAN's joint phase, as the joint step uses it."""

    name: str  # "" for the latent discriminator, "data_" for the data-space one: loss-name prefix
    discriminate: Callable  # (values, lengths, conditions) -> per-step logits
    weight: float  # of its term in the generator's loss
    optimizer: torch.optim.Optimizer
    params: tuple


class _WeightAverage:
    """Exponential moving average of some modules' parameters (Polyak averaging of a GAN's
    generator), started from the weights at the first update."""

    def __init__(self, modules, decay: float):
        self.params = [p for m in modules for p in m.parameters()]
        self.decay = decay
        self.updates = 0
        self.average = None

    def update(self) -> None:
        with torch.no_grad():
            current = [p.detach() for p in self.params]
            if self.average is None:
                self.average = [p.clone() for p in current]
            self.updates += 1
            # Short runs average over a shorter horizon (the usual warm-up of the decay).
            decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
            for average, weight in zip(self.average, current):
                average.lerp_(weight, 1.0 - decay)

    def state_dict(self) -> dict:
        average = {} if self.average is None else {str(i): a for i, a in enumerate(self.average)}
        return {"updates": self.updates, **average}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.average = None
        if self.updates:
            self.average = [state[str(i)].to(p.device, p.dtype) for i, p in enumerate(self.params)]

    def copy_to_modules(self) -> None:
        if self.average is None:
            return
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                p.copy_(a)


@register
class RecurrentGAN(BaseSequenceEstimator):
    """Recurrent generative adversarial network for sequences (TimeGAN by default).

    ``architecture="timegan"`` (Yoon et al., NeurIPS 2019) trains in three phases: (1) an embedder
    and a recovery network as an autoencoder into a latent sequence space; (2) a supervisor that
    predicts the next latent step, teaching the latent dynamics; (3) jointly: the generator (noise
    -> latent sequence, refined by the supervisor) against a discriminator on latent sequences, with
    the supervised loss and a moment-matching loss, while the autoencoder keeps being refined.
    ``architecture="rcgan"`` is a plain recurrent generator and discriminator on the data (Esteban
    et al. 2017), for comparison; it runs only the adversarial phase.

    Conditional generation: ``fit(X, y)`` with class labels (1-D integers or strings) or static
    attributes (a 2-D float array, one row per sequence); the condition is fed to the generator,
    supervisor and discriminator at every step, and ``sample(n, y=...)`` draws for given conditions.

    Parameters
    ----------
    architecture : {"timegan", "rcgan"}, default="timegan"
    cell : {"rnn", "gru", "lstm"}, default="gru"
        Recurrent cell of every network. torch's CPU LSTM kernel is fused, so "lstm" trains
        faster on a CPU (a short Stocks fit, 300 joint iterations: 46-48 s against 68 s), but
        its samples scored worse (benchmarks/generation.py, seed 0, discriminative / predictive):
        Sines 0.065 / 0.099 against 0.026 / 0.096, Stocks 0.199 / 0.037 against 0.035 / 0.037.
    hidden_size : int, default=32
        Units per recurrent layer. The reference TimeGAN uses 24, but on a CPU 32 costs no more
        time per iteration: torch's CPU GRU applies its gate nonlinearities in place on slices
        ``hidden_size`` wide, and those run vectorised only when the width is a multiple of 32
        (AVX-512; an in-place sigmoid on a (256, 24) slice of a (256, 72) tensor takes 35 µs, on
        a (256, 32) slice of a (256, 96) one 7 µs). A 2-layer GRU's forward and backward on a
        (384, 24, 24) batch take 29 ms at both widths (on an AVX-512 CPU; on an AMD EPYC with
        AVX2 only, a default fit took 1931 s against 1535 s on the Intel machine, and width 24
        has not been timed there). With 32 (and ``latent_dim`` 32) the
        samples scored better (benchmarks/generation.py ``--hidden-size 32``, 10 repeats,
        discriminative / predictive, training seeds 0 and 1, on a 2-core Intel Xeon): Sines
        0.020 / 0.0934 and 0.018 / 0.0949, Stocks 0.025 / 0.0366 and 0.057 / 0.0371. With 24: Sines
        0.026 / 0.096 (0.049 discriminative on the Intel machine, 5 repeats) and 0.041 / 0.097,
        Stocks 0.046 / 0.037 (Intel) and 0.074 / 0.037; unmarked figures are from a 2-core AMD
        EPYC. Seed 2, measured at 32 only: Sines 0.054 / 0.1147 (train-on-real 0.0938), Stocks
        0.027 / 0.0378. The comparisons quoted under the other parameters were measured with
        ``hidden_size`` and ``latent_dim`` 24.
    num_layers : int, default=2
        Layers per network (the supervisor has one less). The reference uses 3; on a CPU core 2
        layers train about 1.5 times as many iterations in the same time and scored no worse.
    bidirectional : bool, default=False
        Bidirectional discriminator. Generation stays causal in any case.
    dropout : float, default=0.0
    latent_dim : int, default=32
        Size of TimeGAN's latent (embedding) space per time step (the reference's equals its
        ``hidden_size``, 24; 32 here for the same reason as ``hidden_size``).
    noise_dim : int or None, default=None
        Noise channels per step; None uses the number of features (as the reference does). One
        channel (beside the per-sequence noise) was measured at 10,000 iterations
        (benchmarks/generation.py, discriminative / predictive): Stocks 0.015 / 0.037 on seed 0
        but 0.076 / 0.037 on seed 1 (default 0.035 and 0.074), Sines 0.041 / 0.095 on seed 0
        (default 0.026 / 0.096): no better across seeds, so the default stays.
    static_noise_dim : int or None, default=None
        Noise channels drawn once per sequence and fed to the generator at every step, beside the
        per-step noise; None uses the number of features, 0 turns it off (the reference TimeGAN
        has per-step noise only). Sequences that differ by a few per-sequence factors (a frequency
        and phase per feature in Sines, a level per window in Stocks) get them directly instead of
        having to accumulate them from per-step noise: on Sines the reference's noise gave
        features that moved together (correlation 0.99 between features, 0.47 in the data);
        with one static channel per feature the discriminative score went from 0.176 to 0.112
        (6000 joint iterations, benchmarks/generation.py).
    iterations : int, default=10000
        Iterations of the joint adversarial phase (the reference runs 50,000). The defaults train
        in about 25 minutes on one core of this project's benchmark machine (2-core AMD EPYC: 1464
        to 1528 s of CPU on Sines and Stocks; on a 2-core Intel Xeon at 2.8 GHz with nothing else
        running, 1783 s on Stocks; a slower machine seen took 35 minutes for 8000), see
        benchmarks/RESULTS.md. Those times were measured with ``hidden_size`` 24; with 32, the
        default, the Intel machine took 1535 s on Sines and 1567 s on Stocks, each fit alone, but
        a 2-core AMD EPYC without AVX-512 (Zen 3) took 1931 s on Sines (seed 2, alone) and one
        with AVX-512 (Zen 4) 1676 s on Sines and 1664 s on Stocks (seed 0). A second torch
        thread makes a fit slower; a second step thread (``step_threads``, the default on two
        cores) brought the Zen 4 machine's fits to 823 s (Stocks) and 872-906 s (Sines) with an
        earlier step order, and 903 s (Sines, seed 0) with the current one; on a 2-core Intel
        Xeon with AVX-512 and AMX, 705 s (Sines) and 628 s (Stocks), seed 0.
        Twice the joint iterations (20,000, 1806 s there) scored no better on Sines (one fit,
        seed 0, of the joint-step order that rounded differently, see ``step_threads``:
        discriminative 0.056, 0.040 and 0.055 after 10,000, 15,000 and 20,000; predictive 0.097,
        0.098 and 0.104).
        Measured against 8000 iterations (10 repeats; discriminative / predictive, training seeds
        0 and 1): Sines 0.026 / 0.096 and 0.041 / 0.097 against 0.048 / 0.104 and 0.040 /
        0.099; Stocks 0.035 / 0.037 and 0.074 / 0.037 against 0.043 / 0.037 and
        0.115 / 0.038.
    generator_steps : int, default=1
        TimeGAN only: generator and embedder updates per discriminator update in the joint phase
        (the reference's 2; at an equal number of generator updates it scored no better here).
        Each joint iteration makes ``generator_steps`` updates on fresh batches, so the joint
        phase costs about ``iterations * generator_steps`` updates.
    pretrain_iterations : int or None, default=1000
        Iterations of each of the two TimeGAN pretraining phases; None uses ``iterations``. The
        autoencoder keeps improving in the joint phase, so long pretraining buys little.
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        Adam's step size for every network (the reference's).
    max_grad_norm : float or None, default=None
        Gradient clipping threshold; None disables it (the reference does not clip).
    gamma : float, default=1.0
        Weight of the adversarial loss on unsupervised latent sequences (TimeGAN's gamma).
    supervised_weight : float, default=100.0
        Weight of sqrt(supervised loss) in the generator objective (TimeGAN's 100).
    moment_weight : float, default=100.0
        Weight of the moment-matching loss in the generator objective (TimeGAN's 100).
    covariance_weight : float, default=0.0
        Weight, in the generator objective, of the mean absolute gap between the synthetic and real
        cross-feature covariances at every step (TimeGAN's moment loss matches each feature's mean
        and spread, not how features move together). 0 leaves it out. Measured at 1000
        (benchmarks/generation.py, 10,000 iterations, seeds 0 and 1; discriminative / predictive):
        Sines, whose features are independent, 0.016 / 0.093 and 0.028 / 0.096 against 0.026 /
        0.096 and 0.041 / 0.097 without it; Stocks, whose prices move together, 0.115 / 0.037 and
        0.153 / 0.038 against 0.035 / 0.037 and 0.074 / 0.037. So it stays off by default.
    distribution_weight : float, default=0.0
        Weight, in the generator objective, of the squared maximum mean discrepancy (MMD) between
        the batch's synthetic and real data-space sequences (for TimeGAN, the recovered generator
        outputs), with Gaussian kernels on whole sequences. Adversarial training can drop part of
        the data without the discriminator's loss showing it (on Sines the generator made almost
        none of the fastest tenth of the frequencies); the MMD rises when part of the data is left
        out and makes synthetic sequences that crowd together repel each other. 0 leaves it out.
        Measured (benchmarks/generation.py, 10,000 iterations, 10 repeats; discriminative /
        predictive, training seeds 0 and 1), against 0.026 / 0.096 and 0.041 / 0.097 on Sines and
        0.035 / 0.037 and 0.074 / 0.037 on Stocks without it: at 10, Sines 0.015 / 0.094 and
        0.016 / 0.096, Stocks 0.014 / 0.037 and 0.015 / 0.041; at 100, Sines 0.018 / 0.093 and
        0.017 / 0.095, Stocks 0.025 / 0.050 and 0.057 / 0.045; at 3 (seed 1 only), Sines 0.027 /
        0.101, Stocks 0.063 / 0.037; at 10 on seed 2, Sines 0.020 / 0.094 and Stocks 0.043 /
        0.038 (default 0.031 / 0.094 and 0.068 / 0.038). At 10 and 100 the discriminative score
        falls on both data sets, and on Sines the predictive scores come within 0.001 of a
        predictor trained on the real data in the same runs; but on Stocks the predictive score
        rises past the TimeGAN paper's 0.038 on at least one seed, and 3 helps neither data set
        reliably, so it stays off by default. It costs about an eighth more time per joint
        iteration (one CPU core).
    feature_distribution_weight : float, default=0.0
        Weight of the mean over features of the same MMD taken on each feature's sequences
        alone. In the whole-sequence MMD above, one feature weighs as one of many, and features
        that move together (Stocks' five prices) outweigh the others (its Volume, the channel
        that the predictive score forecasts). 0 leaves it out. Measured with both weights at 10
        (benchmarks/generation.py, 10,000 iterations, 10 repeats; discriminative / predictive;
        in brackets ``distribution_weight=10`` alone, then the defaults): seed 1, Stocks 0.026 /
        0.038 (0.015 / 0.041; 0.074 / 0.037), Sines 0.017 / 0.096 (0.016 / 0.096; 0.041 / 0.097);
        seed 2, Stocks 0.018 / 0.044 (0.043 / 0.038; 0.068 / 0.038), Sines 0.024 / 0.096 (0.020
        / 0.094; 0.031 / 0.094). It mends Stocks' predictive score on one seed and breaks it on
        the other, so it stays off by default.
    data_weight : float or None, default=None
        TimeGAN only: weight, in the generator objective, of the adversarial loss of a second
        discriminator that reads data-space sequences (the recovery's outputs against the
        training data), as the post-hoc discriminative test does; TimeGAN's own discriminator
        reads latent sequences only. None uses 1.0 with ``architecture="timegan"`` and 0 with
        "rcgan" (whose discriminator reads the data already); 0 leaves it out, as the reference
        does. Measured (benchmarks/generation.py, 8000 iterations, 10 repeats; discriminative /
        predictive, training seeds 0 and 1): with 1.0, Stocks 0.043 / 0.037 and 0.115 / 0.038,
        Sines 0.048 / 0.104 and 0.040 / 0.099; with 0, Stocks 0.098 / 0.038 and 0.143 / 0.038,
        Sines 0.058 / 0.098 and 0.093 / 0.107; with 3.0 (seed 0), Stocks 0.058 / 0.042 and
        Sines 0.044 / 0.097. Each joint iteration costs about a quarter more (12.3 s per 100
        iterations without it, 15.4 s with it, on one core of one machine).
    ema_decay : float, default=0.999
        Sample with an exponential moving average of the generator's weights (and the
        supervisor's) over the adversarial phase instead of its last weights: the average smooths
        out the oscillation of adversarial training (Yazici et al., ICLR 2019). Update t uses the
        decay min(ema_decay, (1 + t) / (10 + t)), so after t iterations the average spans about
        min(1 / (1 - ema_decay), t / 9) of the latest ones (at 10,000 iterations, any value above
        about 0.9989 acts like 0.9989); 0 turns it off. Averaging changes
        only which weights sample, not the training: on Sines the same training run scored a
        discriminative 0.096 with its last weights and 0.058 averaged (predictive 0.098 both);
        on Stocks 0.094 and 0.098, within the metric's spread (benchmarks/generation.py).
    scaling : {"minmax", "standard", None}, default="minmax"
        Per-feature scaling fitted on the training data and inverted on output. With "minmax" the
        data-space outputs end in a sigmoid (values in [0, 1], as in the reference).
    output_margin : float, default=0.0
        With ``scaling="minmax"``: the data are scaled to [output_margin, 1 - output_margin]
        instead of [0, 1] (the sigmoid outputs still span [0, 1]). A sigmoid reaches 0 and 1 only
        in the limit, so with no margin the recovery can hardly produce the data's extremes.
        Samples may then reach ``output_margin / (1 - 2 * output_margin)`` of the data's range
        beyond its training minimum and maximum. Ignored with other scalings. Measured on
        Sines (benchmarks/RESULTS.md, 2026-12-03): a margin of 0.1 cut the autoencoder's error at
        the top of the range from 0.020 to 0.006 of the range, but the GAN's scores did not
        improve (seeds 0-1: discriminative 0.020 / 0.018, predictive 0.095 / 0.096). A margin
        of 0.03 gave seed 0 its best scores (0.012 / 0.0932), but over seeds 0-3 the scores
        spread as widely as the defaults' (discriminative 0.012-0.060). So the default stays 0.
    random_state : int, RandomState or None, default=None
        Seed; the same seed, data and machine give bit-identical fits on CPU.
    device : {"auto", "cpu", "cuda"}, default="auto"
    verbose : bool, default=False
        Progress bar over the training records.
    n_threads : int or None, default=None
        torch intra-op threads during fit and sampling; None keeps torch's setting (with
        ``step_threads`` 2, each of the two threads runs half of it during the fit, at least
        one). A second intra-op thread makes a fit slower (its matrices are too small to split);
        a second step thread makes it faster.
    step_threads : {1, 2} or "auto", default="auto"
        TimeGAN only: threads that run the independent parts of each joint iteration at once:
        the embedder beside the generator, the latent discriminator beside the data-space
        discriminator, and the generator's gradients beside the embedder's and the
        discriminators'. Each part runs the same operations in the same order either way, so
        the fit is the same, bit for bit, and the same as before this parameter existed. "auto"
        uses 2 on a CPU when this process may run on two cores or more, and 1 on a GPU (not
        measured there). Fits with ``dropout`` between layers run on one thread: dropout draws
        from torch's one generator, and two threads would make the order of the draws depend on
        timing. Measured on a 2-core Intel Xeon (Sines, ``n_threads=1``, 200 joint iterations):
        14.9 s per 100 joint iterations with 2 against 19.9 s with 1 (with ``n_threads=None``,
        two intra-op threads: 19.0 s and 25.5 s); that version also ran the latent
        discriminator beside the recovery, which a 2-core AMD EPYC (Zen 4) measured about 5 %
        faster (8.3 against 8.7 s per 100, four short fits each, within their spread) but which
        changed every fit at the level of float rounding. On that AMD EPYC, whole default fits
        of that version took 823 s (Stocks) and 872-906 s (Sines, seeds 0-2), against 1664 s
        and 1676 s on one thread; of the current version, 903 s (Sines) there and 705 s (Sines)
        and 628 s (Stocks) on a 2-core Intel Xeon with AMX, against 1535 s and 1567 s on one
        thread on an Intel Xeon (benchmarks/RESULTS.md, 2026-11-29 and 2026-12-04).
    callbacks : list of ursa.training.Callback, optional
        Called once per history record (not saved with the model).
    checkpoint_dir : str, path or None, default=None
        Write checkpoints to this folder: the networks, the five optimisers, the weight average,
        the position in the phases and in the current pass over the data, and the random-generator
        states. ``fit(X, resume=True)`` continues an interrupted fit and ends with the same model,
        bit for bit on CPU, as an uninterrupted one. On a GPU with ``num_layers > 1`` and
        ``dropout > 0`` the resumed weights differ from an uninterrupted fit's: cuDNN draws that
        dropout from a generator of its own, which no checkpoint can hold.
    checkpoint_every : int, default=1
        History records (of 100 iterations each) between checkpoints.

    Attributes
    ----------
    n_features_in_ : int
    scaler_ : ursa.data.SequenceScaler
    network_ : ursa.networks.gan.TimeGANNet or RCGANNet
        All networks in one module.
    history_ : list of dict
        One record per 100 iterations of a phase: ``phase`` ("embedding", "supervised", "joint" or
        "adversarial"), ``iteration``, the phase's losses averaged over those iterations and
        ``seconds``; ``train_loss`` repeats the phase's main loss.
    lengths_ : ndarray of shape (n_sequences,)
        Training lengths; ``sample`` draws lengths from them when they vary.
    classes_ : ndarray or None
        Class labels when fitted with labels.
    diversity_ratio_ : float
        Mean pairwise distance of synthetic sequences over that of training sequences (scaled
        data); near 0 means mode collapse (``fit`` warns below 0.3).

    Examples
    --------
    >>> import numpy as np, ursa
    >>> X = ursa.datasets.make_sines(64, n_timesteps=12, n_features=2, random_state=0)
    >>> gan = ursa.RecurrentGAN(hidden_size=8, latent_dim=4, num_layers=1, iterations=5,
    ...                         batch_size=16, random_state=0).fit(X)
    >>> gan.sample(3, random_state=0).shape
    (3, 12, 2)
    """

    # Files written before per-sequence noise existed hold generators without it; files written
    # before weight averaging (or the data discriminator, or the output margin) existed were
    # trained without it.
    _OLDER_FILES_PARAMS = {"static_noise_dim": 0, "ema_decay": 0.0, "data_weight": 0.0,
                           "output_margin": 0.0}

    _parameter_constraints = {
        **{k: COMMON_CONSTRAINTS[k] for k in _SHARED},
        "architecture": [Options(ARCHITECTURES)],
        "noise_dim": [Interval(int, 1), None],
        "static_noise_dim": [Interval(int, 0), None],
        "iterations": [Interval(int, 1)],
        "generator_steps": [Interval(int, 1)],
        "pretrain_iterations": [Interval(int, 0), None],
        "gamma": [Interval(float, 0.0)],
        "supervised_weight": [Interval(float, 0.0)],
        "moment_weight": [Interval(float, 0.0)],
        "data_weight": [Interval(float, 0.0), None],
        "covariance_weight": [Interval(float, 0.0)],
        "distribution_weight": [Interval(float, 0.0)],
        "feature_distribution_weight": [Interval(float, 0.0)],
        "ema_decay": [Interval(float, 0.0, 1.0, open_high=True)],
        "output_margin": [Interval(float, 0.0, 0.5, open_high=True)],
        "step_threads": [Interval(int, 1, 2), Options(("auto",))],
        "callbacks": [Instance((list, tuple)), None],
    }

    def __init__(
        self,
        architecture="timegan",
        cell="gru",
        hidden_size=32,
        num_layers=2,
        bidirectional=False,
        dropout=0.0,
        latent_dim=32,
        noise_dim=None,
        static_noise_dim=None,
        iterations=10000,
        generator_steps=1,
        pretrain_iterations=1000,
        batch_size=128,
        learning_rate=1e-3,
        max_grad_norm=None,
        gamma=1.0,
        supervised_weight=100.0,
        moment_weight=100.0,
        covariance_weight=0.0,
        distribution_weight=0.0,
        feature_distribution_weight=0.0,
        data_weight=None,
        ema_decay=0.999,
        scaling="minmax",
        output_margin=0.0,
        random_state=None,
        device="auto",
        verbose=False,
        n_threads=None,
        step_threads="auto",
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=1,
    ):
        self.architecture = architecture
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.latent_dim = latent_dim
        self.noise_dim = noise_dim
        self.static_noise_dim = static_noise_dim
        self.iterations = iterations
        self.generator_steps = generator_steps
        self.pretrain_iterations = pretrain_iterations
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.gamma = gamma
        self.supervised_weight = supervised_weight
        self.moment_weight = moment_weight
        self.covariance_weight = covariance_weight
        self.distribution_weight = distribution_weight
        self.feature_distribution_weight = feature_distribution_weight
        self.data_weight = data_weight
        self.ema_decay = ema_decay
        self.scaling = scaling
        self.output_margin = output_margin
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.n_threads = n_threads
        self.step_threads = step_threads
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    # ----------------------------------------------------------------- building
    def _config(self) -> GANConfig:
        return GANConfig(
            n_features=self.n_features_in_,
            architecture=self.architecture,
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            latent_dim=self.latent_dim,
            noise_dim=sum(self._noise_widths()),
            condition_dim=self._condition_dim(),
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            bounded_output=self.scaling == "minmax",
            data_discriminator=self._data_weight() > 0,
        )

    def _build_network(self):
        return build_gan(self._config())

    def _fit_scaler(self, seqs: Sequences) -> Sequences:
        if self.scaling != "minmax" or not self.output_margin:
            return super()._fit_scaler(seqs)
        margin = float(self.output_margin)
        self.scaler_ = SequenceScaler("minmax", feature_range=(margin, 1.0 - margin)).fit(seqs)
        return self.scaler_.transform(seqs)

    def _data_weight(self) -> float:
        """The data-space discriminator's weight: ``data_weight``, or its default for the
        architecture when None (TimeGAN only; rcgan's discriminator reads the data)."""
        if self.architecture != "timegan":
            return 0.0
        return DEFAULT_DATA_WEIGHT if self.data_weight is None else float(self.data_weight)

    def _condition_dim(self) -> int:
        if self.condition_kind_ == "labels":
            return len(self.classes_)
        if self.condition_kind_ == "attributes":
            return len(self.condition_offset_)
        return 0

    # ----------------------------------------------------------------- conditions
    def _fit_condition(self, y, n: int) -> np.ndarray | None:
        """Learn how to encode ``y``; return the encoded (n, k) float32 conditions or None."""
        self.classes_ = None
        self.class_counts_ = None
        self.condition_offset_ = None
        self.condition_scale_ = None
        if y is None:
            self.condition_kind_ = None
            return None
        y = self._check_y_array(y, n)
        if y.ndim == 1:
            self.condition_kind_ = "labels"
            self.classes_, self.class_counts_ = np.unique(y, return_counts=True)
        else:
            self.condition_kind_ = "attributes"
            values = y.astype(np.float64)
            self.condition_offset_ = values.mean(axis=0).astype(np.float32)
            scale = values.std(axis=0)
            self.condition_scale_ = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        return self._encode_condition(y, n)

    @staticmethod
    def _check_y_array(y, n: int) -> np.ndarray:
        if isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
            raise TypeError(f"y must be a 1-D array of class labels or a 2-D array of static "
                            f"attributes, got {type(y).__name__}.")
        y = np.asarray(y)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D (class labels) or 2-D (static attributes, one row per "
                             f"sequence), got {y.ndim} dimensions with shape {y.shape}.")
        if len(y) != n:
            raise ValueError(f"y has {len(y)} rows but there are {n} sequences; pass one label or "
                             "attribute row per sequence.")
        if y.ndim == 1 and y.dtype.kind == "f":
            if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                y = y.astype(np.int64)  # integral floats are class labels
            else:
                y = y[:, None]  # a single continuous attribute
        if y.ndim == 2:
            if y.dtype.kind not in "biuf":
                raise TypeError(f"2-D y (static attributes) must hold numbers, got dtype {y.dtype}.")
            bad = np.argwhere(~np.isfinite(y.astype(np.float64)))
            if len(bad):
                raise ValueError(f"y[{bad[0][0]}] contains NaN or an infinite value at column "
                                 f"{bad[0][1]}; pass finite attributes.")
        elif y.dtype.kind not in "biuUSO":
            raise TypeError(f"1-D y (class labels) must hold integers or strings, got {y.dtype}.")
        return y

    def _encode_condition(self, y, n: int) -> np.ndarray | None:
        if self.condition_kind_ is None:
            if y is not None:
                raise ValueError("y was given, but this model was fitted without conditions; fit "
                                 "with fit(X, y) to generate conditionally.")
            return None
        if y is None:
            raise ValueError("This model was fitted with conditions: pass y (one condition per "
                             "sequence).")
        y = self._check_y_array(y, n)
        if self.condition_kind_ == "labels":
            if y.ndim != 1:
                raise ValueError(f"y must be 1-D class labels for this model (fitted with labels "
                                 f"{self.classes_.tolist()}), got shape {y.shape}.")
            if self.classes_.dtype.kind in "iu" and y.dtype.kind not in "iu":
                raise ValueError(f"y must hold integer labels from {self.classes_.tolist()}.")
            codes = np.searchsorted(self.classes_, y)
            codes = np.clip(codes, 0, len(self.classes_) - 1)
            unknown = np.flatnonzero(self.classes_[codes] != y)
            if len(unknown):
                i = unknown[0]
                raise ValueError(f"y[{i}] = {y[i].item()!r} is not a class seen in fit; use one of "
                                 f"{self.classes_.tolist()}.")
            return np.eye(len(self.classes_), dtype=np.float32)[codes]
        if y.ndim != 2 or y.shape[1] != len(self.condition_offset_):
            raise ValueError(f"y must have shape (n, {len(self.condition_offset_)}) (the static "
                             f"attributes seen in fit), got {y.shape}.")
        return ((y.astype(np.float32) - self.condition_offset_) / self.condition_scale_).astype(
            np.float32)

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y=None, *, resume=False):
        """Fit the GAN on sequences ``X``.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features])
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
        if self.architecture == "rcgan" and self.data_weight:
            raise ValueError(f"data_weight={self.data_weight!r} applies to architecture='timegan' "
                             "only: rcgan's discriminator already reads the data. Leave "
                             "data_weight=None (or 0).")
        seqs = self._validate_data(X, reset=True)
        conditions = self._fit_condition(y, len(seqs))
        scaled = self._fit_scaler(seqs)
        self.lengths_ = seqs.lengths.copy()
        device = self._device()
        with self._fit_context() as rng:
            network = self._build_network()
            network.to(device)
            c_all = None if conditions is None else torch.from_numpy(conditions).to(device)
            callbacks = self._callbacks(seqs, resume=resume, targets=conditions)
            threads = self._step_threads(device)
            with _step_executor(threads, share_cores=self.n_threads is None) as executor:
                phases, optimizers, stateful = self._phases(network, c_all, executor)
                history = train_phases(network, phases, scaled, batch_size=self.batch_size,
                                       rng=rng, device=device, callbacks=callbacks,
                                       optimizer=OptimizerSet(optimizers), stateful=stateful)
            if "average" in stateful:  # sample with the averaged generator
                stateful["average"].copy_to_modules()
            self.network_ = network
            self._set_history(history)
            self.diversity_ratio_ = self._diversity(scaled, conditions, rng)
        if self.diversity_ratio_ < COLLAPSE_RATIO:
            warnings.warn(
                f"Possible mode collapse: synthetic sequences are {self.diversity_ratio_:.2f} times "
                "as diverse as the training data (mean pairwise distance). Train longer, lower "
                "learning_rate or try another random_state.", UserWarning, stacklevel=2)
        return self

    def _noise(self, n: int, n_steps: int, device, generator=None) -> torch.Tensor:
        dim, static_dim = self._noise_widths()
        z = torch.rand(n, n_steps, dim, generator=generator)  # U(0, 1) as in the reference
        if static_dim:
            static = torch.rand(n, 1, static_dim, generator=generator)  # one draw per sequence
            z = torch.cat([z, static.expand(-1, n_steps, -1)], dim=-1)
        return z.to(device)

    def _noise_widths(self) -> tuple[int, int]:
        """(per-step, per-sequence) noise channels; None means one per feature."""
        static = self.n_features_in_ if self.static_noise_dim is None else self.static_noise_dim
        return self.noise_dim or self.n_features_in_, static

    def _optimizer(self, *modules):
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=self.learning_rate), params

    def _update(self, optimizer, params, loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        optimizer.step()

    def _apply(self, optimizer, params, grads):
        for p, g in zip(params, grads):
            p.grad = g
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        optimizer.step()

    def _step_threads(self, device) -> int:
        """``step_threads`` with "auto" resolved (2 on a CPU with two cores or more for this
        process, else 1), and 1 whatever it says where the parts draw random numbers (dropout
        between recurrent layers) or the architecture has no joint step (rcgan)."""
        if self.architecture != "timegan" or (self.dropout > 0 and self.num_layers > 1):
            return 1
        if self.step_threads != "auto":
            return int(self.step_threads)
        return 2 if torch.device(device).type == "cpu" and _available_cores() >= 2 else 1

    def _phases(self, net, c_all, executor) -> tuple[list[Phase], list, dict]:
        """The training phases, every optimiser they step, and the state they keep between
        steps (for checkpoints): ``stateful["average"]`` is the generator's weight average.
        ``executor`` (``submit(fn, *args).result()``, from :func:`_step_executor`) runs the
        joint step's independent parts."""
        pre = self.iterations if self.pretrain_iterations is None else self.pretrain_iterations
        cond = (lambda index: None) if c_all is None else (
            lambda index: c_all[torch.from_numpy(index).to(c_all.device)])
        # The sampling path's adversarially trained part. TimeGAN's recovery is left out: it is
        # trained as the embedder's decoder, and averaging it too scored no better on Sines.
        sampling = [net.generator] if self.architecture == "rcgan" else [net.generator,
                                                                         net.supervisor]
        stateful = {"average": _WeightAverage(sampling, self.ema_decay)} if self.ema_decay else {}
        average = stateful.get("average")
        if self.architecture == "rcgan":
            step, optimizers = self._rcgan_step(net, cond, average)
            return [Phase("adversarial", self.iterations, step)], optimizers, stateful

        opt_ae, p_ae = self._optimizer(net.embedder, net.recovery)
        opt_sup, p_sup = self._optimizer(net.generator, net.supervisor)
        opt_gen, p_gen = self._optimizer(net.generator, net.supervisor)
        opt_joint_ae, _ = self._optimizer(net.embedder, net.recovery)
        optimizers = [opt_ae, opt_sup, opt_gen, opt_joint_ae]
        p_gen, p_ae = tuple(p_gen), tuple(p_ae)
        gamma, w_sup, w_mom = self.gamma, self.supervised_weight, self.moment_weight
        # The adversaries of the joint phase (see _Adversary). What each reads is chosen by name
        # in joint_step: the latent discriminator reads the generator's latents after and
        # before the supervisor (the second weighted by gamma) against the embedded data; the
        # data-space discriminator (``data_weight``) reads the recovered synthetic sequences
        # against the data, and its gradient reaches the generator through the recovery.
        adversaries = []
        for name, discriminator, discriminate, weight in [
                ("", net.discriminator, net.discriminate, 1.0),
                ("data_", net.data_discriminator, net.discriminate_data_space,
                 self._data_weight())]:
            if discriminator is None or not weight:
                continue
            optimizer, params = self._optimizer(discriminator)
            optimizers.append(optimizer)
            adversaries.append(_Adversary(name, discriminate, weight, optimizer, tuple(params)))
        latent, *data_space = adversaries  # TimeGAN always has the latent discriminator
        # Kept between joint steps (and in checkpoints): steps taken, the latest loss of each
        # discriminator.
        stateful["joint"] = counters = Counters(calls=0)
        for adversary in adversaries:
            counters[adversary.name + "discriminator_loss"] = float("nan")

        def supervised_term(h, c, mask):
            h_sup = net.supervise(h, c)
            return _mse(h_sup[:, :-1], h[:, 1:], mask[:, 1:])

        def embedding_step(x, lengths, index):
            mask = step_mask(lengths, x.size(1))
            recon = _mse(net.recovery(net.embed(x)), x, mask)
            self._update(opt_ae, p_ae, 10 * torch.sqrt(recon))
            return {"reconstruction_loss": recon.item()}

        def supervised_step(x, lengths, index):
            mask = step_mask(lengths, x.size(1))
            with torch.no_grad():
                h = net.embed(x)
            loss = supervised_term(h, cond(index), mask)
            self._update(opt_sup, p_sup, loss)
            return {"supervised_loss": loss.item()}

        g_steps = self.generator_steps

        def adversary_terms(adversary, fakes, real, lengths, mask, c, train_disc):
            """One adversary's call on the synthetic inputs (and the real one when it trains):
            (its fooled term, its weighted generator term, its loss or None)."""
            batch = real.size(0)
            inputs = [v for v, _ in fakes] + ([real] if train_disc else [])
            logits = adversary.discriminate(
                torch.cat(inputs), lengths.repeat(len(inputs)),
                None if c is None else c.repeat(len(inputs), 1))
            logits = logits.split(batch)  # one (batch, time) part per input
            # (A weight of 1.0 multiplies exactly: the reference's unweighted terms.)
            terms = [_bce(part, 1.0, mask) for part in logits[:len(fakes)]]
            fooled = term = terms[0]
            for (_, w), extra in zip(fakes[1:], terms[1:]):
                term = term + w * extra
            d_loss = None
            if train_disc:
                d_loss = _bce(logits[-1], 1.0, mask)
                for (_, w), part in zip(fakes, logits):
                    d_loss = d_loss + w * _bce(part, 0.0, mask)
            return fooled, adversary.weight * term, d_loss

        def joint_step(x, lengths, index):
            # One forward graph serves all three objectives; each optimiser gets only its own
            # gradients, and every gradient is taken before any parameter changes. As in the
            # reference, the discriminator is updated once per ``generator_steps`` generator and
            # embedder updates, and only while its loss is above 0.15.
            # Independent parts run through ``executor`` (a second thread, or one after another,
            # see ``step_threads``): the embedder beside the generator, the latent discriminator
            # beside the data-space discriminator, the generator's gradients beside the
            # embedder's and the discriminators'. Each part's operations and their order are the
            # same either way, so the fit is too.
            train_disc = counters["calls"] % g_steps == 0  # the first of every g_steps calls
            counters["calls"] += 1
            mask = step_mask(lengths, x.size(1))
            c = cond(index)
            batch = x.size(0)
            z = self._noise(batch, x.size(1), x.device)
            embedded = executor.submit(net.embed, x)
            e_hat = net.generate_latent(z, c)  # (batch, time, latent)
            h = embedded.result()  # (batch, time, latent)
            # The supervisor and the recovery each read real and synthetic latents in one call:
            # rows are independent, and one call on 2 * batch costs far less than two on batch.
            c2 = None if c is None else c.repeat(2, 1)
            h_sup, h_hat = net.supervise(torch.cat([h, e_hat]), c2).split(batch)
            sup = _mse(h_sup[:, :-1], h[:, 1:], mask[:, 1:])
            # The recovery and its losses come before the adversaries: autograd adds up the
            # gradients that reach a tensor from several consumers (h_hat, x_hat) in an order
            # set by when those consumers were created, so this order keeps the rounding, and
            # so every fit, of the step as it was before ``step_threads``. (Running the latent
            # discriminator first, beside the recovery, was about 5 % faster but changed every
            # fit from the first joint iteration at the level of float rounding.)
            x_tilde, x_hat = net.recovery(torch.cat([h, h_hat])).split(batch)
            recon = _mse(x_tilde, x, mask)
            moment = _moment_loss(x_hat, x, mask)
            # Per adversary: the synthetic inputs with their weights, then the real input. A
            # discriminator's parameters do not change in the generator update, so one call on
            # all of them serves both losses.
            read = (lengths, mask, c, train_disc)
            latent_terms = executor.submit(adversary_terms, latent,
                                           [(h_hat, 1.0), (e_hat, gamma)], h.detach(), *read)
            terms = {adversary.name: adversary_terms(adversary, [(x_hat, 1.0)], x, *read)
                     for adversary in data_space}
            terms[latent.name] = latent_terms.result()
            # The latent adversary's term comes first, as in the reference's loss.
            g_loss = terms[latent.name][1] + w_sup * torch.sqrt(sup + 1e-12) + w_mom * moment
            matching = self._matching_terms(x_hat, x, mask)
            for weight, term in matching.values():
                g_loss = g_loss + weight * term
            for adversary in data_space:
                g_loss = g_loss + terms[adversary.name][1]
            e_loss = 10 * torch.sqrt(recon) + 0.1 * sup
            losses = {"generator_loss": terms[latent.name][0].item(),
                      "supervised_loss": sup.item(), "moment_loss": moment.item(),
                      "reconstruction_loss": recon.item()}
            for adversary in data_space:
                losses[adversary.name + "generator_loss"] = terms[adversary.name][0].item()
            losses.update({key: term.item() for key, (_, term) in matching.items()})
            # Every gradient retains the graph: the other thread may still be reading it (it is
            # freed when this step returns).
            g_grads = executor.submit(torch.autograd.grad, g_loss, p_gen, retain_graph=True,
                                      allow_unused=True)
            e_grads = torch.autograd.grad(e_loss, p_ae, retain_graph=True, allow_unused=True)
            updates = []
            for adversary in adversaries:
                d_loss = terms[adversary.name][2]
                if d_loss is None:
                    continue
                key = adversary.name + "discriminator_loss"
                counters[key] = d_loss.item()
                if counters[key] > 0.15:  # skipped once D is well ahead
                    updates.append((adversary.optimizer, adversary.params, torch.autograd.grad(
                        d_loss, adversary.params, retain_graph=True, allow_unused=True)))
            g_grads = g_grads.result()
            for optimizer, params, grads in updates:
                self._apply(optimizer, params, grads)
            for adversary in adversaries:  # the latest step of each discriminator
                key = adversary.name + "discriminator_loss"
                losses[key] = counters[key]
            self._apply(opt_gen, p_gen, g_grads)
            self._apply(opt_joint_ae, p_ae, e_grads)
            if average is not None:
                average.update()
            return losses

        return [Phase("embedding", pre, embedding_step),
                Phase("supervised", pre, supervised_step),
                Phase("joint", self.iterations * g_steps, joint_step)], optimizers, stateful

    def _rcgan_step(self, net, cond, average):
        opt_gen, p_gen = self._optimizer(net.generator)
        opt_disc, p_disc = self._optimizer(net.discriminator)

        def step(x, lengths, index):
            mask = step_mask(lengths, x.size(1))
            c = cond(index)
            z = self._noise(x.size(0), x.size(1), x.device)
            fake = net(z, c)
            d_loss = (_bce(net.discriminate_data(x, lengths, c), 1.0, mask)
                      + _bce(net.discriminate_data(fake.detach(), lengths, c), 0.0, mask))
            self._update(opt_disc, p_disc, d_loss)
            fooled = _bce(net.discriminate_data(fake, lengths, c), 1.0, mask)
            g_loss = fooled
            matching = self._matching_terms(fake, x, mask)
            for weight, term in matching.values():
                g_loss = g_loss + weight * term
            self._update(opt_gen, p_gen, g_loss)
            if average is not None:
                average.update()
            return {"generator_loss": fooled.item(), "discriminator_loss": d_loss.item(),
                    **{key: term.item() for key, (_, term) in matching.items()}}

        return step, [opt_gen, opt_disc]

    def _matching_terms(self, fake, real, mask):
        """The data-space matching terms of the generator objective that are switched on
        (``covariance_weight``, ``distribution_weight``, ``feature_distribution_weight``), as
        {record name: (weight, loss)}; both architectures add them to the generator's loss and
        record each loss by its name."""
        terms = {}
        if self.covariance_weight:
            terms["covariance_loss"] = (self.covariance_weight,
                                        _covariance_loss(fake, real, mask))
        if self.distribution_weight:
            terms["distribution_loss"] = (self.distribution_weight, _mmd_loss(fake, real, mask))
        if self.feature_distribution_weight:
            terms["feature_distribution_loss"] = (self.feature_distribution_weight,
                                                  _feature_mmd_loss(fake, real, mask))
        return terms

    def _diversity(self, scaled: Sequences, conditions, rng) -> float:
        """Mean pairwise distance of synthetic over real sequences (first min-length steps)."""
        m = min(256, len(scaled))
        pick = rng.choice(len(scaled), size=m, replace=False)
        steps = int(scaled.lengths[pick].min())
        real = scaled.values[pick, :steps].reshape(m, -1)
        c = None if conditions is None else conditions[pick]
        fake = self._generate_scaled(m, steps, c, torch.Generator().manual_seed(
            int(rng.integers(2**31 - 1)))).reshape(m, -1)

        def spread(a):
            d = np.sqrt(np.maximum(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1), 0.0))
            return d.sum() / max(1, m * (m - 1))

        real_spread = spread(real)
        return float(spread(fake) / real_spread) if real_spread > 0 else 1.0

    # ----------------------------------------------------------------- sampling
    def _generate_scaled(self, n: int, n_steps: int, conditions, generator,
                         unscale: bool = False) -> np.ndarray:
        """(n, n_steps, C) generated in batches straight into one preallocated array (in the
        original scale when ``unscale``), so memory beyond the output stays one batch."""
        network = self.network_
        device = next(network.parameters()).device
        out = None
        with self._threads(), torch.inference_mode():
            network.eval()
            for start in range(0, n, self.predict_batch_size):
                stop = min(n, start + self.predict_batch_size)
                z = self._noise(stop - start, n_steps, device, generator)
                c = None if conditions is None else torch.from_numpy(
                    np.ascontiguousarray(conditions[start:stop])).to(device)
                piece = network(z, c).cpu().numpy()
                if out is None:
                    out = np.empty((n, *piece.shape[1:]), dtype=np.float32)
                out[start:stop] = piece
                if unscale:
                    self.scaler_.inverse_transform_values(out[start:stop], inplace=True)
        return out

    def sample(self, n_samples, n_timesteps=None, y=None, random_state=None):
        """Draw synthetic sequences in the original scale.

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
        ndarray of shape (n_samples, n_timesteps, n_features), or a list of (T_i, n_features)
        arrays when lengths vary.
        """
        self._check_is_fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}.")
        n_samples = int(n_samples)
        if n_timesteps is not None and (isinstance(n_timesteps, bool) or not isinstance(
                n_timesteps, Integral) or n_timesteps < 1):
            raise ValueError(f"n_timesteps must be an integer >= 1 or None, got {n_timesteps!r}.")
        if isinstance(random_state, np.random.RandomState):
            seed = int(random_state.randint(0, 2**31 - 1))
        elif random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        elif isinstance(random_state, Integral) and not isinstance(random_state, bool) \
                and random_state >= 0:
            seed = int(random_state)
        else:
            raise ValueError(f"random_state must be None, an integer >= 0 or a RandomState, got "
                             f"{random_state!r}.")
        rng = np.random.default_rng(seed)
        if y is None and self.condition_kind_ == "labels":
            y = rng.choice(self.classes_, size=n_samples, p=self.class_counts_ / self.class_counts_.sum())
            self.sample_labels_ = y
        conditions = self._encode_condition(y, n_samples)
        variable = n_timesteps is None and not np.all(self.lengths_ == self.lengths_[0])
        if n_timesteps is None:
            lengths = (rng.choice(self.lengths_, size=n_samples) if variable
                       else np.full(n_samples, int(self.lengths_[0])))
        else:
            lengths = np.full(n_samples, int(n_timesteps))
        generator = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        values = self._generate_scaled(n_samples, int(lengths.max()), conditions, generator,
                                       unscale=True)
        if variable:
            return [values[i, :length].copy() for i, length in enumerate(lengths)]
        return values.astype(np.float32, copy=False)

    # ----------------------------------------------------------------- data -> outputs
    def _require_timegan(self, method: str) -> None:
        if self.architecture != "timegan":
            raise ValueError(f"{method} needs the embedder of architecture='timegan'; this model "
                             f"is architecture={self.architecture!r}.")

    def transform(self, X) -> np.ndarray:
        """TimeGAN's per-step latent embedding of ``X``: (n_sequences, n_timesteps, latent_dim),
        NaN after each end (a list of (T_i, latent_dim) arrays for list input)."""
        self._check_is_fitted()
        self._require_timegan("transform")
        seqs = self._validate_data(X, reset=False)
        (codes,) = self._map_batches(
            seqs, self._in_scaled_space(lambda v, n: (self.network_.embed(v),)), per_step=(True,))
        return restore_layout(X, codes, seqs.lengths)

    def reconstruct(self, X):
        """Embed and recover ``X`` (TimeGAN's autoencoder), original scale, laid out like ``X``."""
        self._check_is_fitted()
        self._require_timegan("reconstruct")
        seqs = self._validate_data(X, reset=False)
        (values,) = self._map_batches(
            seqs, self._in_scaled_space(
                lambda v, n: (self.network_.recovery(self.network_.embed(v)),)),
            per_step=(True,))
        values = self.scaler_.inverse_transform_values(values, inplace=True)
        return restore_layout(X, values, seqs.lengths)

    def decision_function(self, X, y=None) -> np.ndarray:
        """The discriminator's mean probability that each sequence is synthetic, shape
        (n_sequences,). Higher = less like the training data (PyOD's sign).

        TimeGAN scores with its latent discriminator (on the embedded sequences), RCGAN with its
        only discriminator; the data-space discriminator of ``data_weight`` is not used. A GAN's
        discriminator is trained to separate the data from the generator's current samples, not
        from anomalies: use SequenceAnomalyDetector to find outliers."""
        seqs = self._validate_data(X, reset=False)
        conditions = self._encode_condition(y, len(seqs))
        order_conditions = conditions

        @self._in_scaled_space
        def score(v, n, c=None):
            logits = self.network_.discriminate_data(v, n, c)  # (batch, time)
            mask = step_mask(n, v.size(1))
            return (((1 - torch.sigmoid(logits)) * mask).sum(1) / n,)

        if order_conditions is None:
            (scores,) = self._map_batches(seqs, score, per_step=(False,))
            return scores.astype(np.float64)
        # With conditions, score in input order so that each row meets its own condition.
        out = []
        with self._threads(), torch.inference_mode():
            self.network_.eval()
            device = next(self.network_.parameters()).device
            for start in range(0, len(seqs), self.predict_batch_size):
                part = seqs.subset(np.arange(start, min(len(seqs), start + self.predict_batch_size)))
                v, n = part.tensors(device)
                c = torch.from_numpy(order_conditions[start:start + len(part)]).to(device)
                out.append(score(v, n, c)[0].cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def score_samples(self, X, y=None) -> np.ndarray:
        """Negated :meth:`decision_function` (scikit-learn's sign: lower = more abnormal)."""
        return -self.decision_function(X, y)

    # ----------------------------------------------------------------- persistence
    def _get_state(self):
        document, arrays = super()._get_state()
        document["condition_kind"] = self.condition_kind_
        document["diversity_ratio"] = self.diversity_ratio_
        arrays["lengths"] = self.lengths_.astype(np.int64)
        if self.condition_kind_ == "labels":
            document["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
            document["classes_kind"] = self.classes_.dtype.kind
            arrays["class_counts"] = self.class_counts_.astype(np.int64)
        elif self.condition_kind_ == "attributes":
            arrays["condition_offset"] = self.condition_offset_
            arrays["condition_scale"] = self.condition_scale_
        return document, arrays

    def _set_state(self, document, arrays):
        kind = document["condition_kind"]
        if kind not in (None, "labels", "attributes"):
            raise ValueError(f"unknown condition kind {kind!r}")
        self.condition_kind_ = kind
        self.classes_ = self.class_counts_ = None
        self.condition_offset_ = self.condition_scale_ = None
        if kind == "labels":
            classes = list(document["classes"])
            self.classes_ = (np.array(classes, dtype=np.int64) if document["classes_kind"] in "iu"
                             else np.array(classes))
            self.class_counts_ = np.asarray(arrays["class_counts"], dtype=np.int64)
        elif kind == "attributes":
            self.condition_offset_ = np.asarray(arrays["condition_offset"], dtype=np.float32)
            self.condition_scale_ = np.asarray(arrays["condition_scale"], dtype=np.float32)
        self.lengths_ = np.asarray(arrays["lengths"], dtype=np.int64)
        self.diversity_ratio_ = float(document["diversity_ratio"])
        super()._set_state(document, arrays)
