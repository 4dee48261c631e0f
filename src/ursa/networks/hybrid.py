"""Blocks that combine the recurrence with other architectures without replacing it: a strided
convolutional front-end that reads local shape and shortens a sequence before the recurrence, and
attention pooling over the recurrent outputs.

Shapes: ``x`` is (batch, time, features), ``lengths`` is (batch,) int64 on the same device.
Both blocks mask what lies after each sequence's end, so a sequence gives the same output
whatever batch (and padding) it is in.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ENCODERS", "FRONT_STRIDE", "ConvFrontEnd", "AttentionPooling", "encoder_parts"]

# What an encoder is made of: an optional convolutional front-end, the recurrence, and a summary
# of its outputs (attention pooling, or the estimator's own summary). The decoders stay recurrent.
ENCODERS = ("rnn", "conv-rnn", "rnn-attention", "conv-rnn-attention")

# Front-end shape: two convolutions of width 5, each with stride 2, so the recurrence reads a
# quarter of the steps, each summarising 13 input steps (the receptive field).
CONV_LAYERS, CONV_KERNEL, CONV_STRIDE = 2, 5, 2
FRONT_STRIDE = CONV_STRIDE ** CONV_LAYERS  # input steps per recurrent step behind a front-end


def encoder_parts(kind: str) -> tuple[bool, bool]:
    """(convolutional front-end, attention pooling) of an encoder kind in :data:`ENCODERS`."""
    if kind not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}.")
    return kind.startswith("conv-"), kind.endswith("-attention")


def _valid(lengths: torch.Tensor, n_steps: int, dtype) -> torch.Tensor:
    """(batch, time, 1) mask, 1 on each sequence's valid steps."""
    steps = torch.arange(n_steps, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).to(dtype).unsqueeze(-1)


class ConvFrontEnd(nn.Module):
    """Strided 1-D convolutions (GELU after each) that shorten a sequence by
    ``stride ** layers`` before the recurrence: a learned alternative to averaging windows.

    Each convolution is a linear layer over the unfolded windows of ``kernel`` steps (the same
    arithmetic as ``nn.Conv1d`` with zero padding ``kernel // 2``), which private training takes
    per-sequence gradients of like any linear layer. A sequence of length L leaves with length
    ceil(L / stride) per layer. Steps after a sequence's end are zeroed before every layer, so
    they read like the convolution's own zero padding.

    A NaN input is a missing value: it reads as 0 after the ``offset`` / ``scale`` buffers are
    applied (identity by default; :func:`ursa.networks.fold_input_scaling` sets them so that
    the module reads unscaled data), i.e. as the training mean of standard-scaled data.
    """

    def __init__(self, input_size: int, channels: int, layers: int = CONV_LAYERS,
                 kernel: int = CONV_KERNEL, stride: int = CONV_STRIDE):
        super().__init__()
        self.kernel, self.step = int(kernel), int(stride)
        widths = [input_size] + [channels] * layers
        self.layers = nn.ModuleList(nn.Linear(widths[i] * self.kernel, widths[i + 1])
                                    for i in range(layers))
        self.register_buffer("offset", torch.zeros(input_size), persistent=False)
        self.register_buffer("scale", torch.ones(input_size), persistent=False)
        self.output_size = channels

    @property
    def stride(self) -> int:
        """Input steps per output step."""
        return self.step ** len(self.layers)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in self.layers:
            lengths = torch.div(lengths + self.step - 1, self.step, rounding_mode="floor")
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.offset.to(x.dtype)) / self.scale.to(x.dtype)
        x = torch.nan_to_num(x, nan=0.0)  # a missing value reads as the scaled zero
        half = self.kernel // 2
        for layer in self.layers:
            x = x * _valid(lengths, x.size(1), x.dtype)
            batch, _, width = x.shape
            windows = nn.functional.pad(x, (0, 0, half, half)).unfold(1, self.kernel, self.step)
            # (batch, time', width, kernel) -> (batch, time', width * kernel)
            x = nn.functional.gelu(layer(windows.reshape(batch, windows.size(1), -1)))
            lengths = torch.div(lengths + self.step - 1, self.step, rounding_mode="floor")
        return x * _valid(lengths, x.size(1), x.dtype), lengths


class AttentionPooling(nn.Module):
    """Additive attention over the recurrent outputs (Bahdanau et al. 2015): a weight per valid
    step, w_t = softmax_t(v^T tanh(W h_t + b)), and the weighted mean of the outputs. The weights
    are returned as well (explanations read them)."""

    def __init__(self, width: int, size: int):
        super().__init__()
        self.hidden = nn.Linear(width, size)
        self.score = nn.Linear(size, 1, bias=False)

    def forward(self, outputs: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, time, width) -> pooled (batch, width), weights (batch, time), zero after
        each sequence's end."""
        logits = self.score(torch.tanh(self.hidden(outputs))).squeeze(-1)  # (batch, time)
        valid = _valid(lengths, outputs.size(1), torch.bool).squeeze(-1)
        logits = logits.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        return (weights.unsqueeze(-1) * outputs).sum(1), weights
