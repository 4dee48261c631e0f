"""Recurrent encoder and decoder over padded batches.

Shapes: ``x`` is (batch, time, features), ``lengths`` is (batch,) int64 on the same device.
Padding lies after each sequence's end. The forward direction never needs masking (padding comes after
the state we read); the backward direction runs on each sequence reversed within its own length, so it
starts at the true end rather than in the padding. Packing (``pack_padded_sequence``) would also do
this, but is slower than padded batches on CPU (docs/autoencoder.md), so batches stay padded and the
trainer buckets them by length instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "CELLS",
    "RecurrentConfig",
    "RecurrentStack",
    "RecurrentEncoder",
    "SUMMARIES",
    "RecurrentDecoder",
    "SequenceAutoencoderNet",
    "fold_input_scaling",
    "fold_output_scaling",
    "make_rnn",
    "reverse_padded",
    "last_valid",
    "step_mask",
]

CELLS = ("rnn", "gru", "lstm")


@dataclass
class RecurrentConfig:
    """Shape of a recurrent stack."""

    input_size: int
    hidden_size: int = 64  # enough for the benchmark sets; embeddings come from a separate projection
    num_layers: int = 1  # one layer trains fastest on CPU; stack for long, complex series
    cell: str = "gru"  # GRU: LSTM-like quality at ~3/4 of its cost
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers only, as in torch

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}.")

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
    """A fused torch recurrent module, batch first. ``"rnn"`` is Elman's tanh network."""
    kwargs = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout if num_layers > 1 else 0.0,
        batch_first=True,
    )
    if cell == "rnn":
        return nn.RNN(nonlinearity="tanh", **kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    raise ValueError(f"cell must be one of {CELLS}, got {cell!r}.")


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays in place. Self-inverse."""
    n_steps = x.size(1)
    steps = torch.arange(n_steps, device=x.device)
    index = lengths[:, None] - 1 - steps[None, :]  # (batch, time)
    index = torch.where(index >= 0, index, steps[None, :])
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


def last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Output at each sequence's last valid step: (batch, time, hidden) -> (batch, hidden)."""
    return outputs[torch.arange(outputs.size(0), device=outputs.device), lengths - 1]


def step_mask(lengths: torch.Tensor, n_steps: int) -> torch.Tensor:
    """(batch, time) float mask, 1 on valid steps."""
    return (torch.arange(n_steps, device=lengths.device)[None, :] < lengths[:, None]).float()


class RecurrentStack(nn.Module):
    """Stacked recurrent layers; bidirectional stacks are correct on padded batches.

    Returns ``(outputs, last)``: outputs (batch, time, output_size) and the summary state
    (batch, output_size): the forward direction's output at the last valid step concatenated
    with the backward direction's output at step 0 (which has read the whole sequence).
    """

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        if not config.bidirectional:
            # One fused call for all layers.
            self.rnn = make_rnn(
                config.cell, config.input_size, config.hidden_size, config.num_layers, config.dropout
            )
        else:
            sizes = [config.input_size] + [2 * config.hidden_size] * (config.num_layers - 1)
            self.forward_layers = nn.ModuleList(
                make_rnn(config.cell, size, config.hidden_size) for size in sizes
            )
            self.backward_layers = nn.ModuleList(
                make_rnn(config.cell, size, config.hidden_size) for size in sizes
            )
            self.inter_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.config.bidirectional:
            outputs, _ = self.rnn(x)  # (batch, time, hidden)
            return outputs, last_valid(outputs, lengths)
        equal = bool((lengths == x.size(1)).all())
        flip = (lambda t: t.flip(1)) if equal else (lambda t: reverse_padded(t, lengths))
        hidden = x
        for depth, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if depth > 0:
                hidden = self.inter_dropout(hidden)
            out_fwd, _ = fwd(hidden)  # (batch, time, hidden)
            out_bwd, _ = bwd(flip(hidden))
            hidden = torch.cat([out_fwd, flip(out_bwd)], dim=-1)  # (batch, time, 2*hidden)
        size = self.config.hidden_size
        last = torch.cat([last_valid(hidden[..., :size], lengths), hidden[:, 0, size:]], dim=-1)
        return hidden, last


SUMMARIES = ("last", "mean", "both")


class RecurrentEncoder(nn.Module):
    """Sequence -> fixed-size code: recurrent stack, a summary of its outputs, linear projection.

    ``summary`` is the last state ("last"), the mean of the outputs over valid steps ("mean"),
    or both concatenated ("both"). With ``sphere`` the codes are scaled onto the sphere of
    radius sqrt(latent_dim), so that only their directions differ (what a contrastive loss
    compares).
    """

    def __init__(self, config: RecurrentConfig, latent_dim: int, summary: str = "last",
                 sphere: bool = False):
        super().__init__()
        if summary not in SUMMARIES:
            raise ValueError(f"summary must be one of {SUMMARIES}, got {summary!r}.")
        self.summary, self.sphere = summary, sphere
        self.stack = RecurrentStack(config)
        width = config.output_size * (2 if summary == "both" else 1)
        self.project = nn.Linear(width, latent_dim)
        self.radius = float(latent_dim) ** 0.5

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, last = self.stack(x, lengths)  # (batch, time, output_size), (batch, output_size)
        if self.summary == "last":
            code = self.project(last)  # (batch, latent)
        else:
            mask = step_mask(lengths, outputs.size(1)).unsqueeze(-1)  # (batch, time, 1)
            mean = (outputs * mask).sum(1) / lengths[:, None].to(outputs.dtype)
            code = self.project(mean if self.summary == "mean" else torch.cat([last, mean], 1))
        if not self.sphere:
            return code
        return nn.functional.normalize(code, dim=1) * self.radius


class RecurrentDecoder(nn.Module):
    """Code -> sequence: the code is fed at every step and also sets the initial hidden state."""

    def __init__(self, latent_dim: int, output_size: int, hidden_size: int = 64,
                 num_layers: int = 1, cell: str = "gru", dropout: float = 0.0):
        super().__init__()
        self.cell = cell
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.init_hidden = nn.Linear(latent_dim, num_layers * hidden_size)
        self.rnn = make_rnn(cell, latent_dim, hidden_size, num_layers, dropout)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, z: torch.Tensor, n_steps: int) -> torch.Tensor:
        batch = z.size(0)
        h0 = torch.tanh(self.init_hidden(z))  # (batch, layers*hidden)
        h0 = h0.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        state = (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0
        inputs = z.unsqueeze(1).expand(batch, n_steps, z.size(1))  # (batch, time, latent)
        outputs, _ = self.rnn(inputs, state)  # (batch, time, hidden)
        return self.readout(outputs)  # (batch, time, output_size)


class SequenceAutoencoderNet(nn.Module):
    """Recurrent encoder + decoder. The decoder rebuilds the first ``output_size`` input features
    (default: all of them); ``summary`` and ``sphere`` shape the code (see RecurrentEncoder)."""

    def __init__(self, config: RecurrentConfig, latent_dim: int, summary: str = "last",
                 sphere: bool = False, output_size: int | None = None):
        super().__init__()
        self.encoder = RecurrentEncoder(config, latent_dim, summary, sphere)
        self.decoder = RecurrentDecoder(
            latent_dim, output_size or config.input_size, config.hidden_size, config.num_layers,
            config.cell, config.dropout,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x, lengths)  # (batch, latent)
        return self.decoder(z, x.size(1)), z  # (batch, time, output_size), (batch, latent)


@torch.no_grad()
def fold_input_scaling(stack: RecurrentStack, offset: torch.Tensor, scale: torch.Tensor) -> None:
    """Make ``stack`` accept unscaled input: fold ``x' = (x - offset) / scale`` into its first layer.

    W x' + b = (W / scale) x + (b - W (offset / scale)), for every gate and both directions.
    Inference then skips a full pass over the data; results match to float rounding.
    """
    first_layers = [stack.rnn] if not stack.config.bidirectional else [
        stack.forward_layers[0], stack.backward_layers[0]]
    for rnn in first_layers:
        weight = rnn.weight_ih_l0  # (gates * hidden, input)
        rnn.bias_ih_l0.sub_(weight @ (offset / scale))
        weight.div_(scale[None, :])


@torch.no_grad()
def fold_output_scaling(readout: nn.Linear, offset: torch.Tensor, scale: torch.Tensor) -> None:
    """Make ``readout`` emit unscaled output: y = scale * (W h + b) + offset."""
    readout.weight.mul_(scale[:, None])
    readout.bias.mul_(scale).add_(offset)
