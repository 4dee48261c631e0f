"""Deep temporal clustering modules: a recurrent autoencoder over time-pooled input, with cluster
centres in its latent space and Student-t soft assignments (DEC / IDEC / DTC).

Shapes: ``x`` is (batch, time, features), ``lengths`` is (batch,) int64 on the same device.
"""

from __future__ import annotations

import torch
from torch import nn

from .recurrent import SUMMARIES, RecurrentConfig, SequenceAutoencoderNet

__all__ = ["ClusteringNet", "SUMMARIES", "temporal_pool", "pooled_width",
           "POOL_FEATURES", "lagged_differences", "clustering_inputs",
           "pooled_lengths", "soft_assignments", "target_distribution", "random_crops", "nt_xent"]


def pooled_lengths(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """Number of pooled steps of each sequence: ceil(length / size)."""
    return torch.div(lengths + size - 1, size, rounding_mode="floor")


POOL_FEATURES = ("mean", "mean_std")


def pooled_width(n_features: int, size: int, features: str = "mean") -> int:
    """Features per pooled step: ``n_features``, doubled when ``features="mean_std"`` and ``size > 1``."""
    return n_features * (2 if features == "mean_std" and size > 1 else 1)


def temporal_pool(x: torch.Tensor, lengths: torch.Tensor, size: int,
                  features: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Summarise consecutive windows of ``size`` valid steps: (B, T, C) -> (B, ceil(T / size), C')
    with C' = :func:`pooled_width`.

    ``features="mean"`` averages each window; ``"mean_std"`` appends each window's standard
    deviation per channel, so that what averaging removes (oscillation faster than the window,
    noise level) still reaches the recurrence. Padding after a sequence's end is masked out: the
    last (partial) window of a sequence summarises only its valid steps and a sequence pools to the
    same values whatever batch it is in. Missing values (NaN) are left out of their window's
    summary; a window where a feature is missing throughout is NaN (missing) for that feature.
    """
    if features not in POOL_FEATURES:
        raise ValueError(f"features must be one of {POOL_FEATURES}, got {features!r}.")
    if size == 1:
        return x, lengths
    batch, n_steps, n_features = x.shape
    n_out = -(-n_steps // size)
    mask = (torch.arange(n_steps, device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    missing = torch.isnan(x)
    partial = bool(missing.any())
    mask = mask.unsqueeze(-1)  # (B, T, 1), or per feature (B, T, C) with missing values
    if partial:
        mask = mask * (~missing).to(x.dtype)
        x = torch.where(missing, torch.zeros((), dtype=x.dtype, device=x.device), x)
    extra = n_out * size - n_steps
    if extra:
        x = torch.nn.functional.pad(x, (0, 0, 0, extra))
        mask = torch.nn.functional.pad(mask, (0, 0, 0, extra))
    mask = mask.view(batch, n_out, size, mask.size(-1))
    windows = x.view(batch, n_out, size, n_features) * mask  # (B, T', size, C)
    counts = mask.sum(2)  # (B, T', 1 or C)
    count = counts.clamp_min(1.0)
    mean = windows.sum(2) / count  # (B, T', C)
    if features == "mean_std":
        spread = (((windows - mean.unsqueeze(2)) * mask) ** 2).sum(2) / count
        # sqrt with a zero gradient where the spread is 0 (a one-step window): the same values,
        # and gradients through the pooling (explanations) stay finite.
        positive = spread > 0
        std = torch.where(positive, spread, torch.ones_like(spread)).sqrt() * positive
        mean = torch.cat([mean, std], dim=2)
    out_lengths = pooled_lengths(lengths, size)
    if partial:  # a window (before the sequence's end) with no observed value of a feature
        inside = torch.arange(n_out, device=x.device)[None, :, None] < out_lengths[:, None, None]
        empty = ((counts == 0) & inside).repeat(1, 1, mean.size(2) // n_features)
        mean = torch.where(empty, torch.full((), float("nan"), dtype=x.dtype, device=x.device),
                           mean)
    return mean, out_lengths


def lagged_differences(x: torch.Tensor, lag: int) -> torch.Tensor:
    """Change of each channel over ``lag`` steps, x_t - x_{t-lag}; the first ``lag`` steps take the
    change since step 0. (B, T, C) -> (B, T, C). Steps after a sequence's end hold no meaning (the
    pooling and the encoder mask them)."""
    earlier = (torch.arange(x.size(1), device=x.device) - lag).clamp_min(0)
    return x - x[:, earlier]


def clustering_inputs(x: torch.Tensor, lengths: torch.Tensor, size: int, features: str = "mean",
                      difference_scale: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """What :class:`ClusteringNet`'s encoder reads: the pooled series (:func:`temporal_pool`), and with
    ``difference_scale`` (one value per channel) also the pooled :func:`lagged_differences` over one
    window (lag ``size``) divided by it. (B, T, C) -> (B, ceil(T / size), C' [+ C']), lengths."""
    pooled, pooled_lengths_ = temporal_pool(x, lengths, size, features)
    if difference_scale is None:
        return pooled, pooled_lengths_
    changes, _ = temporal_pool(lagged_differences(x, size) / difference_scale, lengths, size, features)
    return torch.cat([pooled, changes], dim=2), pooled_lengths_


def soft_assignments(z: torch.Tensor, centers: torch.Tensor, alpha: float) -> torch.Tensor:
    """Student-t kernel q_ij ∝ (1 + |z_i - mu_j|^2 / alpha)^(-(alpha + 1) / 2): (B, L), (K, L) -> (B, K).
    ``centers`` may also be (B, K, L), one set per row (per-sequence gradients)."""
    if centers.dim() == 3:
        distance = (z[:, None, :] - centers).pow(2).sum(-1)  # (B, K)
    else:
        distance = torch.cdist(z, centers).pow(2)  # (B, K)
    logits = -(alpha + 1.0) / 2.0 * torch.log1p(distance / alpha)
    return torch.softmax(logits, dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened target p_ij ∝ q_ij^2 / f_j, f_j = sum_i q_ij (frequency-normalised)."""
    weight = q.pow(2) / q.sum(0, keepdim=True).clamp_min(1e-12)
    return weight / weight.sum(1, keepdim=True)


def random_crops(x: torch.Tensor, lengths: torch.Tensor, min_fraction: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One random contiguous crop per sequence, between ``min_fraction`` and all of its valid steps.

    Returns the crops left-aligned and zero-padded, (B, T, C), and their lengths (B,).
    """
    batch, n_steps, _ = x.shape
    u = torch.rand(batch, device=x.device, generator=generator)
    crop = torch.ceil(lengths * (min_fraction + (1.0 - min_fraction) * u)).long().clamp(1)
    crop = torch.minimum(crop, lengths)
    start = torch.floor(torch.rand(batch, device=x.device, generator=generator)
                        * (lengths - crop + 1)).long()
    steps = torch.arange(n_steps, device=x.device)[None, :]  # (1, T)
    index = torch.minimum(start[:, None] + steps, (start + crop - 1)[:, None])  # (B, T)
    out = x.gather(1, index.unsqueeze(-1).expand_as(x))
    out = out * (steps < crop[:, None]).unsqueeze(-1).to(x.dtype)
    return out[:, : int(crop.max())], crop


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy: row i of ``a`` and of ``b`` are a positive
    pair, every other row of the batch a negative. (B, L), (B, L) -> scalar."""
    batch = a.size(0)
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)  # (2B, L)
    logits = z @ z.t() / temperature  # (2B, 2B)
    logits = logits.masked_fill(torch.eye(2 * batch, dtype=torch.bool, device=z.device), -1e9)
    target = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)
    return torch.nn.functional.cross_entropy(logits, target)


class ClusteringNet(nn.Module):
    """Recurrent autoencoder with ``n_clusters`` centres in its latent space.

    ``pool`` summarises windows of that many steps before the recurrence (their mean, and with
    ``pool_features="mean_std"`` their standard deviation; see :func:`temporal_pool`): the recurrent
    layers then see at most a few dozen steps even for series of hundreds, which trains faster and
    clusters better (docs/clustering.md).

    With ``n_difference_channels`` C > 0 the encoder also reads the pooled change of each of the C
    channels over one window (:func:`clustering_inputs`, divided by the ``difference_scale`` buffer,
    set from the training data); the decoder rebuilds the pooled series only, the first
    :attr:`target_width` input features. ``config.input_size`` is the encoder's input width: the
    pooled width (:func:`pooled_width`), twice that with differences. ``kind`` is the encoder's
    (:data:`ursa.networks.hybrid.ENCODERS`): a convolutional front-end reads the pooled steps.
    """

    def __init__(self, config: RecurrentConfig, latent_dim: int, n_clusters: int,
                 pool: int = 1, alpha: float = 1.0, summary: str = "both",
                 pool_features: str = "mean", n_difference_channels: int = 0,
                 kind: str = "rnn"):
        super().__init__()
        self.pool = int(pool)
        self.pool_features = pool_features
        self.alpha = float(alpha)
        self.differences = n_difference_channels > 0
        # Token input (config.vocab_size): the target is the id, the output one logit per id.
        self.target_width = 1 if config.vocab_size else \
            config.input_size // (2 if self.differences else 1)
        if self.differences:
            self.register_buffer("difference_scale", torch.ones(n_difference_channels))
        # Codes live on a sphere: the contrastive term compares directions only, and k-means on
        # the raw codes split the groups worse (docs/clustering.md).
        self.autoencoder = SequenceAutoencoderNet(
            config, latent_dim, summary, sphere=True,
            output_size=config.vocab_size or self.target_width, kind=kind)
        self.centers = nn.Parameter(torch.zeros(n_clusters, latent_dim))  # (K, latent)

    def inputs(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder input of raw (unpooled) sequences: (B, T, C) -> (B, T', config.input_size)."""
        return clustering_inputs(x, lengths, self.pool, self.pool_features,
                                 self.difference_scale if self.differences else None)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Latent codes of raw (unpooled) sequences: (B, T, C) -> (B, latent)."""
        return self.autoencoder.encoder(*self.inputs(x, lengths))

    # Per-sequence gradients of the centres (private training): with ``record_sample`` set,
    # each sequence reads its own copy of them, whose gradient is that sequence's own, passed
    # to ``record_sample(parameter, (batch, K, latent) gradients)``.
    per_sample_parameters = ("centers",)
    record_sample = None

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        centers = self.centers
        if self.record_sample is not None and torch.is_grad_enabled() and centers.requires_grad:
            centers = centers.expand(z.size(0), *centers.shape)
            centers.register_hook(lambda grad: self.record_sample(self.centers, grad))
        return soft_assignments(z, centers, self.alpha)

    def forward(self, pooled: torch.Tensor, lengths: torch.Tensor):
        """On encoder input (:meth:`inputs`): (reconstruction (B, T', target_width), codes (B, L),
        q (B, K)); the reconstruction's target is ``pooled[..., :target_width]``."""
        reconstruction, z = self.autoencoder(pooled, lengths)
        return reconstruction, z, self.assign(z)
