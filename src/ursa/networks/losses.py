"""Losses over padded batches: padding never counts. Reconstruction losses, and the adversarial
and distribution-matching terms of the GAN objectives."""

from __future__ import annotations

import contextlib
import contextvars
import math

import torch
import torch.nn.functional as F

from .recurrent import step_mask


# Under differential privacy a sequence's gradient may depend on that sequence only: the batch
# losses then weigh every sequence equally (the mean over the batch of each sequence's mean over
# its own steps) rather than every step (which lets one sequence's length set the others' weight).
_PER_SEQUENCE = contextvars.ContextVar("ursa_per_sequence_losses", default=False)


@contextlib.contextmanager
def per_sequence_means():
    """Within this context, :func:`masked_mse` and :func:`masked_mean` average each sequence over
    its own valid steps, then the sequences (the same value on equal-length batches)."""
    token = _PER_SEQUENCE.set(True)
    try:
        yield
    finally:
        _PER_SEQUENCE.reset(token)


def _observed_errors(prediction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared error averaged over the observed features of each step, and each step's weight:
    (batch, time) each. A NaN in ``target`` marks a missing value: it adds no error, and a step
    with every feature missing has weight 0, like padding."""
    observed = ~torch.isnan(target)
    difference = torch.where(observed, prediction - target, torch.zeros((), dtype=prediction.dtype,
                                                                        device=prediction.device))
    counts = observed.sum(-1)
    errors = difference.pow(2).sum(-1) / counts.clamp_min(1).to(difference.dtype)
    weights = (counts > 0).to(difference.dtype) * step_mask(lengths, target.size(1))
    return errors * weights, weights


def categorical(prediction: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``prediction`` holds logits over token ids for a ``target`` of ids: a network
    that reads tokens emits one logit per vocabulary entry (wider than the one id it rebuilds),
    where a numeric one emits at most as many values as its target has features."""
    return prediction.size(-1) > target.size(-1) == 1


def token_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each step's id: logits (batch, time, vocab), ids (batch,
    time, 1) -> (batch, time), computed in float32."""
    return F.cross_entropy(logits.float().transpose(1, 2), target[..., 0].long(),
                           reduction="none")


def step_errors(prediction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over features: (batch, time); zero on padding. NaN in ``target``
    marks a missing value, left out of the mean (zero where a whole step is missing). For token
    ids (:func:`categorical`), each step's negative log-likelihood instead."""
    if categorical(prediction, target):
        errors = token_nll(prediction, target)
        if bool((lengths == target.size(1)).all()):
            return errors
        return errors * step_mask(lengths, target.size(1))
    if bool(torch.isnan(target).any()):
        return _observed_errors(prediction, target, lengths)[0]
    errors = (prediction - target).pow(2).mean(dim=-1)  # (batch, time)
    if bool((lengths == target.size(1)).all()):
        return errors
    return errors * step_mask(lengths, target.size(1))


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid steps of every sequence in the batch. NaN in ``target``
    marks a missing value, which counts neither as error nor as a step. For token ids
    (:func:`categorical`), the mean negative log-likelihood (cross-entropy) instead."""
    if categorical(prediction, target):
        if _PER_SEQUENCE.get():
            return (step_errors(prediction, target, lengths).sum(1) / lengths).mean()
        return step_errors(prediction, target, lengths).sum() / lengths.sum()
    if bool(torch.isnan(target).any()):
        errors, weights = _observed_errors(prediction, target, lengths)
        if _PER_SEQUENCE.get():
            return (errors.sum(1) / weights.sum(1).clamp_min(1.0)).mean()
        return errors.sum() / weights.sum().clamp_min(1.0)
    if bool((lengths == target.size(1)).all()):
        return torch.nn.functional.mse_loss(prediction, target)
    if _PER_SEQUENCE.get():
        return (step_errors(prediction, target, lengths).sum(1) / lengths).mean()
    return step_errors(prediction, target, lengths).sum() / lengths.sum()


# ---------------------------------------------------------------- adversarial and matching losses
# These take a (batch, time) float mask of valid steps rather than lengths: a GAN step builds the
# mask once and every term of its objective reads it.


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (batch, time[, features]) over the valid steps of ``mask`` (batch, time)."""
    if values.dim() == 3:
        mask = mask.unsqueeze(-1).expand_as(values)
    if _PER_SEQUENCE.get():
        per_sequence = (values * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1.0)
        return per_sequence.mean()
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def mask_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid steps of ``mask``."""
    return masked_mean((a - b) ** 2, mask)


def bce_towards(logits: torch.Tensor, target: float, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of per-step ``logits`` (batch, time) against a constant ``target``
    (1: real, 0: synthetic), averaged over valid steps."""
    loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target),
                                              reduction="none")
    return masked_mean(loss, mask)


def _batch_moments(values, mask):
    """Per-(step, feature) statistics over the batch, counting only valid steps: returns
    (centred values, zero at padded steps; mean (time, features); count (time, 1))."""
    m = mask.unsqueeze(-1)  # (batch, time, 1)
    count = m.sum(0).clamp(min=1.0)  # (time, 1)
    mean = (values * m).sum(0) / count  # (time, features)
    return (values - mean) * m, mean, count


def moment_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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


def moment_gap(fake: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor,
               std: torch.Tensor) -> torch.Tensor:
    """:func:`moment_loss` against given per-(step, feature) moments ``mean`` and ``std`` (time,
    features) instead of a real batch's (e.g. privately released ones)."""
    centred, mean_f, count = _batch_moments(fake, mask)
    std_f = torch.sqrt((centred ** 2).sum(0) / count + 1e-6)
    steps = fake.size(1)
    valid = (mask.sum(0) > 0).float().unsqueeze(-1).expand_as(mean_f)
    gap = (std_f - std[:steps]).abs() + (mean_f - mean[:steps]).abs()
    return (gap * valid).sum() / valid.sum().clamp(min=1.0)


def covariance_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute gap between the fake and real cross-feature covariances, each taken over the
    batch at every step: off-diagonal entries only (the moment loss matches the variances).
    0 for a single feature."""
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


def mmd_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
             scales=(0.25, 1.0, 4.0)) -> torch.Tensor:
    """Squared maximum mean discrepancy between the batch's fake and real sequences, each
    flattened over its valid steps, with a sum of Gaussian kernels whose widths are ``scales``
    times the mean squared distance between the real sequences (the mean, unlike the median,
    stays wide when the data has separate modes). A part of the data the generator leaves out
    raises it, and fake sequences that crowd together repel each other."""
    m = mask.unsqueeze(-1)
    return _gaussian_mmd((fake * m).flatten(1), (real * m).flatten(1), scales)


def feature_mmd_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                     scales=(0.25, 1.0, 4.0)) -> torch.Tensor:
    """Mean over the features of :func:`mmd_loss` taken on each feature's sequences alone, so
    that features which move together do not outweigh the others."""
    m = mask.unsqueeze(-1)
    return _gaussian_mmd((fake * m).permute(2, 0, 1), (real * m).permute(2, 0, 1), scales).mean()


class KernelFeatures:
    """Random Fourier features (Rahimi and Recht, NIPS 2007) of whole sequences for the kernel of
    :func:`mmd_loss`: ``features(x).mean(0)`` embeds a set of sequences so that the squared
    distance between two sets' embeddings approximates their squared MMD. ``width`` is the
    kernels' reference squared distance (:func:`mmd_loss` uses the real sequences' mean one),
    ``n_features`` the random features per kernel. One sequence's features have norm at most
    ``sqrt(2 * len(scales))`` (:attr:`norm_bound`), which bounds what it adds to a sum of
    them: a private fit releases such a sum once (RecurrentGAN's ``privacy``)."""

    def __init__(self, n_inputs: int, width: float, scales=(0.25, 1.0, 4.0),
                 n_features: int = 256, generator: torch.Generator | None = None):
        # exp(-d2 / (s * width)) is a Gaussian kernel of variance s * width / 2: its features'
        # frequencies are drawn from a normal of the inverse variance.
        self.weights = torch.cat([
            torch.randn(n_inputs, n_features, generator=generator) * (2.0 / (s * width)) ** 0.5
            for s in scales], dim=1)
        self.offsets = torch.rand(len(scales) * n_features, generator=generator) * 2 * math.pi
        self.scale = (2.0 / n_features) ** 0.5
        self.norm_bound = (2.0 * len(scales)) ** 0.5

    def __call__(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, n_kernels * n_features) features of ``values`` (batch, time, features),
        flattened over the valid steps of ``mask`` (padded steps count as zeros)."""
        flat = (values * mask.unsqueeze(-1)).flatten(1)
        weights = self.weights[:flat.size(1)].to(flat)
        return self.scale * torch.cos(flat @ weights + self.offsets.to(flat))


def embedding_gap(fake: torch.Tensor, mask: torch.Tensor, features: KernelFeatures,
                  target: torch.Tensor) -> torch.Tensor:
    """Squared distance between the mean kernel embedding of the ``fake`` batch and ``target``
    (e.g. a private release of the data's): :func:`mmd_loss` against a fixed embedding."""
    return (features(fake, mask).mean(0) - target.to(fake)).pow(2).sum()


def _gaussian_mmd(a, b, scales):
    """Squared MMD between the rows of ``a`` (fake) and ``b`` (real), each (..., n, d): leading
    dimensions are independent groups."""
    last = (-2, -1)  # the (row, row) dimensions of each group's distance matrix
    both = torch.cat([a, b], dim=-2)
    d2 = torch.cdist(both, both).pow(2)
    n = a.size(-2)
    width = (d2[..., n:, n:].detach().sum(last) / max(1, n * (n - 1))).clamp(min=1e-6)
    k = sum(torch.exp(-d2 / (s * width[..., None, None])) for s in scales)
    return k[..., :n, :n].mean(last) + k[..., n:, n:].mean(last) - 2 * k[..., :n, n:].mean(last)
