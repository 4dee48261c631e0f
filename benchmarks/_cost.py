"""How close to the machine's limit a fit runs: the GEMM peak, and the FLOPs a fit performs.

``gemm_peak`` times square matrix products (one call of ``torch.mm`` per repeat, best of the
repeats) in float32 and bfloat16; ``gemm_rate`` the product of one recurrent step's hidden
state by its recurrent weights, (batch x H) @ (H x g H), at an estimator's own shape;
``layer_rate`` a bare torch recurrent layer's training call at that shape. ``count_flops``
counts, while a fit runs, the multiply-adds of
every recurrent and linear layer from the shapes each call sees: a recurrent layer with g gates
(RNN 1, GRU 3, LSTM 4), input size I and hidden size H does 2 g H (I + H) FLOPs per step, per
direction and per sequence; a linear layer 2 I O per row. A call made with gradients on is counted
three times (forward, and a backward pass of about twice the forward), one without once.
Element-wise work, losses and the optimiser are not counted, so the share of the peak is a floor.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def gemm_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of a (size x size) @ (size x size) product in ``dtype`` on this thread count."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # warm-up (and oneDNN's kernel selection)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _median_seconds(call, seconds: float) -> float:
    """Seconds per ``call()``: the median of 5 timings of enough calls to last about
    ``seconds`` each (after one warm-up call)."""
    call()
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < 0.05:
        call()
        calls += 1
    calls = max(1, int(calls * seconds / 0.05))
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        timings.append((time.perf_counter() - started) / calls)
    return sorted(timings)[2]


def gemm_rate(m: int, k: int, n: int, dtype: torch.dtype = torch.float32,
              seconds: float = 0.3) -> float:
    """GFLOP/s of repeated (m x k) @ (k x n) products in ``dtype``, the median of 5 timings of
    enough calls to last about ``seconds`` each: the ceiling for a recurrent step whose hidden
    product has this shape (one such product per step, each waiting for the last)."""
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    return 2 * m * k * n / _median_seconds(lambda: torch.mm(a, b), seconds) / 1e9


def layer_rate(cell: str, steps: int, batch: int, input_size: int, hidden: int,
               bidirectional: bool = False, seconds: float = 0.3) -> float:
    """GFLOP/s (counted as :func:`count_flops` counts a training call) of a bare one-layer torch
    ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``, forward and backward of the sum of its outputs, on
    (batch, steps, input_size) inputs: the median of 5 timings of about ``seconds`` each. The
    fastest torch's fused recurrent kernels train at this shape, before any model around them."""
    layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](
        input_size, hidden, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(batch, steps, input_size)

    def call():
        layer.zero_grad(set_to_none=True)
        layer(x)[0].sum().backward()

    return 3 * _recurrent_flops(layer, x) / _median_seconds(call, seconds) / 1e9


def _recurrent_flops(module: nn.RNNBase, x: torch.Tensor) -> float:
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps_times_batch = x.data.size(0)
    else:
        steps_times_batch = x.size(0) * x.size(1) if x.dim() == 3 else x.size(0)
    gates = GATES[module.mode]
    directions = 2 if module.bidirectional else 1
    total, input_size = 0.0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * gates * module.hidden_size * (input_size + module.hidden_size) * directions
        input_size = module.hidden_size * directions
    return total * steps_times_batch


@contextlib.contextmanager
def count_flops():
    """Count the FLOPs of every recurrent and linear layer called inside the block (any module,
    any thread); yields a dict whose ``"flops"`` grows as they run."""
    counted = {"flops": 0.0}

    def hook(module, args, output):
        if not args or not isinstance(args[0], (torch.Tensor, nn.utils.rnn.PackedSequence)):
            return
        if isinstance(module, nn.RNNBase):
            flops = _recurrent_flops(module, args[0])
        elif isinstance(module, nn.Linear):
            flops = 2 * module.in_features * module.out_features * args[0].numel() \
                / module.in_features
        else:
            return
        counted["flops"] += flops * (3 if torch.is_grad_enabled() else 1)

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        yield counted
    finally:
        handle.remove()
