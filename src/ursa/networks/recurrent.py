"""Recurrent encoder and decoder over padded batches.

Shapes: ``x`` is (batch, time, features), ``lengths`` is (batch,) int64 on the same device.
Padding lies after each sequence's end. The forward direction never needs masking (padding comes after
the state we read); the backward direction runs on each sequence reversed within its own length, so it
starts at the true end rather than in the padding. Packing (``pack_padded_sequence``) would also do
this, but is slower than padded batches on CPU (docs/autoencoder.md), so batches stay padded and the
trainer buckets them by length instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .hybrid import AttentionPooling, ConvFrontEnd, encoder_parts

__all__ = [
    "CELLS",
    "RecurrentConfig",
    "RecurrentStack",
    "RecurrentEncoder",
    "SUMMARIES",
    "RecurrentDecoder",
    "SequenceAutoencoderNet",
    "NextStepNet",
    "fold_input_scaling",
    "fold_output_scaling",
    "make_rnn",
    "PerSampleRecurrent",
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
    # Token input: ids in [0, vocab_size) read through an embedding of input_size values (id 0
    # pads). 0 for numeric input, read as input_size features per step.
    vocab_size: int = 0

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}.")

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


class PerSampleRecurrent:
    """Mixin of the fused recurrent modules :func:`make_rnn` builds: with ``record`` set to a
    callable, the forward pass also reports what a sequence's own weight gradient is made of.

    The layers then run one at a time, the input projection ``x W_ih^T + b_ih`` taken outside
    the fused kernel (which gets an identity input weight), so that the gradient reaching that
    projection, is the gate pre-activations' gradient at every step. ``record`` is called during the
    backward pass: the layer's input (batch, time, in), its hidden state one step earlier
    (batch, time, hidden), and the gradients reaching the input and the recurrent products
    (the same but for a GRU's candidate gate, scaled there by the reset gate), each (batch,
    time, gates * hidden): the layer's weight gradients are their products with the input and
    the earlier state, summed over time. Called as ``record(module, layer, inputs, previous,
    input_delta, recurrent_delta)``. Outputs are the same as the plain forward pass (to float rounding); the
    parameters and their names are torch's. Unidirectional, batch-first modules only (the only
    kind :func:`make_rnn` builds).
    """

    record = None
    _MODE = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh"}

    def forward(self, input, hx=None):  # noqa: A002 (torch's name)
        if self.record is None or not torch.is_grad_enabled():
            return super().forward(input, hx)
        mode = self._MODE[self.mode]
        lstm = mode == "lstm"
        batch, size = input.size(0), self.hidden_size
        if hx is None:
            zeros = input.new_zeros(self.num_layers, batch, size)
            hx = (zeros, zeros) if lstm else zeros
        kernel = getattr(torch._VF, mode)
        layer_input, finals = input, []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                layer_input = nn.functional.dropout(layer_input, self.dropout, True)
            w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{n}_l{layer}") for n in
                                      ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            gates = nn.functional.linear(layer_input, w_ih.detach(), b_ih.detach())
            if w_ih.requires_grad and not gates.requires_grad:  # the data itself: a leaf
                gates.requires_grad_()
            width = gates.size(-1)
            eye = torch.eye(width, dtype=gates.dtype, device=gates.device)
            state = (hx[0][layer:layer + 1], hx[1][layer:layer + 1]) if lstm \
                else hx[layer:layer + 1]
            weights = [eye, w_hh.detach(), gates.new_zeros(width), b_hh.detach()]
            output, *final = kernel(gates, state, weights, True, 1, 0.0, self.training, False,
                                    True)
            if gates.requires_grad:
                start = state[0][0] if lstm else state[0]  # (batch, hidden)
                previous = torch.cat([start[:, None], output[:, :-1]], 1).detach()
                gates.register_hook(self._reporter(layer, layer_input.detach(), previous,
                                                    gates.detach()))
            finals.append(final)
            layer_input = output
        if lstm:
            return layer_input, (torch.cat([f[0] for f in finals]),
                                 torch.cat([f[1] for f in finals]))
        return layer_input, torch.cat([f[0] for f in finals])

    def _reporter(self, layer, inputs, previous, gates):
        def report(delta):
            recurrent_delta = delta
            if self.mode == "GRU":  # n = tanh(x_n + r * (W_hn h + b_hn)): scaled by r
                size = self.hidden_size
                w_hh, b_hh = getattr(self, f"weight_hh_l{layer}"), getattr(self, f"bias_hh_l{layer}")
                reset = torch.sigmoid(gates[..., :size] + nn.functional.linear(
                    previous, w_hh[:size].detach(), b_hh[:size].detach()))
                recurrent_delta = torch.cat([delta[..., :2 * size],
                                             delta[..., 2 * size:] * reset], -1)
            self.record(self, layer, inputs, previous, delta, recurrent_delta)
        return report


class _RNN(PerSampleRecurrent, nn.RNN):
    pass


class _GRU(PerSampleRecurrent, nn.GRU):
    pass


class _LSTM(PerSampleRecurrent, nn.LSTM):
    pass


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
    """A fused torch recurrent module, batch first (torch's ``nn.RNN`` / ``nn.GRU`` /
    ``nn.LSTM``, with :class:`PerSampleRecurrent`'s optional per-sequence gradient path).
    ``"rnn"`` is Elman's tanh network."""
    kwargs = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout if num_layers > 1 else 0.0,
        batch_first=True,
    )
    if cell == "rnn":
        return _RNN(nonlinearity="tanh", **kwargs)
    if cell == "gru":
        return _GRU(**kwargs)
    if cell == "lstm":
        return _LSTM(**kwargs)
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

    A NaN input is a missing value: it reads as ``fill`` (per input feature; zero, the training
    mean of scaled data, or the offset that :func:`fold_input_scaling` folds in).
    """

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        self.register_buffer("fill", torch.zeros(config.input_size), persistent=False)
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
        missing = torch.isnan(x)
        if bool(missing.any()):
            x = torch.where(missing, self.fill.to(x.dtype), x)
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
    """Sequence -> fixed-size code: [convolutional front-end], recurrent stack, a summary of its
    outputs, linear projection.

    ``kind`` is one of :data:`ursa.networks.hybrid.ENCODERS`: ``"conv-..."`` puts a
    :class:`~ursa.networks.hybrid.ConvFrontEnd` before the recurrence (which then reads
    ``stride`` times fewer steps), ``"...-attention"`` summarises the outputs with
    :class:`~ursa.networks.hybrid.AttentionPooling`. Otherwise ``summary`` is the last state
    ("last"), the mean of the outputs over valid steps ("mean"), or both concatenated ("both").
    With ``sphere`` the codes are scaled onto the sphere of radius sqrt(latent_dim), so that only
    their directions differ (what a contrastive loss compares).
    """

    def __init__(self, config: RecurrentConfig, latent_dim: int, summary: str = "last",
                 sphere: bool = False, kind: str = "rnn"):
        super().__init__()
        if summary not in SUMMARIES:
            raise ValueError(f"summary must be one of {SUMMARIES}, got {summary!r}.")
        conv, attention = encoder_parts(kind)
        self.kind, self.sphere = kind, sphere
        self.summary = "attention" if attention else summary
        # Token ids become vectors before anything else reads them.
        self.embed = (nn.Embedding(config.vocab_size, config.input_size, padding_idx=0)
                      if config.vocab_size else None)
        config = replace(config, vocab_size=0)
        self.front = ConvFrontEnd(config.input_size, config.hidden_size) if conv else None
        if conv:
            config = replace(config, input_size=self.front.output_size)
        self.stack = RecurrentStack(config)
        self.attention = (AttentionPooling(config.output_size, config.hidden_size)
                          if attention else None)
        width = config.output_size * (2 if self.summary == "both" else 1)
        self.project = nn.Linear(width, latent_dim)
        self.radius = float(latent_dim) ** 0.5

    @property
    def stride(self) -> int:
        """Input steps per recurrent step (1 without a front-end)."""
        return 1 if self.front is None else self.front.stride

    def states(self, x: torch.Tensor, lengths: torch.Tensor):
        """The recurrent outputs (batch, time', output_size), summary state (batch, output_size)
        and lengths (batch,) after the front-end (time' = ceil(time / stride))."""
        if self.embed is not None:
            x = self.embed(x[..., 0].long())
        if self.front is not None:
            x, lengths = self.front(x, lengths)
        outputs, last = self.stack(x, lengths)
        return outputs, last, lengths

    def attention_weights(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Attention weight of each recurrent step, (batch, time'); each covers ``stride``
        input steps. Only for an attention encoder."""
        if self.attention is None:
            raise ValueError(f"a {self.kind!r} encoder has no attention weights.")
        outputs, _, lengths = self.states(x, lengths)
        return self.attention(outputs, lengths)[1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, last, lengths = self.states(x, lengths)
        if self.summary == "last":
            code = self.project(last)  # (batch, latent)
        elif self.summary == "attention":
            code = self.project(self.attention(outputs, lengths)[0])
        else:
            mask = step_mask(lengths, outputs.size(1)).unsqueeze(-1)  # (batch, time, 1)
            mean = (outputs * mask).sum(1) / lengths[:, None].to(outputs.dtype)
            code = self.project(mean if self.summary == "mean" else torch.cat([last, mean], 1))
        if not self.sphere:
            return code
        return nn.functional.normalize(code, dim=1) * self.radius


class RecurrentDecoder(nn.Module):
    """Code -> sequence: the code is fed at every step and also sets the initial hidden state.

    With ``stride`` s > 1 the recurrence runs ceil(n_steps / s) steps and each emits the next s
    output steps (a readout of s * output_size values), mirroring an encoder that reads s input
    steps per recurrent step.
    """

    def __init__(self, latent_dim: int, output_size: int, hidden_size: int = 64,
                 num_layers: int = 1, cell: str = "gru", dropout: float = 0.0, stride: int = 1):
        super().__init__()
        self.cell = cell
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.output_size, self.stride = output_size, int(stride)
        self.init_hidden = nn.Linear(latent_dim, num_layers * hidden_size)
        self.rnn = make_rnn(cell, latent_dim, hidden_size, num_layers, dropout)
        self.readout = nn.Linear(hidden_size, output_size * self.stride)

    def forward(self, z: torch.Tensor, n_steps: int) -> torch.Tensor:
        batch = z.size(0)
        h0 = torch.tanh(self.init_hidden(z))  # (batch, layers*hidden)
        h0 = h0.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        state = (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0
        steps = -(-n_steps // self.stride)
        inputs = z.unsqueeze(1).expand(batch, steps, z.size(1))  # (batch, time', latent)
        outputs, _ = self.rnn(inputs, state)  # (batch, time', hidden)
        out = self.readout(outputs)  # (batch, time', stride * output_size)
        if self.stride == 1:
            return out
        return out.reshape(batch, steps * self.stride, self.output_size)[:, :n_steps]


class SequenceAutoencoderNet(nn.Module):
    """Recurrent encoder + decoder. The decoder rebuilds the first ``output_size`` input features
    (default: all of them; for token input, one logit per id); ``summary``, ``sphere`` and
    ``kind`` shape the encoder (see RecurrentEncoder); the decoder emits as many steps per
    recurrent step as the encoder reads."""

    def __init__(self, config: RecurrentConfig, latent_dim: int, summary: str = "last",
                 sphere: bool = False, output_size: int | None = None, kind: str = "rnn"):
        super().__init__()
        self.encoder = RecurrentEncoder(config, latent_dim, summary, sphere, kind)
        self.decoder = RecurrentDecoder(
            latent_dim, output_size or config.vocab_size or config.input_size,
            config.hidden_size, config.num_layers, config.cell, config.dropout,
            self.encoder.stride,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x, lengths)  # (batch, latent)
        return self.decoder(z, x.size(1)), z  # (batch, time, output_size), (batch, latent)


    @torch.no_grad()
    def fold_scaling(self, offset: torch.Tensor, scale: torch.Tensor) -> None:
        """Read and write unscaled data (see :func:`fold_input_scaling`)."""
        fold_input_scaling(self.encoder, offset, scale)
        fold_output_scaling(self.decoder.readout, offset, scale)


class NextStepNet(nn.Module):
    """Predicts each step of a sequence from the steps before it (a recurrent language model for
    tokens, a one-step forecaster for numeric data).

    ``forward(x, lengths)`` returns ``(predictions, None)`` with ``predictions[:, t]`` the
    prediction of ``x[:, t]`` made after reading ``x[:, :t]`` (a learned start vector stands
    before the first step), laid out like an autoencoder's reconstruction, so that the same
    losses and per-step errors apply: squared errors, or for token ids (``config.vocab_size``)
    logits and negative log-likelihoods. The recurrence runs forward only.
    """

    def __init__(self, config: RecurrentConfig, output_size: int | None = None):
        super().__init__()
        self.vocab_size = config.vocab_size
        # Tokens: the start is one more id; numeric data: a learned start vector.
        self.embed = (nn.Embedding(config.vocab_size + 1, config.input_size, padding_idx=0)
                      if config.vocab_size else None)
        self.start = nn.Parameter(torch.zeros(config.input_size))
        self.stack = RecurrentStack(replace(config, vocab_size=0, bidirectional=False))
        self.readout = nn.Linear(config.hidden_size,
                                 output_size or config.vocab_size or config.input_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        if self.embed is not None:
            ids = x[..., 0].long()
            inputs = torch.cat([ids.new_full((ids.size(0), 1), self.vocab_size), ids[:, :-1]], 1)
            inputs = self.embed(inputs)
        else:
            start = self.start.to(x.dtype).expand(x.size(0), 1, x.size(2))
            inputs = torch.cat([start, x[:, :-1]], 1)
        outputs, _ = self.stack(inputs, lengths)
        return self.readout(outputs), None

    @torch.no_grad()
    def fold_scaling(self, offset: torch.Tensor, scale: torch.Tensor) -> None:
        """Read and write unscaled data: the first layer and the readout as in
        :func:`fold_input_scaling` / :func:`fold_output_scaling`, and the start vector (a scaled
        value) moved to the unscaled space. Token ids are never scaled."""
        if self.embed is not None:
            return
        fold_input_scaling(self.stack, offset, scale)
        self.start.mul_(scale).add_(offset)
        fold_output_scaling(self.readout, offset, scale)


@torch.no_grad()
def fold_input_scaling(encoder: RecurrentEncoder | RecurrentStack, offset: torch.Tensor,
                       scale: torch.Tensor) -> None:
    """Make an encoder (or a bare stack) accept unscaled input, ``x' = (x - offset) / scale``.

    Into a recurrent first layer it is folded: W x' + b = (W / scale) x + (b - W (offset /
    scale)), for every gate and both directions. A convolutional front-end applies it itself
    (its zero padding must stay zero in the scaled space). Inference then skips a full pass over
    the data; results match to float rounding.
    """
    if isinstance(encoder, RecurrentEncoder):
        if encoder.embed is not None:  # token ids are never scaled
            return
        if encoder.front is not None:
            encoder.front.offset.copy_(offset)
            encoder.front.scale.copy_(scale)
            return
        encoder = encoder.stack
    stack = encoder
    first_layers = [stack.rnn] if not stack.config.bidirectional else [
        stack.forward_layers[0], stack.backward_layers[0]]
    for rnn in first_layers:
        weight = rnn.weight_ih_l0  # (gates * hidden, input)
        rnn.bias_ih_l0.sub_(weight @ (offset / scale))
        weight.div_(scale[None, :])
    stack.fill.copy_(offset)  # a missing value still reads as scaled 0


@torch.no_grad()
def fold_output_scaling(readout: nn.Linear, offset: torch.Tensor, scale: torch.Tensor) -> None:
    """Make ``readout`` emit unscaled output: y = scale * (W h + b) + offset (a readout of
    several steps' features, laid out step by step, repeats them)."""
    repeats = readout.out_features // scale.numel()
    scale, offset = scale.repeat(repeats), offset.repeat(repeats)
    readout.weight.mul_(scale[:, None])
    readout.bias.mul_(scale).add_(offset)
