"""Recurrent generative networks: TimeGAN (Yoon et al., NeurIPS 2019), a plain recurrent GAN
(RCGAN) and a denoising diffusion model with a recurrent denoiser.

TimeGAN has five recurrent blocks. The embedder maps data to a latent sequence ``H`` and the recovery
maps it back; the generator maps noise to a latent sequence, the supervisor predicts the next latent
step (which teaches the generator the data's step-to-step dynamics), and the discriminator scores
latent sequences per step. RCGAN (Esteban et al. 2017) is a recurrent generator and discriminator on
the data itself. The diffusion model (Ho et al., NeurIPS 2020) learns to recover whole sequences
from copies with Gaussian noise added, with a bidirectional recurrent denoiser, and samples by
denoising pure noise step by step (DDIM's deterministic sampler, Song et al., ICLR 2021).

Shapes: data ``x`` is (batch, time, n_features), noise ``z`` (batch, time, noise_dim), latent ``h``
(batch, time, latent_dim), an optional condition ``c`` (batch, condition_dim) that is appended to the
inputs of the conditioned blocks at every step. Padding lies after each sequence's end; every block
except a bidirectional discriminator and the denoiser (which reads each sequence within its
length) is causal, so padding never changes a valid step's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .recurrent import CELLS, RecurrentConfig, RecurrentStack, make_rnn

__all__ = ["ARCHITECTURES", "GANConfig", "RecurrentBlock", "SequenceDiscriminator", "TimeGANNet",
           "RCGANNet", "DiffusionNet", "build_gan", "with_condition"]

ARCHITECTURES = ("timegan", "rcgan", "diffusion")

# The diffusion model's noise levels in training; sampling visits ``sampling_steps`` of them.
DIFFUSION_LEVELS = 200


@dataclass
class GANConfig:
    """Shape of a recurrent GAN."""

    n_features: int
    architecture: str = "timegan"
    cell: str = "gru"  # the reference TimeGAN uses GRUs
    hidden_size: int = 24  # the reference's hidden_dim for Sines and Stocks
    num_layers: int = 3  # the reference's num_layer; the supervisor gets one layer less
    latent_dim: int = 24  # size of the embedding H (the reference ties it to hidden_dim)
    noise_dim: int = 1  # the reference draws noise with one channel per data feature
    condition_dim: int = 0  # one-hot class or standardised static attributes; 0 = unconditional
    bidirectional: bool = False  # discriminator only: generation must stay causal
    dropout: float = 0.0
    bounded_output: bool = True  # sigmoid on data-space outputs: min-max scaled data lies in [0, 1]
    data_discriminator: bool = False  # TimeGAN only: a second discriminator on data-space sequences
    sampling_steps: int = 50  # diffusion only: denoising steps from noise to a sample

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}.")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}.")


def with_condition(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Append the static condition to every step: (batch, time, d) -> (batch, time, d + k)."""
    if c is None:
        return x
    return torch.cat([x, c[:, None, :].expand(-1, x.size(1), -1)], dim=-1)


class RecurrentBlock(nn.Module):
    """A causal recurrent stack with a per-step linear readout and an optional sigmoid."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int, num_layers: int,
                 cell: str, dropout: float = 0.0, sigmoid: bool = True):
        super().__init__()
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, dropout)
        self.readout = nn.Linear(hidden_size, output_size)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x)  # (batch, time, hidden)
        y = self.readout(outputs)  # (batch, time, output)
        return torch.sigmoid(y) if self.sigmoid else y


class SequenceDiscriminator(nn.Module):
    """Per-step real/fake logits; a bidirectional stack reads each sequence within its length."""

    def __init__(self, input_size: int, config: GANConfig):
        super().__init__()
        self.stack = RecurrentStack(RecurrentConfig(
            input_size=input_size, hidden_size=config.hidden_size, num_layers=config.num_layers,
            cell=config.cell, bidirectional=config.bidirectional, dropout=config.dropout,
        ))
        self.readout = nn.Linear(self.stack.config.output_size, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.stack(x, lengths)  # (batch, time, output_size)
        return self.readout(outputs).squeeze(-1)  # (batch, time) logits


class TimeGANNet(nn.Module):
    """Embedder, recovery, generator, supervisor and discriminator in one module."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c, k = config, config.condition_dim
        block = dict(hidden_size=c.hidden_size, cell=c.cell, dropout=c.dropout)
        self.embedder = RecurrentBlock(c.n_features, c.latent_dim, num_layers=c.num_layers, **block)
        self.recovery = RecurrentBlock(c.latent_dim, c.n_features, num_layers=c.num_layers,
                                       sigmoid=c.bounded_output, **block)
        self.generator = RecurrentBlock(c.noise_dim + k, c.latent_dim, num_layers=c.num_layers,
                                        **block)
        self.supervisor = RecurrentBlock(c.latent_dim + k, c.latent_dim,
                                         num_layers=max(1, c.num_layers - 1), **block)
        self.discriminator = SequenceDiscriminator(c.latent_dim + k, c)
        self.data_discriminator = (SequenceDiscriminator(c.n_features + k, c)
                                   if c.data_discriminator else None)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedder(x)  # (batch, time, latent)

    def supervise(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.supervisor(with_condition(h, c))  # next-step latent prediction

    def generate_latent(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.generator(with_condition(z, c))  # (batch, time, latent)

    def discriminate(self, h: torch.Tensor, lengths: torch.Tensor, c: torch.Tensor | None):
        return self.discriminator(with_condition(h, c), lengths)  # (batch, time) logits

    def discriminate_data(self, x, lengths, c=None):
        return self.discriminate(self.embedder(x), lengths, c)

    def discriminate_data_space(self, x, lengths, c=None):
        """Logits of the data-space discriminator (``config.data_discriminator``), which reads
        the (scaled) sequences themselves, as the post-hoc discriminative test does."""
        return self.data_discriminator(with_condition(x, c), lengths)  # (batch, time) logits

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Noise -> synthetic data (scaled): recovery(supervisor(generator(z)))."""
        return self.recovery(self.supervise(self.generate_latent(z, c), c))


class RCGANNet(nn.Module):
    """A recurrent generator and a recurrent discriminator on the data itself."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c, k = config, config.condition_dim
        self.generator = RecurrentBlock(c.noise_dim + k, c.n_features, c.hidden_size, c.num_layers,
                                        c.cell, c.dropout, sigmoid=c.bounded_output)
        self.discriminator = SequenceDiscriminator(c.n_features + k, c)

    def discriminate_data(self, x, lengths, c=None):
        return self.discriminator(with_condition(x, c), lengths)  # (batch, time) logits

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(with_condition(z, c))  # (batch, time, n_features)


def noise_levels(n_levels: int = DIFFUSION_LEVELS) -> torch.Tensor:
    """Cosine schedule (Nichol & Dhariwal, ICML 2021): the fraction of signal variance left at
    each level, ``alpha_bar[t]`` for t = 0 (clean) .. n_levels (almost pure noise)."""
    s = torch.arange(n_levels + 1, dtype=torch.float64) / n_levels
    alpha_bar = torch.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return (alpha_bar / alpha_bar[0]).clamp(1e-5, 1.0).float()


def level_embedding(t: torch.Tensor, dim: int = 16) -> torch.Tensor:
    """Sinusoidal features of integer noise levels: (batch,) -> (batch, dim)."""
    freqs = torch.exp(torch.arange(dim // 2, device=t.device)
                      * (-math.log(1000.0) / (dim // 2 - 1)))
    angles = t[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class DiffusionNet(nn.Module):
    """A denoising diffusion model on data-space sequences with a bidirectional recurrent
    denoiser, which estimates the clean sequence behind a noised one from all of its steps, the
    noise level and the condition (predicting the clean sequence, as Diffusion-TS does, rather
    than the noise: docs/generation.md).

    Bounded (min-max scaled) data in [0, 1] is modelled in [-1, 1], and each denoising step's
    estimate of the clean sequence is clipped to that range. ``forward(z, c)`` turns standard
    normal noise ``z`` (batch, time, n_features) into samples by ``config.sampling_steps`` DDIM
    steps; being deterministic, the same noise gives the same sequences.
    """

    LEVEL_FEATURES = 16

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c, width = config, config.hidden_size
        self.register_buffer("alpha_bar", noise_levels(), persistent=False)
        self.input = nn.Linear(c.n_features + self.LEVEL_FEATURES + c.condition_dim, width)
        self.stack = RecurrentStack(RecurrentConfig(
            input_size=width, hidden_size=width, num_layers=c.num_layers, cell=c.cell,
            bidirectional=True, dropout=c.dropout))
        # The readout sees the recurrence's outputs and, by a skip, the step's own input.
        self.readout = nn.Sequential(nn.Linear(3 * width, width), nn.SiLU(),
                                     nn.Linear(width, c.n_features))

    @property
    def n_levels(self) -> int:
        return len(self.alpha_bar) - 1

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled data -> the space the model diffuses in ([-1, 1] for bounded data)."""
        return 2 * x - 1 if self.config.bounded_output else x

    def from_model(self, y: torch.Tensor) -> torch.Tensor:
        return (y + 1) / 2 if self.config.bounded_output else y

    def denoise(self, y: torch.Tensor, t: torch.Tensor, lengths: torch.Tensor,
                c: torch.Tensor | None = None) -> torch.Tensor:
        """The clean sequence estimated from ``y`` (batch, time, n_features) at levels ``t``
        (batch,), in the model's space."""
        level = level_embedding(t, self.LEVEL_FEATURES)[:, None].expand(-1, y.size(1), -1)
        inputs = nn.functional.silu(self.input(with_condition(torch.cat([y, level], -1), c)))
        outputs, _ = self.stack(inputs, lengths)
        return self.readout(torch.cat([outputs, inputs], dim=-1))

    def noised(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Scaled data ``x`` at noise levels ``t`` with the given standard normal ``noise``."""
        alpha_bar = self.alpha_bar[t][:, None, None]
        return alpha_bar.sqrt() * self.to_model(x) + (1 - alpha_bar).sqrt() * noise

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Standard normal noise -> synthetic data (scaled)."""
        n, n_steps = z.shape[:2]
        lengths = torch.full((n,), n_steps, dtype=torch.long, device=z.device)
        visits = torch.linspace(self.n_levels, 0, self.config.sampling_steps + 1).round().long()
        y = z
        for t, t_next in zip(visits[:-1].tolist(), visits[1:].tolist()):
            alpha_bar, alpha_next = self.alpha_bar[t], self.alpha_bar[t_next]
            clean = self.denoise(y, torch.full((n,), t, device=z.device), lengths, c)
            if self.config.bounded_output:
                clean = clean.clamp(-1.0, 1.0)
            if t_next == 0:
                y = clean
                break
            noise = (y - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()
            y = alpha_next.sqrt() * clean + (1 - alpha_next).sqrt() * noise
        return self.from_model(y)


def build_gan(config: GANConfig) -> nn.Module:
    return {"timegan": TimeGANNet, "rcgan": RCGANNet,
            "diffusion": DiffusionNet}[config.architecture](config)
